//! Interoperability tests of smux-rs against Go's xtaci/smux, and the `smux-echo` peer.
//!
//! Not written yet: this crate has no tests and no binaries until the interop issue lands.
