//! Keepalive on the simulated clock: NOPs every interval, a silent peer dropped at exactly
//! the timeout, a slow local reader never dropped.

use super::pair::Pair;
use super::session::sent_frames;
use crate::frame::Frame;
use crate::proto::{Engine, Role};
use crate::{CloseReason, Config};
use std::time::{Duration, Instant};

fn keepalive(interval: u64, timeout: u64) -> Config {
    Config::builder()
        .keep_alive_interval(Duration::from_secs(interval))
        .keep_alive_timeout(Duration::from_secs(timeout))
        .build()
        .unwrap()
}

#[test]
fn a_nop_every_interval() {
    let start = Instant::now();
    let mut engine = Engine::new(Role::Client, keepalive(10, 30), start);
    assert_eq!(engine.poll_timeout(), Some(start + Duration::from_secs(10)));
    for i in 1..=2u64 {
        let at = start + Duration::from_secs(10 * i);
        assert!(sent_frames(&mut engine, at - Duration::from_millis(1)).is_empty());
        engine.handle_timeout(at);
        assert_eq!(sent_frames(&mut engine, at), [Frame::Nop { sid: 0 }]);
    }
    // A NOP not yet written is not queued twice.
    engine.handle_timeout(start + Duration::from_secs(30) - Duration::from_millis(1));
    assert!(engine.poll_timeout().unwrap() >= start + Duration::from_secs(30));
}

#[test]
fn silent_peer_is_dropped_at_exactly_the_timeout() {
    let start = Instant::now();
    let mut engine = Engine::new(Role::Client, keepalive(1, 2), start);
    let mut now = start;
    // Fire every timer as it comes; only NOPs go out, nothing comes in.
    while !engine.is_closed() {
        now = engine.poll_timeout().expect("a timer runs while open");
        engine.handle_timeout(now);
        let _ = sent_frames(&mut engine, now);
    }
    assert_eq!(now - start, Duration::from_secs(2));
    // Not one frame ever came: the reason hints at a version mismatch or a non-smux peer.
    assert_eq!(
        engine.close_reason(),
        Some(&CloseReason::NoFrameFromPeer(Duration::from_secs(2)))
    );
    assert_eq!(engine.poll_timeout(), None);
}

#[test]
fn any_frame_resets_the_timeout_and_pairs_keep_each_other_alive() {
    let mut pair = Pair::with(keepalive(1, 2));
    // Idle for a long time: each side's NOPs keep the other alive.
    pair.advance(Duration::from_secs(60));
    assert!(!pair.client.engine.is_closed());
    assert!(!pair.server.engine.is_closed());
    // The client's connection stops delivering: it keeps sending NOPs but hears nothing.
    pair.client_reads = false;
    pair.advance(Duration::from_millis(1999));
    assert!(!pair.client.engine.is_closed());
    // Dropped exactly 2 s after the last frame it read: the server's NOP at the 60 s mark.
    pair.advance(Duration::from_millis(1));
    assert!(matches!(
        pair.client.engine.close_reason(),
        Some(CloseReason::KeepaliveTimeout(_))
    ));
}

#[test]
fn slow_local_reader_is_not_dropped() {
    let config = Config::builder()
        .keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(2))
        .max_receive_buffer(64 * 1024)
        .max_stream_buffer(64 * 1024)
        .build()
        .unwrap();
    let mut pair = Pair::with(config);
    pair.capacity = 16 * 1024;
    let c = pair.client.engine.open().unwrap();
    pair.drive();
    let s = pair.server.accept().unwrap();
    // The client fills the server's budget; the server's application does not read.
    let data = vec![1u8; 200_000];
    let mut sent = pair.client_writes(c, &data);
    assert!(!pair.server.engine.wants_input());
    // Long past the timeout: the server is not reading its connection, so it does not
    // count the client's silence against it.
    pair.advance(Duration::from_secs(30));
    assert!(
        !pair.server.engine.is_closed(),
        "{:?}",
        pair.server.engine.close_reason()
    );
    // The reader catches up; everything arrives and the session lives on.
    let mut got = 0;
    pair.drive_app(|p| {
        let n = p.server.read_available(s).unwrap().len();
        got += n;
        let w = p.client.write_some(c, &data[sent..]);
        sent += w;
        n > 0 || w > 0
    });
    assert_eq!(got, data.len());
    assert!(!pair.server.engine.is_closed());
    assert!(!pair.client.engine.is_closed());
}

