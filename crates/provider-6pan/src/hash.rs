//! The qetag of a file, on every core, with bounded memory.
//!
//! [`hash_file`] cuts the file into 4 MiB blocks ([`BLOCK_SIZE`]) and hands them to a
//! fixed number of worker threads (`std::thread::scope`). Each worker takes the next
//! block not yet taken, reads it in chunks of [`READ_CHUNK`] (128 KiB) into one buffer
//! of its own, feeding a [`BlockHasher`] as the chunks arrive, and records the block's
//! digest; [`Etag::from_block_digests`] combines the digests in order. So exactly one
//! block per worker is in flight, and memory is one 128 KiB buffer per worker plus 20
//! bytes per block, whatever the size of the file. No block is ever held whole: a
//! 128 KiB chunk is hashed while it is still in the CPU's cache (reads of 1 to 4 MiB
//! measured about 1.5 times slower on the machines this was tuned on).
//!
//! Data that arrives in order (a pipe, a socket, standard input) goes through
//! [`hash_reader`], the same 128 KiB reads into the streaming
//! [`offline_proto::qetag::Qetag`] on one thread.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! use offline_proto::qetag::qetag;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("data.bin");
//! let data: Vec<u8> = (0..9_000_000u32).map(|i| (i % 251) as u8).collect();
//! std::fs::write(&path, &data)?;
//! let (etag, size) = provider_6pan::hash::hash_file(&path, 0)?;
//! assert_eq!((etag, size), (qetag(&data), data.len() as u64));
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use offline_proto::qetag::{BlockHasher, Etag, Qetag, BLOCK_SIZE};

/// The size of one read: 128 KiB.
pub const READ_CHUNK: usize = 128 * 1024;

/// The block size as a `u64`.
const BLOCK: u64 = BLOCK_SIZE as u64;

/// The number of threads [`hash_file`] uses when asked for 0: the machine's available
/// parallelism (1 if unknown).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The qetag and size of the file at `path`, hashed by `threads` worker threads (0: one
/// per core, [`default_threads`]), each with one 4 MiB block in flight, read in
/// 128 KiB chunks. A file of one block or less, or `threads == 1`, is hashed on the
/// calling thread. Something that is not a regular file (a pipe, a device) is read in
/// order with [`hash_reader`].
///
/// The size is the file's size when it was opened; the file must not change while it
/// is hashed.
///
/// # Errors
///
/// The I/O error of opening or reading the file; [`io::ErrorKind::UnexpectedEof`] when
/// the file became shorter while it was hashed.
pub fn hash_file(path: impl AsRef<Path>, threads: usize) -> io::Result<(Etag, u64)> {
    hash_file_inner(path.as_ref(), threads, None)
}

/// [`hash_file`], calling `progress` with the length of every chunk hashed (from the
/// worker threads, so it must be cheap): the lengths add up to the bytes hashed so far.
///
/// # Errors
///
/// As [`hash_file`].
pub fn hash_file_with_progress(
    path: impl AsRef<Path>,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<(Etag, u64)> {
    hash_file_inner(path.as_ref(), threads, Some(progress))
}

/// The digests one worker computed, with their block indexes.
type Digests = Vec<(u64, [u8; 20])>;

/// Reports hashed bytes, or not.
type Progress<'a> = Option<&'a (dyn Fn(u64) + Sync)>;

fn hash_file_inner(path: &Path, threads: usize, progress: Progress<'_>) -> io::Result<(Etag, u64)> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return hash_stream(file, progress);
    }
    let size = meta.len();
    let blocks = size.div_ceil(BLOCK);
    let threads = match threads {
        0 => default_threads(),
        n => n,
    };
    let threads = usize::try_from(blocks).map_or(threads, |b| threads.min(b).max(1));
    let digests = if threads <= 1 {
        let mut file = file;
        let mut buf = vec![0u8; READ_CHUNK];
        (0..blocks)
            .map(|block| hash_block(&mut file, &mut buf, block, size, progress))
            .collect::<io::Result<Vec<_>>>()?
    } else {
        hash_parallel(path, file, threads, blocks, size, progress)?
    };
    Ok((Etag::from_block_digests(&digests), size))
}

