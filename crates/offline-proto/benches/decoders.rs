//! The decoders on the committed fixtures: both providers' envelopes with a typical
//! payload (123pan's task progress, 6pan's task page) and an identity blob.
//!
//! `cargo bench -p offline-proto --bench decoders`

#![allow(missing_docs)]

use std::path::Path;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use offline_proto::pan123::OfflineProcessRequest;
use offline_proto::sixpan::identity::Identity;
use offline_proto::sixpan::PageRequest;
use offline_proto::HttpResponse;

/// A fixture answer (`fixtures/...*.http`): comment lines, status line, headers, body.
fn response(relative: &str) -> HttpResponse {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(relative);
    let text = std::fs::read_to_string(&path).expect("a fixture");
    let text: String = text
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let mut builder = http::Response::builder().status(status);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            builder = builder.header(name.trim(), value.trim());
        }
    }
    builder
        .body(Bytes::from(body.to_owned()))
        .expect("a response")
}

fn decoders(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");

    let process = response("123pan/offline_download_process/response_running.gen.http");
    group.throughput(Throughput::Bytes(process.body().len() as u64));
    group.bench_function("123pan envelope + process", |b| {
        b.iter(|| {
            <OfflineProcessRequest as offline_proto::pan123::Endpoint>::decode(
                std::hint::black_box(&process),
            )
            .expect("decodes")
        });
    });

    let page = response("6pan/list_tasks/response_one_task.gen.http");
    group.throughput(Throughput::Bytes(page.body().len() as u64));
    group.bench_function("6pan envelope + task page", |b| {
        b.iter(|| {
            <PageRequest as offline_proto::sixpan::api::Endpoint>::decode(std::hint::black_box(
                &page,
            ))
            .expect("decodes")
        });
    });

    let blob_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/6pan/identity/parse_torrent_bt.txt");
    let blob = std::fs::read_to_string(blob_path).expect("an identity fixture");
    let blob = blob.trim().to_owned();
    group.throughput(Throughput::Bytes(blob.len() as u64));
    group.bench_function("6pan identity blob", |b| {
        b.iter(|| Identity::parse(std::hint::black_box(&blob)).expect("parses"));
    });
    group.finish();
}

criterion_group!(benches, decoders);
criterion_main!(benches);
