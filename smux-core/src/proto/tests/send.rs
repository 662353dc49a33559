//! Sending: send buffers reused rather than reallocated, the writers woken as they free
//! up, and the session send budget shared by every stream.

use super::flow::{open_n, saturate};
use super::one_way;
use super::pair::{quiet, Pair, Rng};
use crate::proto::{Engine, Event, Role, StreamId, Transmit};
use crate::StreamError;
use std::time::Instant;

/// A steady flow of full frames to a reader that keeps up reuses the same payload buffers
/// (no allocation per frame), and they are freed once the flow has stopped for a while.
#[test]
fn steady_flow_recycles_payload_buffers_then_frees_them() {
    for version in [1, 2] {
        let config = quiet(version).max_frame_size(32 * 1024).build().unwrap();
        let mut pair = Pair::with(config);
        pair.chunk = 128 * 1024;
        let (w, r) = open_n(&mut pair, 1)[0];
        let data = Rng::new(7).bytes(16 << 20);
        assert!(one_way(&mut pair, true, w, r, &data) == data);
        let frames = data.len() / (32 * 1024);
        let pool = &pair.server.engine.recv_pool;
        assert!(
            pool.misses() <= 8,
            "v{version}: {} of {frames} payloads needed a new buffer",
            pool.misses()
        );
        assert!(pool.held() > 0);
        let release = pair
            .server
            .engine
            .poll_timeout()
            .expect("pool release deadline");
        pair.advance_to(release);
        assert_eq!(
            pair.server.engine.recv_pool.held(),
            0,
            "v{version}: freed when idle"
        );
        assert_eq!(
            pair.server.engine.poll_timeout(),
            None,
            "v{version}: no more deadline"
        );
    }
}

/// A send buffer pinned by frames still in flight is not reallocated when a written-out
/// buffer is at hand: the last frame of an old buffer gives it back for the next write.
#[test]
fn pinned_send_buffers_reuse_written_out_ones() {
    let now = Instant::now();
    let config = quiet(1).max_frame_size(32 * 1024).build().unwrap();
    let mut e = Engine::new(Role::Client, config, now);
    let id = e.open().unwrap();
    let mut out = crate::proto::Transmit::new();
    let chunk = vec![7u8; 128 * 1024];
    let drain = |t: &mut crate::proto::Transmit| {
        while bytes::Buf::has_remaining(t) {
            let n = bytes::Buf::chunk(t).len();
            bytes::Buf::advance(t, n);
        }
    };
    // First buffer: framed (pinned by `out`), then a second write moves to a new one.
    assert_eq!(e.write(id, &chunk).unwrap(), chunk.len());
    while e.poll_transmit(now, &mut out, usize::MAX) > 0 {}
    assert_eq!(e.write(id, &chunk).unwrap(), chunk.len());
    drain(&mut out); // the first buffer's frames are written: it comes back
    while e.poll_transmit(now, &mut out, usize::MAX) > 0 {}
    assert_eq!(e.send_pool.len(), 1, "the written-out buffer is kept");
    // The second buffer is pinned by `out` now: the next write takes the kept one.
    assert_eq!(e.write(id, &chunk).unwrap(), chunk.len());
    assert_eq!(e.send_pool.len(), 0, "the kept buffer was reused");
    e.assert_invariants();
}

/// A writer blocked on a full send buffer is woken once half of it is free, not after every
/// frame: it refills half the buffer in one write while the rest keeps the stream flowing.
#[test]
fn a_blocked_writer_wakes_when_half_the_buffer_is_free() {
    let now = Instant::now();
    let config = quiet(1)
        .max_frame_size(1024)
        .max_stream_send_buffer(8 * 1024)
        .build()
        .unwrap();
    let mut e = Engine::new(Role::Client, config, now);
    let id = e.open().unwrap();
    while e.poll_event().is_some() {}
    assert_eq!(e.write(id, &[1u8; 8 * 1024]).unwrap(), 8 * 1024);
    assert!(matches!(e.write(id, &[1u8; 1]), Err(StreamError::Blocked)));
    let mut out = crate::proto::Transmit::new();
    let writable = |e: &mut Engine| {
        std::iter::from_fn(|| e.poll_event()).any(
            |ev| matches!(ev, crate::proto::Event::Stream { id: i, writable: true, .. } if i == id),
        )
    };
    // The SYN and three frames: 5 KiB still queued, no wake-up yet.
    let _ = e.poll_transmit(now, &mut out, 8 + 3 * (1024 + 8));
    assert!(!writable(&mut e), "woken before half the buffer was free");
    // The fourth frame leaves 4 KiB: half free.
    let queued = out.len();
    let _ = e.poll_transmit(now, &mut out, queued + 1);
    assert!(writable(&mut e), "not woken at half");
    assert_eq!(e.write(id, &[1u8; 8 * 1024]).unwrap(), 4 * 1024);
}

/// A client with `streams` open streams whose send buffers take 64 KiB each, in 4 KiB
/// frames, within a session send budget of 100 KiB.
fn client_with_send_budget(version: u8, streams: usize) -> (Engine, Vec<StreamId>, Instant) {
    let now = Instant::now();
    let config = quiet(version)
        .max_stream_send_buffer(64 * 1024)
        .max_frame_size(4096)
        .max_send_buffer(100 * 1024)
        .build()
        .unwrap();
    let mut client = Engine::new(Role::Client, config, now);
    let ids = (0..streams).map(|_| client.open().unwrap()).collect();
    (client, ids, now)
}