/// The qetag and length of everything `reader` yields, read in order in 128 KiB
/// chunks on the calling thread (memory: one buffer and 20 bytes per block).
///
/// # Errors
///
/// The reader's I/O error (interrupted reads are retried).
pub fn hash_reader(reader: impl Read) -> io::Result<(Etag, u64)> {
    hash_stream(reader, None)
}

fn hash_stream(mut reader: impl Read, progress: Progress<'_>) -> io::Result<(Etag, u64)> {
    let mut hasher = Qetag::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = read_some(&mut reader, &mut buf, progress)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let size = hasher.bytes_hashed();
    Ok((hasher.finalize(), size))
}

/// Blocks shared out to `threads` workers, each with its own handle on the file (so
/// the kernel's read-ahead follows each one) and its own 128 KiB buffer.
fn hash_parallel(
    path: &Path,
    first: File,
    threads: usize,
    blocks: u64,
    size: u64,
    progress: Progress<'_>,
) -> io::Result<Vec<[u8; 20]>> {
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let worker = |mut file: File| -> io::Result<Digests> {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut done = Vec::new();
        loop {
            if failed.load(Ordering::Relaxed) {
                return Ok(done);
            }
            let block = next.fetch_add(1, Ordering::Relaxed);
            if block >= blocks {
                return Ok(done);
            }
            match hash_block(&mut file, &mut buf, block, size, progress) {
                Ok(digest) => done.push((block, digest)),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    };
    let results: Vec<io::Result<Digests>> = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(threads);
        let mut first = Some(first);
        for _ in 0..threads {
            let file = match first.take() {
                Some(f) => Ok(f),
                None => File::open(path),
            };
            let worker = &worker;
            handles.push(scope.spawn(move || worker(file?)));
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a hashing thread panicked")))
            })
            .collect()
    });
    let mut digests = vec![[0u8; 20]; usize::try_from(blocks).map_err(io::Error::other)?];
    for result in results {
        for (block, digest) in result? {
            // `block < blocks`, which fits in usize (checked above).
            digests[block as usize] = digest;
        }
    }
    Ok(digests)
}

/// One read into `buf` (an interrupted read is tried again), reported to `progress`;
/// 0 at the end of the data.
fn read_some(reader: &mut impl Read, buf: &mut [u8], progress: Progress<'_>) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Ok(n) => {
                if let Some(report) = progress.filter(|_| n > 0) {
                    report(n as u64);
                }
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The digest of block `block` of a `size`-byte file, read in chunks into `buf`.
fn hash_block(
    file: &mut File,
    buf: &mut [u8],
    block: u64,
    size: u64,
    progress: Progress<'_>,
) -> io::Result<[u8; 20]> {
    let start = block * BLOCK;
    let end = (start + BLOCK).min(size);
    file.seek(SeekFrom::Start(start))?;
    let mut hasher = BlockHasher::new();
    let mut at = start;
    while at < end {
        // At most READ_CHUNK, so it fits in usize.
        let want = (end - at).min(buf.len() as u64) as usize;
        let n = read_some(file, &mut buf[..want], progress)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file became shorter while it was hashed (at byte {at} of {size})"),
            ));
        }
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use offline_proto::qetag::qetag;

    fn data(len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    #[test]
    fn every_thread_count_and_size_agrees_with_one_shot() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            1,
            READ_CHUNK + 3,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            3 * BLOCK_SIZE - 7,
            5 * BLOCK_SIZE,
        ] {
            let bytes = data(len);
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &bytes).unwrap();
            let want = (qetag(&bytes), len as u64);
            for threads in [0, 1, 2, 3, 8] {
                assert_eq!(hash_file(&path, threads).unwrap(), want, "{len} {threads}");
            }
            assert_eq!(hash_reader(&bytes[..]).unwrap(), want);
            let seen = AtomicU64::new(0);
            let counted = hash_file_with_progress(&path, 2, &|n| {
                seen.fetch_add(n, Ordering::Relaxed);
            });
            assert_eq!(counted.unwrap(), want);
            assert_eq!(seen.load(Ordering::Relaxed), len as u64);
        }
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = hash_file(dir.path().join("nope"), 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
