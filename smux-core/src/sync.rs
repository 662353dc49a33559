//! The lock and reference count the driver, the session and the stream handles share: std's,
//! or loom's when the crate is compiled for the model check (`cfg(smux_loom)`, set only by the
//! `loom-model` crate's build script), so that loom explores this very code.

#[cfg(smux_loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(smux_loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
