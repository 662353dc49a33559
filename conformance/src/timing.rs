//! Timing-sensitive behaviour, run in its own test binary one test at a time. Assertions
//! are lower bounds with generous margins; exact timing is the engine's simulated-clock
//! tests' job.

use crate::{Harness, Transport};
use futures_util::future::{select, Either};
use smux_core::{CloseReason, Config, Role, Session};
use std::sync::Arc;
use std::time::{Duration, Instant};

type H = Arc<dyn Harness>;

fn keepalive(interval_ms: u64, timeout_ms: u64) -> Config {
    Config::builder()
        .keep_alive_interval(Duration::from_millis(interval_ms))
        .keep_alive_timeout(Duration::from_millis(timeout_ms))
        .build()
        .unwrap()
}

/// A peer that never sends a byte is dropped once the keepalive timeout has passed.
pub async fn silent_peer_is_dropped_by_keepalive(h: H, t: Transport) {
    let (a, silent) = h.connect(t).await;
    let start = Instant::now();
    let session = Session::spawn(a, Role::Client, keepalive(100, 300), h.runtime());
    let ended = Box::pin(session.finished());
    match select(ended, h.sleep(Duration::from_secs(20))).await {
        Either::Left(_) => {}
        Either::Right(_) => panic!("a silent peer was not dropped within 20 s"),
    }
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "dropped early"
    );
    // Not one frame came: the reason says so, a hint at a version mismatch.
    assert_eq!(
        session.close_reason(),
        Some(CloseReason::NoFrameFromPeer(Duration::from_millis(300)))
    );
    drop(silent);
}

/// Two idle sessions keep each other alive well past the timeout with their NOPs.
pub async fn idle_sessions_keep_each_other_alive(h: H, t: Transport) {
    let (client, server) = crate::connect(&h, t, keepalive(50, 200), keepalive(50, 200)).await;
    h.sleep(Duration::from_millis(800)).await;
    assert!(!client.is_closed(), "{:?}", client.close_reason());
    assert!(!server.is_closed(), "{:?}", server.close_reason());
}
