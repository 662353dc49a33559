//! Memory held for buffered inbound data, as the allocator counts it, stays within the
//! engine's stated bound plus a documented constant, whatever a hostile peer sends.
//! One test in its own binary: the global allocator counts every byte of the process.

use cap::Cap;
use smux_core::frame::{Frame, Version};
use smux_core::Config;
use std::alloc::System;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const RECEIVE_BUFFER: usize = 256 * 1024;
/// Per-stream state the engine and driver keep for an open stream (measured in
/// `idle_streams_cost_little`), used in the bounds below.
const PER_STREAM: usize = 1024;

/// The allocator counts the whole process: one measurement at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn tiny_frame_flood_to_200_unread_streams_stays_bounded() {
    flood(200);
}

#[test]
fn tiny_frame_flood_to_10000_unread_streams_stays_bounded() {
    flood(10_000);
}

fn flood(streams: u32) {
    let _turn = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (peer, ours) = tokio::io::duplex(64 * 1024);
        let config = Config::builder()
            .max_receive_buffer(RECEIVE_BUFFER)
            .max_stream_buffer(64 * 1024)
            .accept_backlog(streams as usize)
            .build()
            .unwrap();
        let before = ALLOCATOR.allocated();
        let server = smux_tokio::server(ours, config).unwrap();

        // The hostile peer: opens streams nobody accepts and floods them with 1-byte frames,
        // round-robin, until the server stops reading.
        let mut peer = peer;
        let mut batch = Vec::new();
        for sid in 0..streams {
            Frame::Syn { sid: 3 + 2 * sid }
                .encode(Version::V1, &mut batch)
                .unwrap();
        }
        peer.write_all(&batch).await.unwrap();
        let mut sent = 0usize;
        let mut peak = 0usize;
        'flood: loop {
            batch.clear();
            for sid in 0..streams {
                let frame = Frame::Psh {
                    sid: 3 + 2 * sid,
                    data: bytes::Bytes::from_static(b"x"),
                };
                frame.encode(Version::V1, &mut batch).unwrap();
            }
            match tokio::time::timeout(Duration::from_millis(500), peer.write_all(&batch)).await {
                Ok(result) => result.unwrap(),
                Err(_) => break 'flood, // the server stopped reading: its budget is spent
            }
            sent += streams as usize;
            peak = peak.max(ALLOCATOR.allocated().saturating_sub(before));
            assert!(
                sent < 4 * RECEIVE_BUFFER,
                "the server never stopped reading"
            );
        }
        tokio::task::yield_now().await;
        let held = ALLOCATOR.allocated().saturating_sub(before);
        peak = peak.max(held);
        let stats = server.stats();
        assert!(stats.buffered_in >= RECEIVE_BUFFER, "{stats:?}");
        assert!(stats.buffered_in <= RECEIVE_BUFFER + 65535, "{stats:?}");

        // The stated bound: the data, as much again at most in packing-buffer slack, under
        // 10% bookkeeping, each stream's own state, plus the driver's fixed buffers (128 KiB
        // read, up to 256 KiB of queued output) and 64 KiB for the session and runtime.
        let data = RECEIVE_BUFFER + 65535;
        let bound = 2 * data + data / 10 + streams as usize * PER_STREAM + (128 + 256 + 64) * 1024;
        assert!(peak <= bound, "held {peak} bytes, bound {bound}");
        eprintln!(
            "buffered {} bytes in {} streams; allocator held at most {peak} bytes (bound {bound})",
            stats.buffered_in, streams
        );
        drop(server);
    });
}

/// A session holding 10 000 idle, accepted streams costs at most `PER_STREAM` bytes each.
#[test]
fn idle_streams_cost_little() {
    let _turn = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    const IDLE: u32 = 10_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut peer, ours) = tokio::io::duplex(64 * 1024);
        let config = Config::builder()
            .accept_backlog(IDLE as usize)
            .build()
            .unwrap();
        let server = smux_tokio::server(ours, config).unwrap();
        let mut held = Vec::with_capacity(IDLE as usize);
        let before = ALLOCATOR.allocated();
        let mut syns = Vec::new();
        for i in 0..IDLE {
            Frame::Syn { sid: 3 + 2 * i }
                .encode(Version::V1, &mut syns)
                .unwrap();
        }
        peer.write_all(&syns).await.unwrap();
        for _ in 0..IDLE {
            held.push(server.accept_stream().await.unwrap());
        }
        let per_stream = ALLOCATOR.allocated().saturating_sub(before) / IDLE as usize;
        eprintln!("{IDLE} idle streams: {per_stream} bytes each (engine, driver and handle)");
        assert!(
            per_stream <= PER_STREAM,
            "{per_stream} bytes per idle stream"
        );
        assert_eq!(server.stats().open_streams, IDLE as usize);
        drop(held);
    });
}