#[test]
fn all_streams_together_queue_at_most_the_send_budget_and_a_frame_each() {
    for v in [1, 2] {
        let (mut client, ids, _) = client_with_send_budget(v, 8);
        let data = vec![7u8; 64 * 1024];
        let took: Vec<usize> = ids
            .iter()
            .map(|&id| client.write(id, &data).unwrap_or(0))
            .collect();
        // The first stream fills its buffer, the second the rest of the budget, and every
        // other stream still gets one frame's worth.
        assert_eq!(
            took,
            [65536, 36864, 4096, 4096, 4096, 4096, 4096, 4096],
            "v{v}"
        );
        assert_eq!(client.stats().buffered_out, 100 * 1024 + 6 * 4096);
        assert_eq!(
            client.write(ids[7], &data),
            Err(StreamError::Blocked),
            "v{v}: past its frame's worth, the last stream waits"
        );
    }
}

#[test]
fn a_writer_waiting_for_the_send_budget_is_woken_as_framing_frees_it() {
    let (mut client, ids, now) = client_with_send_budget(1, 3);
    let data = vec![7u8; 64 * 1024];
    assert_eq!(client.write(ids[0], &data), Ok(65536));
    assert_eq!(client.write(ids[1], &data), Ok(36864));
    assert_eq!(client.write(ids[2], &data), Ok(4096));
    assert_eq!(client.write(ids[2], &data), Err(StreamError::Blocked));
    while client.poll_event().is_some() {}
    let mut out = Transmit::new();
    assert!(client.poll_transmit(now, &mut out, 16 * 1024) > 0);
    let mut woken = Vec::new();
    while let Some(e) = client.poll_event() {
        if let Event::Stream {
            id, writable: true, ..
        } = e
        {
            woken.push(id);
        }
    }
    assert!(woken.contains(&ids[2]), "woken: {woken:?}");
    assert!(client.write(ids[2], &data).unwrap() > 0, "room again");
}

/// A stream whose writer was woken by its own frames going out (not by room in the send
/// budget) stays in the line of writers waiting for room; when it comes out, it must not
/// use up a waiter's share of the room. Before, 26 such streams ahead of a real waiter
/// took every share of the room that framing freed, and the waiter, with too much queued
/// to be woken by its own frames, went on waiting with room free.
#[test]
fn writers_woken_already_do_not_use_up_the_room_of_those_waiting() {
    const FRAME: usize = 4096 + 8;
    let (mut client, ids, now) = client_with_send_budget(1, 41);
    let data = vec![7u8; 64 * 1024];
    let mut out = Transmit::new();
    let mut transmit = |client: &mut Engine, frames: usize, control: usize| {
        let _ = client.poll_transmit(now, &mut out, control + frames * FRAME);
        let framed = out.len();
        bytes::Buf::advance(&mut out, framed);
    };
    assert_eq!(client.write(ids[0], &data), Ok(65536));
    assert_eq!(client.write(ids[1], &data), Ok(36864));
    // 38 streams get a frame's worth each and wait for room.
    for &id in &ids[2..40] {
        assert_eq!(client.write(id, &data), Ok(4096));
        assert_eq!(client.write(id, &data), Err(StreamError::Blocked));
    }
    // The SYNs and 50 frames: each of those streams sends its frame, which wakes its
    // writer (it has nothing more to say); 12 of them come out of the line for the room.
    transmit(&mut client, 50, 41 * 8);
    while client.poll_event().is_some() {}
    // A writer takes the 48 KiB of room there is and waits for more, behind the other 26.
    let x = ids[40];
    assert_eq!(client.write(x, &data), Ok(48 * 1024));
    assert_eq!(client.write(x, &data), Err(StreamError::Blocked));
    // Six frames free 24 KiB; two are the waiter's own, which leaves it 40 KiB queued:
    // not few enough for its frames to wake it, so only the room can.
    transmit(&mut client, 6, 0);
    let woken = std::iter::from_fn(|| client.poll_event())
        .any(|e| matches!(e, Event::Stream { id, writable: true, .. } if id == x));
    assert!(woken, "room is free, and its writer still waits");
    assert!(client.write(x, &data).unwrap() > 0);
}

#[test]
fn v2_streams_the_peer_grants_no_window_do_not_stall_another() {
    // Four streams whose peer never reads fill the session send budget; a fifth still
    // moves all its data, a frame's worth at a time.
    let mut pair = Pair::with(
        quiet(2)
            .max_stream_send_buffer(64 * 1024)
            .max_frame_size(4096)
            .max_send_buffer(100 * 1024)
            .max_stream_buffer(4096)
            .build()
            .unwrap(),
    );
    let streams = open_n(&mut pair, 5);
    let stalled: Vec<StreamId> = streams[..4].iter().map(|&(c, _)| c).collect();
    saturate(&mut pair, &stalled, None);
    assert!(pair.client.engine.stats().buffered_out >= 100 * 1024);
    let (c, s) = streams[4];
    let data = Rng::new(9).bytes(256 * 1024);
    let got = one_way(&mut pair, true, c, s, &data);
    assert_eq!(got.len(), data.len());
    assert!(got == data);
}
