//! The engine allocates nothing per frame in steady state: a bulk flow of full frames,
//! written in large pieces and read as it arrives, reuses its buffers on both ends.
//! Counted with a counting global allocator, so this file holds a single test.

use bytes::Buf;
use smux_core::proto::{Engine, Transmit};
use smux_core::{Config, Role};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::time::Instant;

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const FRAME: usize = 32 * 1024;
const WRITE: usize = 128 * 1024;

/// Frames what `engine` has to send (up to 128 KiB) and writes it all to `wire`, replacing
/// what was there: the "socket", copying the frames out as a vectored write would.
fn send(engine: &mut Engine, out: &mut Transmit, wire: &mut Vec<u8>) {
    while engine.poll_transmit(Instant::now(), out, 128 * 1024) > 0 {}
    wire.clear();
    while out.has_remaining() {
        let chunk = out.chunk();
        wire.extend_from_slice(chunk);
        let n = chunk.len();
        out.advance(n);
    }
}

/// Moves `total` bytes from `client` to `server` through an in-memory "connection" of at
/// most 128 KiB per hop; returns the bytes the server read.
fn transfer(client: &mut Engine, server: &mut Engine, total: usize, wire: &mut Vec<u8>) -> usize {
    let now = Instant::now();
    let cid = client.open().expect("open");
    let data = vec![0x5au8; WRITE];
    let mut out = Transmit::new();
    let mut back = Transmit::new();
    let mut back_wire: Vec<u8> = Vec::with_capacity(4096);
    let mut inbox: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut buf = vec![0u8; WRITE];
    let (mut written, mut read) = (0, 0);
    let mut sid = None;
    while read < total {
        if written < total {
            if let Ok(n) = client.write(cid, &data[..WRITE.min(total - written)]) {
                written += n;
            }
        }
        send(client, &mut out, wire);
        inbox.extend_from_slice(wire);
        let used = server.handle_input(now, &inbox);
        inbox.drain(..used);
        while server.poll_event().is_some() {}
        while client.poll_event().is_some() {}
        if sid.is_none() {
            sid = server.accept().expect("session open");
        }
        if let Some(id) = sid {
            while let Ok(n) = server.read(id, &mut buf) {
                if n == 0 {
                    break;
                }
                read += n;
            }
        }
        // Window updates (version 2) go back.
        send(server, &mut back, &mut back_wire);
        let used = client.handle_input(now, &back_wire);
        assert_eq!(
            used,
            back_wire.len(),
            "the client takes every control frame"
        );
    }
    read
}

#[test]
fn steady_bulk_flow_allocates_nothing_per_frame() {
    for version in [1, 2] {
        let config = Config::builder()
            .version(version)
            .max_frame_size(FRAME)
            .max_stream_buffer(256 * 1024)
            .build()
            .unwrap();
        let now = Instant::now();
        let mut client = Engine::new(Role::Client, config.clone(), now);
        let mut server = Engine::new(Role::Server, config, now);
        let mut wire = Vec::with_capacity(512 * 1024);
        // Warm up: buffers reach their steady sizes.
        transfer(&mut client, &mut server, 4 << 20, &mut wire);
        let total = 64 << 20;
        let region = Region::new(GLOBAL);
        let read = transfer(&mut client, &mut server, total, &mut wire);
        let allocs = region.change().allocations;
        assert_eq!(read, total);
        let frames = total / FRAME;
        let per_frame = allocs as f64 / frames as f64;
        println!("v{version}: {allocs} allocations for {frames} frames ({per_frame:.3} per frame)");
        assert!(
            per_frame < 0.05,
            "v{version}: {allocs} allocations for {frames} frames"
        );
    }
}
