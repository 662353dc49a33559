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

const STREAMS: u32 = 200;
const RECEIVE_BUFFER: usize = 256 * 1024;

#[test]
fn tiny_frame_flood_to_unread_streams_stays_bounded() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (peer, ours) = tokio::io::duplex(64 * 1024);
        let config = Config::builder()
            .max_receive_buffer(RECEIVE_BUFFER)
            .max_stream_buffer(64 * 1024)
            .build()
            .unwrap();
        let before = ALLOCATOR.allocated();
        let server = smux_tokio::server(ours, config).unwrap();

        // The hostile peer: opens streams nobody accepts and floods them with 1-byte frames,
        // round-robin, until the server stops reading.
        let mut peer = peer;
        let mut batch = Vec::new();
        for sid in 0..STREAMS {
            Frame::Syn { sid: 3 + 2 * sid }
                .encode(Version::V1, &mut batch)
                .unwrap();
        }
        peer.write_all(&batch).await.unwrap();
        let mut sent = 0usize;
        let mut peak = 0usize;
        'flood: loop {
            batch.clear();
            for sid in 0..STREAMS {
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
            sent += STREAMS as usize;
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

        // The stated bound: the data, plus under 10% bookkeeping, plus one 4 KiB packing
        // buffer and the stream's own state (under 1 KiB) per stream, plus the driver's
        // fixed buffers (128 KiB read, up to 256 KiB of queued output) and 64 KiB slack for
        // the session, the runtime's task and the maps.
        let data = RECEIVE_BUFFER + 65535;
        let bound = data + data / 10 + STREAMS as usize * (4096 + 1024) + (128 + 256 + 64) * 1024;
        assert!(peak <= bound, "held {peak} bytes, bound {bound}");
        eprintln!(
            "buffered {} bytes in {} streams; allocator held at most {peak} bytes (bound {bound})",
            stats.buffered_in, STREAMS
        );
        drop(server);
    });
}
