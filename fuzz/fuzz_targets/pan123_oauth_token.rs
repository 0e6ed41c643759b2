//! `pan123::decode_oauth_token` (not enveloped on success, an envelope on errors) over
//! any HTTP response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offline_proto::pan123::decode_oauth_token;

fuzz_target!(|data: &[u8]| {
    let response = offline_fuzz::response(data);
    match decode_oauth_token(&response) {
        Ok(token) => drop(format!("{token:?}")),
        Err(e) => drop(e.to_string()),
    }
});
