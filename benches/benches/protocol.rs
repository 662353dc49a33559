//! The protocol without I/O: frame encode/decode, and two engines moving data in memory.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use smux_core::frame::{Frame, Header, Version};
use smux_core::proto::{Engine, Role, StreamId, Transmit};
use smux_core::Config;
use std::hint::black_box;
use std::time::Instant;

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    let header = Header {
        cmd: smux_core::frame::Cmd::Psh,
        length: 32768,
        sid: 3,
    };
    g.bench_function("header encode+decode", |b| {
        b.iter(|| Header::decode(&black_box(header).encode(Version::V2), Version::V2).unwrap())
    });
    for size in [64usize, 32768] {
        let frame = Frame::Psh {
            sid: 3,
            data: Bytes::from(vec![7u8; size]),
        };
        let mut wire = Vec::new();
        frame.encode(Version::V1, &mut wire).unwrap();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("PSH decode", size), &wire, |b, wire| {
            b.iter(|| Frame::decode(black_box(wire), Version::V1).unwrap())
        });
    }
    g.finish();
}

/// Moves `total` bytes on one stream from a client engine to a server engine, in memory.
fn pump(version: u8, total: usize) {
    let now = Instant::now();
    let config = Config::builder()
        .version(version)
        .enable_keep_alive(false)
        .build()
        .unwrap();
    let mut client = Engine::new(Role::Client, config.clone(), now);
    let mut server = Engine::new(Role::Server, config, now);
    let id = client.open().unwrap();
    let chunk = vec![1u8; 128 * 1024];
    let mut buf = vec![0u8; 128 * 1024];
    let (mut sent, mut got) = (0, 0);
    let mut out = Transmit::new();
    let mut back = Transmit::new();
    let mut wire = Vec::new();
    let mut server_id: Option<StreamId> = None;
    while got < total {
        if sent < total {
            sent += client
                .write(id, &chunk[..(total - sent).min(chunk.len())])
                .unwrap_or(0);
        }
        let _ = client.poll_transmit(now, &mut out, 256 * 1024);
        wire.clear();
        while bytes::Buf::has_remaining(&out) {
            let c = bytes::Buf::chunk(&out);
            wire.extend_from_slice(c);
            let n = c.len();
            bytes::Buf::advance(&mut out, n);
        }
        let used = server.handle_input(now, &wire);
        assert_eq!(used, wire.len());
        let sid = *server_id.get_or_insert_with(|| server.accept().unwrap().unwrap());
        while let Ok(n) = server.read(sid, &mut buf) {
            if n == 0 {
                break;
            }
            got += n;
        }
        // Window updates back to the client.
        let _ = server.poll_transmit(now, &mut back, usize::MAX);
        let pending = back.len();
        let upd = bytes::Buf::copy_to_bytes(&mut back, pending);
        client.handle_input(now, &upd);
    }
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine in memory");
    let total = 16 << 20;
    g.throughput(Throughput::Bytes(total as u64));
    for version in [1u8, 2] {
        g.bench_function(
            BenchmarkId::new("one stream, 16 MiB", format!("v{version}")),
            |b| b.iter(|| pump(version, total)),
        );
    }
    g.finish();
}

criterion_group!(benches, frames, engine);
criterion_main!(benches);
