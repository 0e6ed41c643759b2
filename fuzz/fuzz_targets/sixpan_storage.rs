//! `sixpan::storage::{decode_file_stored, decode_chunk_stored}` (the storage service's
//! answers) over any HTTP response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offline_proto::sixpan::storage::{decode_chunk_stored, decode_file_stored};

fuzz_target!(|data: &[u8]| {
    let response = offline_fuzz::response(data);
    let _ = decode_file_stored(&response).map_err(|e| e.to_string());
    let _ = decode_chunk_stored(&response).map_err(|e| e.to_string());
});
