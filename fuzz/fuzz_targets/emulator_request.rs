//! The emulator's request checks (`offline_emulator::fuzzing::validate_request`:
//! routing, headers, the description's checks, the typed parse and validation) over
//! any HTTP request, both providers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let request = offline_fuzz::request(data);
    let headers: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), *v))
        .collect();
    let _ = offline_emulator::fuzzing::validate_request(
        &request.method,
        &request.target,
        &headers,
        request.body,
    );
});
