//! The lock and reference count the driver, the session and the stream handles share: std's,
//! or loom's under `cfg(loom)`, so that the model check in `tests/loom.rs` explores this very
//! code. `cfg(loom)` is set only by hand, for that check:
//! `RUSTFLAGS="--cfg loom" cargo test -p smux-core --test loom --release --target-dir target/loom`.

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
