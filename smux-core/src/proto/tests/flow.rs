//! Flow control (the version-1 session budget, version-2 windows) and fair scheduling; the
//! send side's buffers and budget are in `send.rs`.

use super::one_way;
use super::pair::{quiet, Pair, Rng};
use super::session::{feed, sent_frames};
use crate::frame::{Frame, WindowUpdate};
use crate::proto::flow::INITIAL_PEER_WINDOW;
use crate::proto::{Engine, Role, StreamId};
use crate::StreamError;
use std::time::Instant;

/// Opens `n` streams from the client and accepts them on the server.
pub(super) fn open_n(pair: &mut Pair, n: usize) -> Vec<(StreamId, StreamId)> {
    let ids: Vec<StreamId> = (0..n).map(|_| pair.client.engine.open().unwrap()).collect();
    pair.drive();
    ids.into_iter()
        .map(|c| (c, pair.server.accept().unwrap()))
        .collect()
}

/// Keeps the client writing on every stream in `writers` until nothing moves; returns the
/// bytes accepted per stream.
pub(super) fn saturate(
    pair: &mut Pair,
    writers: &[StreamId],
    reader: Option<StreamId>,
) -> Vec<usize> {
    let chunk = vec![0xAB; 16 * 1024];
    let mut written = vec![0; writers.len()];
    let mut budget = 8usize << 20;
    pair.drive_app(|p| {
        let mut acted = false;
        for (i, &id) in writers.iter().enumerate() {
            if budget > 0 {
                let w = p.client.write_some(id, &chunk);
                written[i] += w;
                budget = budget.saturating_sub(w);
                acted |= w > 0;
            }
        }
        if let Some(r) = reader {
            acted |= !p.server.read_available(r).unwrap().is_empty();
        }
        acted
    });
    written
}

#[test]
fn v1_slow_reader_stalls_the_whole_session_at_the_budget() {
    let config = quiet(1)
        .max_receive_buffer(256 * 1024)
        .max_stream_buffer(1024)
        .build()
        .unwrap();
    let mut pair = Pair::with(config);
    pair.capacity = 64 * 1024;
    let streams = open_n(&mut pair, 2);
    let (slow_c, _slow_s) = streams[0];
    let (fast_c, fast_s) = streams[1];
    // Fill the budget through the stream nobody reads.
    saturate(&mut pair, &[slow_c], None);
    let stats = pair.server.engine.stats();
    assert!(
        stats.buffered_in >= 256 * 1024,
        "budget reached: {}",
        stats.buffered_in
    );
    assert!(
        stats.buffered_in <= 256 * 1024 + 65535,
        "one frame over at most"
    );
    assert!(!pair.server.engine.wants_input());
    // The other stream is stalled too: v1 has only the session budget.
    pair.client.write_some(fast_c, b"blocked");
    pair.drive();
    assert!(pair.server.read_available(fast_s).unwrap().is_empty());
}

#[test]
fn v2_slow_reader_stalls_only_its_stream() {
    let mut pair = Pair::version(2);
    pair.capacity = 64 * 1024;
    let streams = open_n(&mut pair, 2);
    let (slow_c, slow_s) = streams[0];
    let (fast_c, fast_s) = streams[1];
    // The slow stream's first bytes are read once; that reports nothing, so the client
    // may fill Go's assumed initial window.
    pair.client.write_some(slow_c, b"x");
    pair.drive();
    assert_eq!(pair.server.read_available(slow_s).unwrap(), b"x");
    pair.drive();
    saturate(&mut pair, &[slow_c], None);
    let buffered = pair.server.engine.stats().buffered_in;
    assert_eq!(
        buffered,
        INITIAL_PEER_WINDOW as usize - 1,
        "the window bounds the slow stream"
    );
    // The fast stream keeps flowing: move 4 MiB through it.
    let written = saturate(&mut pair, &[fast_c], Some(fast_s));
    assert_eq!(written[0], 8 << 20);
    assert!(pair.server.engine.wants_input());
}

