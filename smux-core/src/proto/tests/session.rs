//! Stream lifecycle: ids, open/accept, echo, half-close, close, shutdown, backlog.

use super::pair::{quiet, Pair, Rng};
use super::{echo, messages, one_way};
use crate::frame::{Frame, Version};
use crate::proto::id::IdAllocator;
use crate::proto::{Engine, Event, Role, StreamId, Transmit};
use crate::{CloseReason, Config, OpenError, StreamError};
use bytes::{Buf, BytesMut};
use std::time::Instant;

/// Everything the engine wants to send now, decoded.
pub(crate) fn sent_frames(engine: &mut Engine, now: Instant) -> Vec<Frame> {
    let mut out = Transmit::new();
    while engine.poll_transmit(now, &mut out, usize::MAX) > 0 {}
    let bytes = out.copy_to_bytes(out.len());
    let version = engine.config().version();
    let mut rest = &bytes[..];
    let mut frames = Vec::new();
    while let Some((f, used)) = Frame::decode(rest, version).unwrap() {
        frames.push(f);
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    frames
}

/// Feeds encoded frames to the engine.
pub(crate) fn feed(engine: &mut Engine, now: Instant, frames: &[Frame]) -> BytesMut {
    let mut buf = BytesMut::new();
    for f in frames {
        f.encode(engine.config().version(), &mut buf).unwrap();
    }
    let used = engine.handle_input(now, &buf);
    buf.advance(used);
    buf
}

#[test]
fn stream_ids_follow_go() {
    let mut pair = Pair::version(1);
    let c: Vec<u32> = (0..3)
        .map(|_| pair.client.engine.open().unwrap().0)
        .collect();
    let s: Vec<u32> = (0..3)
        .map(|_| pair.server.engine.open().unwrap().0)
        .collect();
    assert_eq!(c, [3, 5, 7]);
    assert_eq!(s, [2, 4, 6]);
    pair.drive();
    // Each side accepts the other's streams in order.
    let accepted: Vec<u32> = std::iter::from_fn(|| pair.server.accept())
        .map(|i| i.0)
        .collect();
    assert_eq!(accepted, [3, 5, 7]);
    let accepted: Vec<u32> = std::iter::from_fn(|| pair.client.accept())
        .map(|i| i.0)
        .collect();
    assert_eq!(accepted, [2, 4, 6]);
}

#[test]
fn ids_exhaust_with_a_typed_error() {
    let now = Instant::now();
    let mut client = Engine::new(Role::Client, Config::default(), now);
    client.ids = IdAllocator::new(Role::Client, Some(u32::MAX - 2));
    assert_eq!(client.open().unwrap(), StreamId(0xFFFF_FFFD));
    assert_eq!(client.open().unwrap(), StreamId(0xFFFF_FFFF));
    assert_eq!(client.open(), Err(OpenError::IdsExhausted));
    assert_eq!(client.open(), Err(OpenError::IdsExhausted));
    let mut server = Engine::new(Role::Server, Config::default(), now);
    server.ids = IdAllocator::new(Role::Server, Some(u32::MAX - 1));
    assert_eq!(server.open().unwrap(), StreamId(0xFFFF_FFFE));
    assert_eq!(server.open(), Err(OpenError::IdsExhausted));
    // Nothing is sent for the failed opens.
    let syns = sent_frames(&mut server, now);
    assert_eq!(syns, [Frame::Syn { sid: 0xFFFF_FFFE }]);
}

#[test]
fn a_configured_first_stream_id_keeps_the_roles_parity() {
    let now = Instant::now();
    let opened = |role, first| {
        let config = Config::builder().first_stream_id(first).build().unwrap();
        let mut engine = Engine::new(role, config, now);
        [engine.open(), engine.open()]
    };
    let ids = |a: u32, b: u32| [Ok(StreamId(a)), Ok(StreamId(b))];
    assert_eq!(opened(Role::Client, 11), ids(11, 13));
    assert_eq!(opened(Role::Client, 10), ids(11, 13));
    assert_eq!(opened(Role::Server, 10), ids(10, 12));
    assert_eq!(opened(Role::Server, 11), ids(12, 14));
    // At the top: one id left for a client, none for a server.
    assert_eq!(
        opened(Role::Client, u32::MAX),
        [Ok(StreamId(u32::MAX)), Err(OpenError::IdsExhausted)]
    );
    assert_eq!(
        opened(Role::Server, u32::MAX),
        [Err(OpenError::IdsExhausted), Err(OpenError::IdsExhausted)]
    );
}

#[test]
fn echo_v1_and_v2() {
    for v in [1, 2] {
        let mut pair = Pair::version(v);
        echo(&mut pair, &messages(1, 4, 0, 200_000), false);
        echo(&mut pair, &messages(2, 4, 1, 5000), true);
    }
}

#[test]
fn thousand_streams() {
    for v in [1, 2] {
        let mut pair = Pair::version(v);
        pair.capacity = 64 * 1024;
        pair.chunk = 16 * 1024;
        echo(&mut pair, &messages(3, 1000, 1, 3000), true);
        assert_eq!(pair.client.engine.stats().open_streams, 0);
        assert_eq!(pair.server.engine.stats().open_streams, 0);
    }
}

#[test]
fn random_sizes_64_mib_each_version() {
    for v in [1, 2] {
        let mut pair = Pair::version(v);
        let mut rng = Rng::new(0x5eed + u64::from(v));
        let mut total = 0;
        while total < 64 << 20 {
            // Sizes 1 B..1 MiB, in batches of 8 concurrent streams.
            let batch: Vec<Vec<u8>> = (0..8)
                .map(|_| {
                    let len = rng.range(1, 1 << 20);
                    rng.bytes(len)
                })
                .collect();
            total += batch.iter().map(Vec::len).sum::<usize>();
            echo(&mut pair, &batch, true);
        }
    }
}

#[test]
fn half_close_keeps_reading_both_ways() {
    for v in [1, 2] {
        let mut pair = Pair::version(v);
        let c = pair.client.engine.open().unwrap();
        assert_eq!(pair.client.write_some(c, b"request"), 7);
        pair.client.engine.finish(c).unwrap();
        // Finishing twice is harmless; writing after it is an error.
        pair.client.engine.finish(c).unwrap();
        assert_eq!(
            pair.client.engine.write(c, b"x"),
            Err(StreamError::WriteClosed)
        );
        pair.drive();
        let s = pair.server.accept().unwrap();
        assert_eq!(pair.server.read_available(s).unwrap(), b"request");
        assert!(pair.server.at_eof(s), "FIN after the data");
        // The server replies after the client's FIN: the client still reads it.
        assert_eq!(pair.server.write_some(s, b"reply"), 5);
        pair.server.engine.finish(s).unwrap();
        pair.drive();
        // Both FINs crossed: the server's stream is done (read out), the client's still
        // holds unread data and stays open until it is read.
        assert_eq!(pair.server.engine.stats().open_streams, 0);
        assert_eq!(pair.client.engine.stats().open_streams, 1);
        assert_eq!(pair.client.read_available(c).unwrap(), b"reply");
        assert!(pair.client.at_eof(c));
        assert_eq!(pair.client.engine.stats().open_streams, 0);
        // Closing afterwards sends nothing more.
        pair.client.engine.close_stream(c);
        pair.server.engine.close_stream(s);
        assert!(sent_frames(&mut pair.client.engine, pair.now).is_empty());
        assert!(pair.client.engine.streams.len() == 0);
        assert!(pair.server.engine.streams.len() == 0);
    }
}

#[test]
fn fin_goes_after_queued_data() {
    let now = Instant::now();
    let mut client = Engine::new(Role::Client, quiet(1).build().unwrap(), now);
    let a = client.open().unwrap();
    let b = client.open().unwrap();
    let data = Rng::new(9).bytes(200_000);
    assert_eq!(client.write(a, &data), Ok(200_000));
    client.finish(a).unwrap();
    assert_eq!(client.write(b, b"other"), Ok(5));
    let frames = sent_frames(&mut client, now);
    let mut got = Vec::new();
    let mut fin_seen = false;
    for f in &frames {
        match f {
            Frame::Psh { sid: 3, data } => {
                assert!(!fin_seen, "data after FIN");
                got.extend_from_slice(data);
            }
            Frame::Fin { sid: 3 } => fin_seen = true,
            _ => {}
        }
    }
    assert!(fin_seen);
    assert_eq!(got, data);
    // Round-robin: stream b's frame went out before all of a's data.
    let b_at = frames
        .iter()
        .position(|f| matches!(f, Frame::Psh { sid, .. } if *sid == b.0))
        .unwrap();
    assert!(b_at < 5, "b waited behind a's whole buffer: frame {b_at}");
}

#[test]
fn closing_a_stream_drops_unread_data_and_refunds() {
    let mut pair = Pair::version(1);
    let c = pair.client.engine.open().unwrap();
    pair.client.write_some(c, &[7u8; 50_000]);
    pair.drive();
    let s = pair.server.accept().unwrap();
    assert_eq!(pair.server.engine.stats().buffered_in, 50_000);
    pair.server.engine.close_stream(s);
    assert_eq!(pair.server.engine.stats().buffered_in, 0);
    assert_eq!(pair.server.engine.budget.unused(), 4 << 20);
    pair.drive();
    // The client got the FIN; its writes still succeed (as Go's since v1.5.54) and the
    // server drops them uncharged.
    assert!(pair.client.at_eof(c));
    pair.client.write_some(c, &[1u8; 1000]);
    pair.drive();
    assert_eq!(pair.server.engine.stats().buffered_in, 0);
    assert_eq!(pair.server.engine.budget.unused(), 4 << 20);
    assert_eq!(
        pair.server.engine.read(s, &mut [0; 4]),
        Err(StreamError::UnknownStream)
    );
}

#[test]
fn readiness_is_reported_per_stream() {
    let mut pair = Pair::version(1);
    let c = pair.client.engine.open().unwrap();
    pair.client.write_some(c, b"hi");
    pair.drive();
    assert_eq!(pair.server.events, [Event::Incoming]);
    pair.server.events.clear();
    let s = pair.server.accept().unwrap();
    // A reader that found nothing waits; the next data wakes it, once.
    assert_eq!(pair.server.read_available(s).unwrap(), b"hi");
    assert_eq!(
        pair.server.engine.read(s, &mut [0; 8]),
        Err(StreamError::Blocked)
    );
    pair.client.write_some(c, b"a");
    pair.drive();
    pair.client.write_some(c, b"b");
    pair.drive();
    assert_eq!(
        pair.server.events,
        [Event::Stream {
            id: s,
            readable: true,
            writable: false
        }]
    );
}

#[test]
fn full_send_buffer_blocks_then_wakes_the_writer() {
    let config = quiet(1).max_stream_send_buffer(1000).build().unwrap();
    let mut pair = Pair::with(config);
    let c = pair.client.engine.open().unwrap();
    assert_eq!(pair.client.write_some(c, &[0; 1500]), 1000);
    assert_eq!(
        pair.client.engine.write(c, &[0; 10]),
        Err(StreamError::Blocked)
    );
    assert!(!pair.client.engine.poll_flushed(c).unwrap());
    pair.drive();
    assert!(pair.client.events.contains(&Event::Stream {
        id: c,
        readable: false,
        writable: true
    }));
    assert!(pair.client.engine.poll_flushed(c).unwrap());
    assert_eq!(pair.client.write_some(c, &[0; 10]), 10);
}

#[test]
fn session_close_flushes_then_ends() {
    for v in [1, 2] {
        let mut pair = Pair::version(v);
        let c = pair.client.engine.open().unwrap();
        let data = Rng::new(4).bytes(100_000);
        let n = pair.client.write_some(c, &data);
        pair.client.engine.close(pair.now);
        assert_eq!(
            pair.client.engine.open(),
            Err(OpenError::ShuttingDown),
            "no opens while closing"
        );
        let s = loop {
            pair.step();
            if let Some(s) = pair.server.accept() {
                break s;
            }
        };
        let mut got = Vec::new();
        pair.drive_app(|p| {
            let more = p.server.read_available(s).unwrap();
            let acted = !more.is_empty();
            got.extend(more);
            acted
        });
        assert_eq!(got, &data[..n], "queued data is flushed by close");
        assert!(pair.server.at_eof(s), "close sends FIN after the data");
        assert_eq!(pair.client.engine.close_reason(), Some(&CloseReason::Local));
        assert!(pair.client.events.contains(&Event::Closed));
        // A closed session reports why on every call.
        assert_eq!(
            pair.client.engine.open(),
            Err(OpenError::SessionClosed(CloseReason::Local))
        );
        assert_eq!(pair.client.engine.accept(), Err(CloseReason::Local));
    }
}

#[test]
fn close_gives_up_at_the_close_timeout() {
    let config = quiet(2).build().unwrap();
    let mut pair = Pair::with(config.clone());
    let c = pair.client.engine.open().unwrap();
    pair.drive();
    let s = pair.server.accept().unwrap();
    // The server never reads: the client's window closes and its data cannot drain.
    let data = vec![0u8; 600_000];
    pair.client_writes(c, &data);
    assert!(pair.client.engine.stats().buffered_out > 0);
    let start = pair.now;
    pair.client.engine.close(start);
    pair.advance(config.close_timeout() - std::time::Duration::from_millis(1));
    assert!(!pair.client.engine.is_closed());
    pair.advance(std::time::Duration::from_millis(1));
    assert_eq!(pair.client.engine.close_reason(), Some(&CloseReason::Local));
    assert_eq!(pair.now - start, config.close_timeout());
    let _ = s;
}

#[test]
fn shutdown_drains_open_streams_then_closes() {
    let mut pair = Pair::version(1);
    let c = pair.client.engine.open().unwrap();
    pair.client.write_some(c, b"in flight");
    pair.drive();
    let s = pair.server.accept().unwrap();
    pair.server.engine.shutdown(pair.now);
    assert_eq!(pair.server.engine.open(), Err(OpenError::ShuttingDown));
    // New streams from the peer are refused with a FIN.
    let late = pair.client.engine.open().unwrap();
    pair.drive();
    assert!(pair.client.at_eof(late));
    assert_eq!(pair.server.engine.stats().refused_streams, 1);
    // The open stream keeps working until both sides finish it.
    assert_eq!(pair.server.read_available(s).unwrap(), b"in flight");
    pair.server.write_some(s, b"bye");
    pair.server.engine.finish(s).unwrap();
    pair.drive();
    assert!(!pair.server.engine.is_closed());
    assert_eq!(pair.client.read_available(c).unwrap(), b"bye");
    pair.client.engine.finish(c).unwrap();
    pair.drive();
    assert!(pair.server.at_eof(s));
    pair.drive();
    assert_eq!(pair.server.engine.close_reason(), Some(&CloseReason::Local));
}

#[test]
fn backlog_refuses_with_fin_and_keeps_reading() {
    let config = quiet(1).accept_backlog(2).build().unwrap();
    let mut pair = Pair::with(config);
    let ids: Vec<StreamId> = (0..5).map(|_| pair.client.engine.open().unwrap()).collect();
    for &id in &ids {
        pair.client.write_some(id, b"data");
    }
    pair.drive();
    let stats = pair.server.engine.stats();
    assert_eq!(stats.refused_streams, 3);
    // Refused streams' data was dropped uncharged.
    assert_eq!(stats.buffered_in, 8);
    for &id in &ids[2..] {
        assert!(pair.client.at_eof(id), "{id} refused with FIN");
    }
    // The accepted ones work.
    let a = pair.server.accept().unwrap();
    assert_eq!(pair.server.read_available(a).unwrap(), b"data");
    // Room again: the next SYN is accepted.
    let more = pair.client.engine.open().unwrap();
    pair.drive();
    assert_eq!(pair.server.engine.stats().refused_streams, 3);
    assert_eq!(pair.server.accept(), Some(ids[1]));
    assert_eq!(pair.server.accept(), Some(more));
}

#[test]
fn stream_cap_refuses_and_fails_local_open() {
    let config = quiet(2).max_streams(2).build().unwrap();
    let mut pair = Pair::with(config);
    let a = pair.client.engine.open().unwrap();
    let _b = pair.client.engine.open().unwrap();
    assert_eq!(
        pair.client.engine.open(),
        Err(OpenError::TooManyStreams { limit: 2 })
    );
    pair.drive();
    // The server has two; its own open fails, the peer's third is refused.
    assert_eq!(
        pair.server.engine.open(),
        Err(OpenError::TooManyStreams { limit: 2 })
    );
    pair.client.engine.close_stream(a);
    pair.drive();
    let c = pair.client.engine.open().unwrap();
    pair.drive();
    assert_eq!(pair.server.engine.stats().refused_streams, 1);
    assert!(pair.client.at_eof(c));
}

#[test]
fn duplicate_syn_is_ignored_and_closed_sid_reopens() {
    let now = Instant::now();
    let mut server = Engine::new(Role::Server, quiet(1).build().unwrap(), now);
    feed(
        &mut server,
        now,
        &[
            Frame::Syn { sid: 3 },
            Frame::Psh {
                sid: 3,
                data: "a".into(),
            },
            Frame::Syn { sid: 3 },
            Frame::Psh {
                sid: 3,
                data: "b".into(),
            },
        ],
    );
    let s = server.accept().unwrap().unwrap();
    assert_eq!(server.accept().unwrap(), None, "one stream for two SYNs");
    let mut buf = [0u8; 8];
    assert_eq!(server.read(s, &mut buf), Ok(2));
    assert_eq!(&buf[..2], b"ab");
    server.close_stream(s);
    let _ = sent_frames(&mut server, now); // our FIN goes
    feed(&mut server, now, &[Frame::Syn { sid: 3 }]);
    assert_eq!(
        server.accept().unwrap(),
        None,
        "a let-go stream lingers until the peer's FIN (to grant it window)"
    );
    // The peer's FIN: both FINs crossed, the sid is forgotten.
    feed(
        &mut server,
        now,
        &[Frame::Fin { sid: 3 }, Frame::Syn { sid: 3 }],
    );
    assert_eq!(
        server.accept().unwrap(),
        Some(StreamId(3)),
        "a closed sid gets a fresh stream"
    );
}

#[test]
fn frames_on_the_wire_are_gos() {
    let now = Instant::now();
    let mut client = Engine::new(Role::Client, quiet(2).build().unwrap(), now);
    let id = client.open().unwrap();
    client.write(id, b"hello").unwrap();
    client.finish(id).unwrap();
    let frames = sent_frames(&mut client, now);
    assert_eq!(
        frames,
        [
            Frame::Syn { sid: 3 },
            Frame::Psh {
                sid: 3,
                data: "hello".into()
            },
            Frame::Fin { sid: 3 },
        ]
    );
    // Go's receiver would answer the first read with UPD(consumed = 5, window = 65536); we
    // send none until a report raises the peer's limit (Go's assumed 262144) by half a
    // window (flow.rs says why).
    let mut server = Engine::new(Role::Server, quiet(2).build().unwrap(), now);
    let mut wire = BytesMut::new();
    for f in &frames[..2] {
        f.encode(Version::V2, &mut wire).unwrap();
    }
    assert_eq!(server.handle_input(now, &wire), wire.len());
    let s = server.accept().unwrap().unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(server.read(s, &mut buf), Ok(5));
    assert_eq!(sent_frames(&mut server, now), []);
}

#[test]
fn v2_reply_larger_than_the_window_flows_after_our_fin() {
    // The requester half-closes at once, then reads a reply many windows long: it must keep
    // reporting consumption after its own FIN, or the replier stalls.
    let mut pair = Pair::with(quiet(2).max_stream_buffer(4096).build().unwrap());
    let c = pair.client.engine.open().unwrap();
    pair.client.write_some(c, b"GET");
    pair.client.engine.finish(c).unwrap();
    pair.drive();
    let s = pair.server.accept().unwrap();
    let reply = Rng::new(12).bytes(1 << 20);
    let got = one_way(&mut pair, false, s, c, &reply);
    assert_eq!(got.len(), reply.len());
    assert!(got == reply);
}

/// A pair whose one stream finished both ways, every frame delivered.
fn finished_pair(version: u8) -> Pair {
    let mut pair = Pair::version(version);
    let c = pair.client.engine.open().unwrap();
    pair.client.write_some(c, b"ping");
    pair.client.engine.finish(c).unwrap();
    pair.drive();
    let s = pair.server.accept().unwrap();
    assert_eq!(pair.server.read_available(s).unwrap(), b"ping");
    pair.server.engine.finish(s).unwrap();
    pair.drive();
    pair
}

#[test]
fn a_reset_where_an_eof_would_be_clean_is_a_clean_end() {
    // The peer closed while our last keepalive NOP was on its way: its kernel answers with
    // a reset, but nothing was lost.
    let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    for v in [1, 2] {
        let mut pair = finished_pair(v);
        pair.server.engine.handle_read_error(&reset, 0, 0);
        assert_eq!(
            pair.server.engine.close_reason(),
            Some(&CloseReason::PeerClosed),
            "v{v}"
        );
        // Not with frames of ours unwritten, input left mid-frame, or another error.
        for (err, unconsumed, unsent) in [
            (std::io::ErrorKind::ConnectionReset, 0, 8),
            (std::io::ErrorKind::ConnectionReset, 3, 0),
            (std::io::ErrorKind::TimedOut, 0, 0),
        ] {
            let mut pair = finished_pair(v);
            let err = std::io::Error::from(err);
            pair.server
                .engine
                .handle_read_error(&err, unconsumed, unsent);
            assert_eq!(
                pair.server.engine.close_reason(),
                Some(&CloseReason::io(&err)),
                "v{v} {err:?} {unconsumed} {unsent}"
            );
        }
    }
    // Nor with a stream still open.
    let mut pair = Pair::version(2);
    let c = pair.client.engine.open().unwrap();
    pair.client.write_some(c, b"ping");
    pair.drive();
    pair.server.engine.handle_read_error(&reset, 0, 0);
    assert_eq!(
        pair.server.engine.close_reason(),
        Some(&CloseReason::io(&reset))
    );
}
