//! The conformance suite on tokio, over loopback TCP, `tokio::io::duplex` and a Unix socket.

mod harness;

conformance::conformance_tests!(crate::harness::harness);
