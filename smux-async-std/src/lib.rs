//! smux-rs on the async-std runtime.
//!
//! This adapter is not written yet: it has no API. Until it lands, use the protocol
//! building blocks in `smux-core`.
