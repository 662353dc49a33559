//! The conformance suite on smol, over loopback TCP, an in-memory pipe and a Unix socket.

mod harness;

conformance::conformance_tests!(crate::harness::harness);
