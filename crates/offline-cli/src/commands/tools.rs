//! Local tools that need no account: `offline hash` and `offline torrent inspect`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use offline_proto::qetag::size_suffix;
use offline_proto::torrent::Metainfo;
use provider_6pan::hash::hash_file;
use serde_json::json;

use crate::exit;
use crate::output::{table, Output};

#[derive(Args, Debug)]
pub(crate) struct HashArgs {
    /// Files to hash.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Also print the later generations' form: the etag followed by the size in base 36.
    #[arg(long)]
    with_size: bool,
    /// Threads hashing each file's 4 MiB blocks (0: one per core). Memory stays at
    /// 128 KiB per thread whatever the file's size.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Subcommand, Debug)]
pub(crate) enum TorrentCommand {
    /// Print a torrent's infohash, name, total length and files.
    Inspect {
        /// The .torrent file.
        file: PathBuf,
    },
}

/// Refuses what is not a regular file (a device such as `/dev/zero`, a FIFO, a
/// directory) before anything reads it: such a "file" can be endless.
fn regular(path: &std::path::Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a device, pipe or directory has no size to hash or read)",
        ))
    }
}

/// Reads at most `cap` bytes of a regular file; more is an error (nothing beyond
/// `cap` + 1 bytes is ever read).
fn read_capped(path: &std::path::Path, cap: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    regular(path)?;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(cap as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {cap} bytes, the most a torrent file may be"),
        ));
    }
    Ok(bytes)
}

pub(crate) fn hash(args: &HashArgs, out: &Output) -> u8 {
    let mut code = exit::OK;
    for path in &args.files {
        match regular(path).and_then(|()| hash_file(path, args.threads)) {
            Ok((etag, size)) => {
                if out.is_json() {
                    out.event(json!({"event": "hash", "provider": "6pan", "file": path, "etag": etag.as_str(), "size": size, "etag_with_size": format!("{etag}{}", size_suffix(size))}));
                } else if args.with_size {
                    outln!("{etag}{}  {}", size_suffix(size), path.display());
                } else {
                    outln!("{etag}  {}", path.display());
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
    let bytes = match read_capped(file, offline_proto::torrent::MAX_TORRENT_BYTES) {
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
        out.event(json!({
            "event": "torrent",
            "file": file,
            "infohash": meta.info_hash.to_string(),
            "name": meta.name,
            "total_length": meta.total_length,
            "piece_length": meta.piece_length,
            "private": meta.private,
            "canonical": meta.canonical,
            "web_seeds": meta.web_seeds,
            "trackers": meta.trackers(),
            "magnet": meta.magnet(),
            "files": meta.files.iter().map(file_json).collect::<Vec<_>>(),
        }));
    } else {
        outln!("infohash      {}", meta.info_hash);
        outln!("name          {}", crate::output::screen(&meta.name));
        outln!("total length  {} bytes", meta.total_length);
        outln!(
            "piece length  {} bytes ({} pieces)",
            meta.piece_length,
            meta.piece_count()
        );
        if !meta.web_seeds.is_empty() {
            outln!(
                "web seeds     {}",
                crate::output::screen(&meta.web_seeds.join(", "))
            );
        }
        outln!("magnet        {}", meta.magnet());
        if !meta.canonical {
            outln!("note          not canonical bencode: the top-level keys are not in sorted order (the infohash is unaffected)");
        }
        for f in &meta.files {
            if let Some((component, why)) = f.windows_unsafe() {
                outln!(
                    "note          file {}: \"{}\" {why}",
                    f.index,
                    crate::output::screen(component)
                );
            }
            if let Some(other) = &f.other_path {
                outln!(
                    "note          file {}: path.utf-8 and path disagree; tools that read path call it {}",
                    f.index,
                    crate::output::screen(other)
                );
            }
        }
        outln!();
        let rows: Vec<Vec<String>> = meta
            .files
            .iter()
            .map(|f| vec![f.index.to_string(), f.length.to_string(), f.joined_path()])
            .collect();
        outln!("{}", table(&["#", "bytes", "path"], &rows));
    }
    exit::OK
}

/// One file of `torrent inspect --json`: index, path, length, and the notes about it.
fn file_json(f: &offline_proto::torrent::TorrentFile) -> serde_json::Value {
    let mut v = json!({"index": f.index, "path": f.joined_path(), "length": f.length});
    if let Some((_, why)) = f.windows_unsafe() {
        v["windows_unsafe"] = json!(why);
    }
    if let Some(other) = &f.other_path {
        v["other_path"] = json!(other);
    }
    v
}
