//! `sixpan::api::decode_envelope` with every `result` type the client decodes, and the
//! token rotation that reads the same answers, over any HTTP response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offline_proto::sixpan::api::{decode_envelope, rotated_token, Session};
use offline_proto::sixpan::{AddResult, ParseResult, StoreTokenResult, TaskPage, UserInfo};

fuzz_target!(|data: &[u8]| {
    let response = offline_fuzz::response(data);
    let _ = decode_envelope::<AddResult>(&response).map_err(|e| e.to_string());
    let _ = decode_envelope::<Vec<ParseResult>>(&response).map_err(|e| e.to_string());
    let _ = decode_envelope::<TaskPage>(&response).map_err(|e| e.to_string());
    let _ = decode_envelope::<UserInfo>(&response).map_err(|e| e.to_string());
    let _ = decode_envelope::<u64>(&response).map_err(|e| e.to_string());
    if let Ok(result) = decode_envelope::<StoreTokenResult>(&response) {
        let _ = format!("{result:?}");
    }
    let _ = rotated_token(&response);
    let mut session = Session::new();
    let (seq, _) = session.begin();
    session.handle_response(seq, &response);
});
