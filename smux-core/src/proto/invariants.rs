//! The engine's invariants and memory bound, checked after every step in tests and fuzzing.

use super::Engine;

/// Panics, naming the broken invariant, unless `engine` keeps them all.
pub(super) fn check(engine: &Engine) {
    let buffered: usize = engine.streams.iter().map(|(_, s)| s.recv.len()).sum();
    engine.budget.assert_balanced(buffered, &engine.config);
    assert!(
        engine.recv_pool.held() <= engine.budget.unused(),
        "recycled buffers beyond the unused budget"
    );
    engine.send_pool.assert_invariants();
    engine.rx.assert_invariants();
    engine.streams.assert_invariants();
    for (sid, s) in engine.streams.iter() {
        s.assert_invariants(sid, engine.config.max_stream_send_buffer());
    }
    engine.tx.assert_invariants(&engine.streams);
    assert!(
        engine.streams.live() <= engine.config.max_streams(),
        "stream cap"
    );
    assert!(
        engine.accept_queue.len() <= engine.config.accept_backlog(),
        "backlog"
    );
}
