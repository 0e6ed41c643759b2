//! `sixpan::identity::Identity::parse` over any string; a parsed identity must
//! serialize back to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offline_proto::sixpan::identity::Identity;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Identity::parse(text) {
        Ok(identity) => {
            assert_eq!(identity.as_str(), text);
            let json = serde_json::to_string(&identity).unwrap();
            let back: Identity = serde_json::from_str(&json).unwrap();
            assert_eq!(back.as_str(), text);
            let _ = format!("{identity:?} {:?}", identity.view());
        }
        Err(e) => drop(e.to_string()),
    }
});