/// Over a slow link one frame can take longer than the keepalive timeout to arrive: its
/// bytes, not only whole headers, show the peer is alive. Silence in the middle of the frame
/// still ends the session, at exactly the timeout.
#[test]
fn bytes_of_a_slow_frame_keep_the_session_alive_and_silence_mid_frame_ends_it() {
    let start = Instant::now();
    let mut server = Engine::new(Role::Server, keepalive(1, 3), start);
    let mut wire = Vec::new();
    crate::frame::Frame::Syn { sid: 3 }
        .encode(crate::frame::Version::V1, &mut wire)
        .unwrap();
    let header = crate::frame::Header {
        cmd: crate::frame::Cmd::Psh,
        length: 32 * 1024,
        sid: 3,
    };
    wire.extend_from_slice(&header.encode(crate::frame::Version::V1));
    assert_eq!(server.handle_input(start, &wire), wire.len());
    // 1 KB a second: the frame takes 32 s, ten times the timeout.
    let mut now = start;
    for _ in 0..31 {
        now += Duration::from_secs(1);
        server.handle_timeout(now);
        assert!(!server.is_closed(), "closed at {:?}", now - start);
        assert_eq!(server.handle_input(now, &[7u8; 1024]), 1024);
        let _ = sent_frames(&mut server, now);
    }
    // Then silence, mid-frame.
    let last = now;
    while !server.is_closed() {
        now = server.poll_timeout().expect("a timer runs");
        server.handle_timeout(now);
        let _ = sent_frames(&mut server, now);
    }
    assert_eq!(now - last, Duration::from_secs(3));
    assert_eq!(
        server.close_reason(),
        Some(&CloseReason::KeepaliveTimeout(Duration::from_secs(3)))
    );
}

/// A connection that takes no byte while frames wait ends the session after the write
/// timeout; any progress restarts it, and nothing waiting stops it.
#[test]
fn a_connection_that_takes_nothing_ends_at_the_write_timeout() {
    let start = Instant::now();
    let config = Config::builder()
        .enable_keep_alive(false)
        .write_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut e = Engine::new(Role::Client, config, start);
    assert_eq!(e.poll_timeout(), None);
    e.handle_write_progress(start, false, true);
    assert_eq!(e.poll_timeout(), Some(start + Duration::from_secs(5)));
    // Progress at 4 s restarts the clock; nothing pending at 6 s stops it.
    e.handle_write_progress(start + Duration::from_secs(4), true, true);
    e.handle_timeout(start + Duration::from_secs(8));
    assert!(!e.is_closed());
    e.handle_write_progress(start + Duration::from_secs(8), false, false);
    assert_eq!(e.poll_timeout(), None);
    // Stuck from 10 s on: the end comes at 15 s, not before.
    let stuck = start + Duration::from_secs(10);
    e.handle_write_progress(stuck, false, true);
    e.handle_write_progress(stuck + Duration::from_secs(2), false, true);
    e.handle_timeout(stuck + Duration::from_millis(4999));
    assert!(!e.is_closed());
    e.handle_timeout(stuck + Duration::from_secs(5));
    assert_eq!(
        e.close_reason(),
        Some(&CloseReason::WriteTimeout(Duration::from_secs(5)))
    );
}

/// The write timeout defaults to the keepalive timeout.
#[test]
fn the_write_timeout_defaults_to_the_keepalive_timeout() {
    assert_eq!(keepalive(1, 7).write_timeout(), Duration::from_secs(7));
    assert_eq!(Config::default().write_timeout(), Duration::from_secs(30));
}
