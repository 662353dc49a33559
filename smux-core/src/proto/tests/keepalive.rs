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
    let mut sent = 0;
    pair.drive_app(|p| {
        let w = p.client.write_some(c, &data[sent..]);
        sent += w;
        w > 0
    });
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
