//! What a broken or hostile peer can do: each protocol error closes the session with a
//! reason naming the frame; nothing panics, hangs or grows without bound.

use super::pair::{quiet, Rng};
use super::session::{feed, sent_frames};
use crate::frame::{Frame, FrameError, Version, WindowUpdate};
use crate::proto::{Engine, Event, Role, StreamId, MAX_PENDING_REFUSALS};
use crate::{CloseReason, ProtocolError, StreamError};
use bytes::BytesMut;
use std::time::Instant;

fn engine(version: u8) -> (Engine, Instant) {
    let now = Instant::now();
    (
        Engine::new(Role::Server, quiet(version).build().unwrap(), now),
        now,
    )
}

fn raw(engine: &mut Engine, now: Instant, bytes: &[u8]) {
    engine.handle_input(now, bytes);
    engine.assert_invariants();
}

fn protocol_error(engine: &Engine) -> ProtocolError {
    match engine.close_reason() {
        Some(CloseReason::Protocol(e)) => *e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn each_malformed_header_is_its_own_error() {
    let cases: [(u8, [u8; 8], FrameError); 5] = [
        (
            1,
            [2, 2, 0, 0, 3, 0, 0, 0],
            FrameError::VersionMismatch {
                expected: Version::V1,
                found: 2,
                cmd: 2,
                sid: 3,
            },
        ),
        (
            2,
            [2, 7, 0, 0, 3, 0, 0, 0],
            FrameError::UnknownCmd {
                cmd: 7,
                sid: 3,
                length: 0,
            },
        ),
        (
            1,
            [1, 0, 4, 0, 3, 0, 0, 0],
            FrameError::UnexpectedPayload {
                cmd: crate::frame::Cmd::Syn,
                sid: 3,
                length: 4,
            },
        ),
        (
            2,
            [2, 4, 4, 0, 3, 0, 0, 0],
            FrameError::BadUpdLength { sid: 3, length: 4 },
        ),
        (1, [1, 4, 8, 0, 3, 0, 0, 0], FrameError::UpdOnV1 { sid: 3 }),
    ];
    for (version, header, expected) in cases {
        let (mut e, now) = engine(version);
        // A healthy stream first, to see that it is woken and reports the reason.
        feed(&mut e, now, &[Frame::Syn { sid: 5 }]);
        let s = e.accept().unwrap().unwrap();
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(&[0; 16]);
        raw(&mut e, now, &bytes);
        assert_eq!(protocol_error(&e), ProtocolError::Frame(expected));
        assert_eq!(e.stats().protocol_errors, 1);
        assert!(!e.wants_input());
        assert!(sent_frames(&mut e, now).is_empty(), "nothing is sent after");
        assert_eq!(e.poll_event(), Some(Event::Closed));
        assert!(matches!(
            e.read(s, &mut [0; 4]),
            Err(StreamError::SessionClosed(CloseReason::Protocol(_)))
        ));
        let text = e.close_reason().unwrap().to_string();
        assert!(text.contains("sid 3"), "the reason names the frame: {text}");
    }
}

#[test]
fn psh_to_unknown_sid_is_dropped_uncharged() {
    let (mut e, now) = engine(1);
    feed(
        &mut e,
        now,
        &[Frame::Psh {
            sid: 99,
            data: vec![0; 65535].into(),
        }],
    );
    // FIN and UPD to unknown sids are ignored too (v2).
    assert!(!e.is_closed());
    assert_eq!(e.stats().buffered_in, 0);
    let (mut e2, now) = engine(2);
    feed(
        &mut e2,
        now,
        &[
            Frame::Fin { sid: 7 },
            Frame::Upd {
                sid: 7,
                update: WindowUpdate {
                    consumed: 1,
                    window: 1,
                },
            },
            Frame::Nop { sid: 12345 },
        ],
    );
    assert!(!e2.is_closed());
}

#[test]
fn payloads_up_to_65535_are_taken_whatever_our_frame_size() {
    let now = Instant::now();
    let config = quiet(1).max_frame_size(100).build().unwrap();
    let mut e = Engine::new(Role::Server, config, now);
    let data = Rng::new(1).bytes(65535);
    feed(
        &mut e,
        now,
        &[
            Frame::Syn { sid: 3 },
            Frame::Psh {
                sid: 3,
                data: data.clone().into(),
            },
        ],
    );
    let s = e.accept().unwrap().unwrap();
    let mut got = vec![0; 70_000];
    let n = e.read(s, &mut got).unwrap();
    assert_eq!(&got[..n], &data[..]);
}

#[test]
fn v2_peer_ignoring_the_window_is_a_protocol_error() {
    let (mut e, now) = engine(2);
    feed(&mut e, now, &[Frame::Syn { sid: 3 }]);
    let limit = 262_144 + 65535;
    let mut sent = 0;
    while !e.is_closed() {
        feed(
            &mut e,
            now,
            &[Frame::Psh {
                sid: 3,
                data: vec![0; 32768].into(),
            }],
        );
        sent += 32768;
        assert!(sent <= limit + 32768, "not caught");
    }
    assert!(matches!(
        protocol_error(&e),
        ProtocolError::WindowExceeded { sid: 3, limit: l, .. } if l == limit
    ));
}

#[test]
fn upd_beyond_what_was_sent_is_a_protocol_error() {
    let (mut e, now) = engine(2);
    let id = e.open().unwrap();
    e.write(id, &[0; 100]).unwrap();
    let _ = sent_frames(&mut e, now);
    feed(
        &mut e,
        now,
        &[Frame::Upd {
            sid: id.0,
            update: WindowUpdate {
                consumed: 101,
                window: 65536,
            },
        }],
    );
    assert_eq!(
        protocol_error(&e),
        ProtocolError::ConsumedBeyondWritten {
            sid: id.0,
            consumed: 101,
            written: 100
        }
    );
}

#[test]
fn a_syn_flood_that_never_reads_stops_our_reading_not_our_memory() {
    let now = Instant::now();
    let config = quiet(1).accept_backlog(4).build().unwrap();
    let mut e = Engine::new(Role::Server, config, now);
    let mut wire = BytesMut::new();
    for i in 0..3000u32 {
        Frame::Syn { sid: 3 + 2 * i }
            .encode(Version::V1, &mut wire)
            .unwrap();
    }
    // The refusals are not sent (the peer does not read): the engine stops taking input
    // once MAX_PENDING_REFUSALS wait, instead of queueing without end.
    let used = e.handle_input(now, &wire);
    e.assert_invariants();
    assert_eq!(used, (4 + MAX_PENDING_REFUSALS) * 8);
    assert!(!e.wants_input());
    assert!(!e.is_closed());
    assert_eq!(e.stats().refused_streams, MAX_PENDING_REFUSALS as u64);
    // Once they are sent, reading resumes where it stopped.
    let fins = sent_frames(&mut e, now);
    assert_eq!(fins.len(), MAX_PENDING_REFUSALS);
    assert!(e.wants_input());
    let more = e.handle_input(now, &wire[used..]);
    assert_eq!(more, MAX_PENDING_REFUSALS * 8);
}

#[test]
fn syn_flood_that_reads_its_refusals_is_served_forever() {
    let now = Instant::now();
    let config = quiet(1).accept_backlog(1).build().unwrap();
    let mut e = Engine::new(Role::Server, config, now);
    for i in 0..10_000u32 {
        feed(&mut e, now, &[Frame::Syn { sid: 3 + 2 * i }]);
        if i % 100 == 0 {
            let frames = sent_frames(&mut e, now);
            assert!(frames.iter().all(|f| matches!(f, Frame::Fin { .. })));
        }
    }
    assert!(!e.is_closed());
    assert_eq!(e.accept().unwrap(), Some(StreamId(3)));
    assert!(e.streams.len() <= 1);
}

#[test]
fn input_split_at_every_byte_is_the_same() {
    // Header, UPD payload and PSH payload boundaries fall anywhere in the input.
    let frames = [
        Frame::Syn { sid: 3 },
        Frame::Psh {
            sid: 3,
            data: Rng::new(2).bytes(10_000).into(),
        },
        Frame::Upd {
            sid: 3,
            update: WindowUpdate {
                consumed: 0,
                window: 1,
            },
        },
        Frame::Nop { sid: 0 },
        Frame::Fin { sid: 3 },
    ];
    let mut wire = BytesMut::new();
    for f in &frames {
        f.encode(Version::V2, &mut wire).unwrap();
    }
    for step in [1, 3, 7, 8, 9, 4095, 4097] {
        let (mut e, now) = engine(2);
        let mut inbox = BytesMut::new();
        for piece in wire.chunks(step) {
            inbox.extend_from_slice(piece);
            let used = e.handle_input(now, &inbox);
            bytes::Buf::advance(&mut inbox, used);
            e.assert_invariants();
        }
        assert!(inbox.is_empty());
        assert!(!e.is_closed());
        let s = e.accept().unwrap().unwrap();
        let mut got = vec![0; 20_000];
        let n = e.read(s, &mut got).unwrap();
        assert_eq!(&got[..n], &Rng::new(2).bytes(10_000)[..], "step {step}");
        assert_eq!(e.read(s, &mut got), Ok(0), "FIN after the data");
    }
}

#[test]
fn a_peer_opening_an_id_of_our_parity_is_a_protocol_error() {
    // Two ends both made with `client()` both open stream 3: Go would cross-wire their
    // data; here the first SYN of the wrong parity ends the session, saying why.
    let now = Instant::now();
    let mut client = Engine::new(Role::Client, quiet(1).build().unwrap(), now);
    feed(&mut client, now, &[Frame::Syn { sid: 3 }]);
    assert_eq!(
        client.close_reason(),
        Some(&CloseReason::Protocol(ProtocolError::OwnParity { sid: 3 }))
    );
    assert!(client
        .close_reason()
        .unwrap()
        .to_string()
        .contains("are both ends clients"));
    let mut server = Engine::new(Role::Server, quiet(1).build().unwrap(), now);
    feed(&mut server, now, &[Frame::Syn { sid: 2 }]);
    assert_eq!(
        server.close_reason(),
        Some(&CloseReason::Protocol(ProtocolError::OwnParity { sid: 2 }))
    );
    client.assert_invariants();
}

/// Input that is plainly another protocol gets a hint instead of a frame error.
#[test]
fn input_that_is_not_smux_says_what_it_looks_like() {
    let now = Instant::now();
    for (input, looks_like) in [
        (&b"HTTP/1.1 400 Bad Request\r\n"[..], "an HTTP response"),
        (&b"GET / HTTP/1.1\r\n"[..], "an HTTP request"),
        (
            &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc][..],
            "a TLS record",
        ),
        (&b"SSH-2.0-OpenSSH_9.6\r\n"[..], "an SSH banner"),
    ] {
        let mut e = Engine::new(Role::Client, quiet(1).build().unwrap(), now);
        e.handle_input(now, input);
        let Some(CloseReason::Protocol(ProtocolError::NotSmux {
            looks_like: got, ..
        })) = e.close_reason()
        else {
            panic!(
                "{:?}: {:?}",
                String::from_utf8_lossy(input),
                e.close_reason()
            );
        };
        assert_eq!(*got, looks_like);
    }
    // After a valid frame, garbage is a frame error, and a version mismatch says so.
    let mut e = Engine::new(Role::Client, quiet(1).build().unwrap(), now);
    e.handle_input(now, &[2, 3, 0, 0, 0, 0, 0, 0]);
    let reason = e.close_reason().unwrap().to_string();
    assert!(reason.contains("other protocol version"), "{reason}");
}
