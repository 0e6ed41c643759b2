//! `pan123::decode_callback` over any callback body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offline_proto::pan123::decode_callback;

fuzz_target!(|data: &[u8]| {
    match decode_callback(data) {
        Ok(callback) => drop(format!("{callback:?} {}", callback.status.code())),
        Err(e) => drop(e.to_string()),
    }
});
