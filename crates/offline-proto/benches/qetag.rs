//! qetag on one thread: 64 MiB in memory, one-shot and streamed in 128 KiB chunks
//! (the read size the file hashers use).
//!
//! `cargo bench -p offline-proto --bench qetag`

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use offline_proto::qetag::{qetag, Qetag};

const SIZE: usize = 64 * 1024 * 1024;

fn qetags(c: &mut Criterion) {
    let data: Vec<u8> = (0..SIZE as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9) >> 7) as u8)
        .collect();
    let mut group = c.benchmark_group("qetag 64 MiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(20);
    group.bench_function("one-shot", |b| {
        b.iter(|| qetag(std::hint::black_box(&data)));
    });
    group.bench_function("streamed in 128 KiB", |b| {
        b.iter(|| {
            let mut hasher = Qetag::new();
            for chunk in std::hint::black_box(&data).chunks(128 * 1024) {
                hasher.update(chunk);
            }
            hasher.finalize()
        });
    });
    group.finish();
}

criterion_group!(benches, qetags);
criterion_main!(benches);