#[test]
fn v2_first_window_is_262144_then_the_peers() {
    let now = Instant::now();
    let mut client = Engine::new(Role::Client, quiet(2).build().unwrap(), now);
    let id = client.open().unwrap();
    assert_eq!(client.write(id, &[0; 300_000]), Ok(256 * 1024));
    let frames = sent_frames(&mut client, now);
    let sent: usize = frames
        .iter()
        .map(|f| match f {
            Frame::Psh { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(
        sent, 262_144,
        "the initial window, whatever the peer's config"
    );
    // UPD(consumed 262144, window 65536) opens 65536 more.
    client.write(id, &[0; 100_000]).unwrap();
    feed(
        &mut client,
        now,
        &[Frame::Upd {
            sid: id.0,
            update: WindowUpdate {
                consumed: 262_144,
                window: 65536,
            },
        }],
    );
    let more: usize = sent_frames(&mut client, now)
        .iter()
        .map(|f| match f {
            Frame::Psh { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(more, 65536);
}

#[test]
fn v2_counters_wrap_around_u32() {
    // Start both counters just below 2^32 and move 1 MiB across the wrap.
    let config = quiet(2).max_stream_buffer(4096).build().unwrap();
    let mut pair = Pair::with(config);
    let streams = open_n(&mut pair, 1);
    let (c, s) = streams[0];
    let start = u32::MAX - 10_000;
    let sender = pair.client.engine.streams.get_mut(c.0).unwrap();
    sender.send_window.start_at(start, 4096);
    let receiver = pair.server.engine.streams.get_mut(s.0).unwrap();
    receiver.recv_window.start_at(start);
    let data = Rng::new(5).bytes(1 << 20);
    let got = one_way(&mut pair, true, c, s, &data);
    assert_eq!(got.len(), data.len());
    assert!(got == data);
    assert!(
        pair.client
            .engine
            .streams
            .get(c.0)
            .unwrap()
            .send_window
            .written()
            < start,
        "wrapped"
    );
}

/// A v2 server engine (stream buffer 1000) that accepted sid 3 with `len` bytes buffered.
/// A server holding `len` unread bytes on stream 3, with fixed windows (Go's UPD rule: a
/// report every half window; with tuning on over a long path it is every sixteenth).
fn server_holding(len: usize) -> (Engine, StreamId, Instant) {
    let now = Instant::now();
    let config = quiet(2)
        .max_stream_buffer(1000)
        .window_tuning(false)
        .build()
        .unwrap();
    let mut server = Engine::new(Role::Server, config, now);
    let mut frames = vec![Frame::Syn { sid: 3 }];
    let mut left = len;
    while left > 0 {
        let n = left.min(60_000);
        frames.push(Frame::Psh {
            sid: 3,
            data: vec![0; n].into(),
        });
        left -= n;
    }
    feed(&mut server, now, &frames);
    let s = server.accept().unwrap().unwrap();
    (server, s, now)
}

/// Reads exactly `n` bytes of stream `s`, in reads of at most 100.
fn read_exactly(server: &mut Engine, s: StreamId, mut n: usize) {
    let mut buf = [0u8; 100];
    while n > 0 {
        let want = n.min(buf.len());
        n -= server.read(s, &mut buf[..want]).unwrap();
    }
}

#[test]
fn upd_is_sent_when_it_raises_the_peers_limit_by_half_a_window() {
    // The peer starts from Go's assumed window, 262144 bytes; ours is 1000.
    let (mut server, s, now) = server_holding(INITIAL_PEER_WINDOW as usize);
    let consumed = |server: &mut Engine| -> Vec<u32> {
        sent_frames(server, now)
            .iter()
            .filter_map(|f| match f {
                Frame::Upd { update, .. } => {
                    assert_eq!(update.window, 1000);
                    Some(update.consumed)
                }
                _ => None,
            })
            .collect()
    };
    read_exactly(&mut server, s, 100);
    assert_eq!(
        consumed(&mut server),
        Vec::<u32>::new(),
        "the first read tells a peer that may send 262144 bytes nothing it can use"
    );
    let half_below = INITIAL_PEER_WINDOW - 500;
    read_exactly(&mut server, s, half_below as usize - 101);
    assert_eq!(consumed(&mut server), Vec::<u32>::new(), "a byte short");
    read_exactly(&mut server, s, 1);
    assert_eq!(
        consumed(&mut server),
        [half_below],
        "reporting now raises the peer's limit by half our window"
    );
    // The peer sends what the report let it (500 more bytes), and so on.
    let more = |server: &mut Engine, n: usize| {
        let data = Frame::Psh {
            sid: 3,
            data: vec![0; n].into(),
        };
        assert!(feed(server, now, &[data]).is_empty());
    };
    more(&mut server, 500);
    read_exactly(&mut server, s, 400);
    assert_eq!(
        consumed(&mut server),
        Vec::<u32>::new(),
        "400 < half of 1000"
    );
    read_exactly(&mut server, s, 100);
    assert_eq!(consumed(&mut server), [half_below + 500]);
    more(&mut server, 500);
    // Reads before the UPD goes out coalesce into one, with the latest count.
    read_exactly(&mut server, s, 500);
    read_exactly(&mut server, s, 200);
    assert_eq!(consumed(&mut server), [half_below + 1200]);
}

#[test]
fn upd_of_a_window_beyond_go_s_initial_one_is_sent_on_the_first_read() {
    let now = Instant::now();
    let config = quiet(2)
        .max_stream_buffer(1 << 20)
        .window_tuning(false)
        .build()
        .unwrap();
    let mut server = Engine::new(Role::Server, config, now);
    let data = Frame::Psh {
        sid: 3,
        data: vec![0; 100].into(),
    };
    feed(&mut server, now, &[Frame::Syn { sid: 3 }, data]);
    let s = server.accept().unwrap().unwrap();
    read_exactly(&mut server, s, 100);
    assert_eq!(
        sent_frames(&mut server, now),
        [Frame::Upd {
            sid: 3,
            update: WindowUpdate {
                consumed: 100,
                window: 1 << 20
            }
        }],
        "the peer may send a MiB, not 256 KiB: it must hear of it at once"
    );
}

#[test]
fn v2_upd_at_zero_counter_is_sent() {
    let (mut server, s, now) = server_holding(600);
    let receiver = server.streams.get_mut(3).unwrap();
    receiver.recv_window.start_at(u32::MAX - 599);
    assert_eq!(server.read(s, &mut [0; 600]), Ok(600));
    let upd = sent_frames(&mut server, now);
    assert_eq!(
        upd,
        [Frame::Upd {
            sid: 3,
            update: WindowUpdate {
                consumed: 0,
                window: 1000
            }
        }],
        "Go would skip this one"
    );
}

#[test]
fn eight_saturating_streams_share_fairly() {
    for v in [1, 2] {
        // Shares are counted in whole frames; 4 KiB frames give 32 per stream per 1 MiB
        // window, so one frame more or less is 3%, inside the 10% allowed.
        let mut pair = Pair::with(quiet(v).max_frame_size(4096).build().unwrap());
        pair.capacity = 32 * 1024; // a narrow pipe: the scheduler decides who goes
        let streams = open_n(&mut pair, 8);
        let total_goal = 16usize << 20;
        let chunk = vec![1u8; 64 * 1024];
        let mut received = [0usize; 8];
        let mut window = [0usize; 8];
        let mut window_total = 0;
        let mut windows_checked = 0;
        let mut total = 0;
        while total < total_goal {
            for &(c, _) in &streams {
                pair.client.write_some(c, &chunk);
            }
            pair.step();
            for (i, &(_, s)) in streams.iter().enumerate() {
                let n = pair.server.read_available(s).unwrap().len();
                received[i] += n;
                window[i] += n;
                window_total += n;
                total += n;
            }
            if window_total >= 1 << 20 {
                let mean = window_total as f64 / 8.0;
                for (i, &w) in window.iter().enumerate() {
                    let dev = (w as f64 - mean).abs() / mean;
                    assert!(dev <= 0.10, "v{v} stream {i}: {w} bytes vs mean {mean:.0}");
                }
                window = [0; 8];
                window_total = 0;
                windows_checked += 1;
            }
        }
        assert!(windows_checked >= 15, "{windows_checked}");
    }
}

#[test]
fn a_control_frame_waits_at_most_one_data_frame() {
    let now = Instant::now();
    let mut client = Engine::new(Role::Client, quiet(1).build().unwrap(), now);
    let a = client.open().unwrap();
    client.write(a, &[0; 200_000]).unwrap();
    let mut out = crate::proto::Transmit::new();
    // a's SYN, then one of its data frames; then b opens while a has lots queued.
    assert_eq!(client.poll_transmit(now, &mut out, 1), 1);
    let limit = out.len() + 1;
    assert_eq!(client.poll_transmit(now, &mut out, limit), 1);
    let b = client.open().unwrap();
    out = crate::proto::Transmit::new();
    assert_eq!(client.poll_transmit(now, &mut out, 1), 1);
    let bytes = bytes::Buf::copy_to_bytes(&mut out, 8);
    let mut syn = Vec::new();
    Frame::Syn { sid: b.0 }
        .encode(crate::frame::Version::V1, &mut syn)
        .unwrap();
    assert_eq!(
        &bytes[..],
        &syn[..],
        "b's SYN goes before a's next data frame"
    );
}

#[test]
fn writes_after_session_end_fail_and_reads_drain_first() {
    let mut pair = Pair::version(1);
    let streams = open_n(&mut pair, 2);
    let (c0, s0) = streams[0];
    let (_c1, s1) = streams[1];
    pair.client.write_some(c0, b"last words");
    pair.client.engine.finish(c0).unwrap();
    pair.server.engine.finish(s0).unwrap();
    pair.drive();
    pair.server.engine.handle_eof(0);
    // Buffered data first, then end of stream where the FIN came, else the reason.
    assert_eq!(pair.server.read_available(s0).unwrap(), b"last words");
    assert!(pair.server.at_eof(s0));
    let err = pair.server.engine.read(s1, &mut [0; 4]).unwrap_err();
    // A stream still open when the connection ended: not a clean end.
    assert_eq!(
        err,
        StreamError::SessionClosed(crate::CloseReason::UnexpectedEof {
            open_streams: 1,
            mid_frame: false,
            before_first_frame: false,
        })
    );
    assert_eq!(pair.server.engine.write(s1, b"x"), Err(err.clone()));
    // Finishing a stream that can no longer send says why; finishing one that was finished
    // already is a no-op, whatever the session (a second shutdown of a socket).
    assert_eq!(pair.server.engine.finish(s1), Err(err));
    assert_eq!(
        pair.server.engine.finish(s0),
        Ok(()),
        "s0 was finished before the end"
    );
}

/// A stream the receiver let go of keeps granting window for what it discards, so the
/// peer's writer finishes instead of waiting forever (this wire has no reset), and the
/// discarded bytes are counted.
#[test]
fn a_dropped_stream_keeps_granting_window_until_the_peers_fin() {
    let mut pair = Pair::with(quiet(2).build().unwrap());
    let (c, s) = open_n(&mut pair, 1)[0];
    pair.server.engine.close_stream(s);
    pair.drive();
    assert!(pair.client.at_eof(c), "the server's FIN arrived");
    let data = Rng::new(9).bytes(8 << 20);
    let sent = pair.client_writes(c, &data);
    assert_eq!(sent, data.len(), "the writer got window for every byte");
    pair.client.engine.finish(c).unwrap();
    pair.drive();
    let stats = pair.server.engine.stats();
    assert_eq!(stats.discarded_bytes, data.len() as u64);
    assert_eq!(stats.buffered_in, 0, "nothing was buffered");
    assert_eq!(
        pair.server.engine.streams.len(),
        0,
        "forgotten once both FINs crossed"
    );
    assert_eq!(pair.client.engine.stats().open_streams, 0);
}

/// A stream whose application stopped reading (its read half dropped, the write half kept)
/// drops what it holds and what arrives. Before, its unread bytes stayed charged: in
/// version 1, with no stream window, they filled the receive budget and stopped every
/// stream of the session; in version 2 the peer's writer waited forever for window.
#[test]
fn a_stream_nobody_reads_holds_no_budget_and_stalls_nothing() {
    for version in [1, 2] {
        let config = quiet(version)
            .max_receive_buffer(256 * 1024)
            .build()
            .unwrap();
        let mut pair = Pair::with(config);
        let streams = open_n(&mut pair, 2);
        let ((ca, sa), (cb, sb)) = (streams[0], streams[1]);
        pair.client.write_some(ca, &[7u8; 1000]);
        pair.drive();
        pair.server.engine.stop_reading(sa);
        assert_eq!(pair.server.engine.stats().buffered_in, 0, "v{version}");
        // Far more than the budget on the stream nobody reads...
        let data = Rng::new(5).bytes(4 << 20);
        let sent = pair.client_writes(ca, &data);
        assert_eq!(
            sent,
            data.len(),
            "v{version}: the writer got window for every byte"
        );
        // ...and the other stream still flows, both ways.
        pair.client.write_some(cb, b"still here");
        pair.drive();
        assert_eq!(pair.server.read_available(sb).unwrap(), b"still here");
        // The stream still sends, and reading it is its end.
        pair.server.write_some(sa, b"reply");
        pair.drive();
        assert_eq!(pair.client.read_available(ca).unwrap(), b"reply");
        assert_eq!(pair.server.engine.read(sa, &mut [0u8; 8]), Ok(0));
        let stats = pair.server.engine.stats();
        assert_eq!(
            stats.discarded_bytes,
            1000 + data.len() as u64,
            "v{version}"
        );
        assert_eq!(stats.buffered_in, 0, "v{version}");
        pair.server.engine.assert_invariants();
    }
}

/// Once the peer's FIN arrived, reading sends no UPD: the peer sends nothing more, and a
/// late frame can make a peer that closes its connection at once reset it.
#[test]
fn no_upd_after_the_peers_fin() {
    // 3000 bytes and the FIN arrive before the first read, which would otherwise report.
    let mut fresh = Pair::with(quiet(2).max_stream_buffer(4096).build().unwrap());
    let (c2, s2) = open_n(&mut fresh, 1)[0];
    fresh.client.write_some(c2, &[1u8; 3000]);
    fresh.client.engine.finish(c2).unwrap();
    fresh.drive();
    assert_eq!(fresh.server.read_available(s2).unwrap().len(), 3000);
    assert!(
        !fresh.server.engine.wants_transmit(),
        "a read after the peer's FIN queued an UPD"
    );
}
