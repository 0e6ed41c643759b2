//! Local tools that need no account: `offline hash` and `offline torrent inspect`.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use offline_proto::qetag::{size_suffix, Etag, Qetag};
use offline_proto::torrent::Metainfo;
use serde_json::json;

use crate::exit;
use crate::output::{table, Output};

/// Read size when hashing: 128 KiB (larger reads measured slower on these machines).
const READ_CHUNK: usize = 128 * 1024;

#[derive(Args, Debug)]
pub(crate) struct HashArgs {
    /// Files to hash.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Also print the later generations' form: the etag followed by the size in base 36.
    #[arg(long)]
    with_size: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum TorrentCommand {
    /// Print a torrent's infohash, name, total length and files.
    Inspect {
        /// The .torrent file.
        file: PathBuf,
    },
}

/// The qetag of a file, streamed in 128 KiB reads (memory stays constant).
pub(crate) fn hash_file(path: &Path) -> std::io::Result<(Etag, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Qetag::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let size = hasher.bytes_hashed();
    Ok((hasher.finalize(), size))
}

pub(crate) fn hash(args: &HashArgs, out: &Output) -> u8 {
    let mut code = exit::OK;
    for path in &args.files {
        match hash_file(path) {
            Ok((etag, size)) => {
                if out.is_json() {
                    println!(
                        "{}",
                        json!({"file": path, "etag": etag.as_str(), "size": size, "etag_with_size": format!("{etag}{}", size_suffix(size))})
                    );
                } else if args.with_size {
                    println!("{etag}{}  {}", size_suffix(size), path.display());
                } else {
                    println!("{etag}  {}", path.display());
                }
            }
            Err(e) => {
                out.error_line(
                    &format!("{}: {e}", path.display()),
                    Some(&path.display().to_string()),
                );
                code = exit::CONFIG;
            }
        }
    }
    code
}

pub(crate) fn torrent(command: &TorrentCommand, out: &Output) -> u8 {
    let TorrentCommand::Inspect { file } = command;
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            out.error_line(&format!("{}: {e}", file.display()), None);
            return exit::CONFIG;
        }
    };
    let meta = match Metainfo::from_bytes(&bytes) {
        Ok(m) => m,
        Err(e) => {
            out.error_line(&format!("{}: {e}", file.display()), None);
            return exit::CONFIG;
        }
    };
    if out.is_json() {
        println!(
            "{}",
            json!({
                "infohash": meta.info_hash.to_string(),
                "name": meta.name,
                "total_length": meta.total_length,
                "piece_length": meta.piece_length,
                "private": meta.private,
                "web_seeds": meta.web_seeds,
                "trackers": meta.trackers(),
                "magnet": meta.magnet(),
                "files": meta.files.iter().map(|f| json!({"index": f.index, "path": f.joined_path(), "length": f.length})).collect::<Vec<_>>(),
            })
        );
    } else {
        println!("infohash      {}", meta.info_hash);
        println!("name          {}", meta.name);
        println!("total length  {} bytes", meta.total_length);
        println!(
            "piece length  {} bytes ({} pieces)",
            meta.piece_length,
            meta.piece_count()
        );
        if !meta.web_seeds.is_empty() {
            println!("web seeds     {}", meta.web_seeds.join(", "));
        }
        println!("magnet        {}", meta.magnet());
        println!();
        let rows: Vec<Vec<String>> = meta
            .files
            .iter()
            .map(|f| vec![f.index.to_string(), f.length.to_string(), f.joined_path()])
            .collect();
        println!("{}", table(&["#", "bytes", "path"], &rows));
    }
    exit::OK
}
