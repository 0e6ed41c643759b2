//! `sixpan::upload_token::UploadToken::parse` (the put policy inside) over any string;
//! neither `Debug` nor an error may repeat the token's secret parts.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use offline_proto::sixpan::upload_token::UploadToken;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match UploadToken::parse(text) {
        Ok(token) => {
            assert_eq!(token.expose(), text);
            let _ = token.deadline();
            let _ = token.access_key();
            let _ = token.expires_within(SystemTime::now(), Duration::from_secs(60));
            let _ = token.expires_within(SystemTime::UNIX_EPOCH, Duration::MAX);
            let _ = serde_json::to_string(token.policy());
            let debug = format!("{token:?}");
            assert!(!debug.contains(text), "Debug shows the token");
        }
        Err(e) => drop(e.to_string()),
    }
});
