//! Timing-sensitive conformance tests on tokio (run one at a time: see the README).

mod harness;

conformance::conformance_timing_tests!(crate::harness::harness);
