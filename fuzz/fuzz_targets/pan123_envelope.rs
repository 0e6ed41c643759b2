//! `pan123::decode_envelope` with every `data` type the client decodes, over any HTTP
//! response (status, headers, body).
#![no_main]

use libfuzzer_sys::fuzz_target;
use offline_proto::pan123::{decode_envelope, AccessTokenData, Process, TaskCreated};

fuzz_target!(|data: &[u8]| {
    let response = offline_fuzz::response(data);
    let _ = decode_envelope::<TaskCreated>(&response).map_err(|e| e.to_string());
    let _ = decode_envelope::<Process>(&response).map_err(|e| e.to_string());
    let _ = decode_envelope::<serde_json::Value>(&response).map_err(|e| e.to_string());
    if let Ok(token) = decode_envelope::<AccessTokenData>(&response) {
        let _ = format!("{token:?}");
    }
});
