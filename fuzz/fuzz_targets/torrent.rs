//! `torrent::Metainfo::from_bytes` over any bytes, and everything a decoded torrent
//! offers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offline_proto::torrent::Metainfo;

fuzz_target!(|data: &[u8]| {
    match Metainfo::from_bytes(data) {
        Ok(meta) => {
            let _ = meta.piece_count();
            let _ = meta.trackers();
            let _ = meta.creation_time();
            let _ = meta.magnet();
            for file in &meta.files {
                let _ = file.joined_path();
            }
            let _ = format!("{meta:?} {}", meta.info_hash);
        }
        Err(e) => drop(e.to_string()),
    }
});
