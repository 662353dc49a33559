//! Timing-sensitive conformance tests on async-std, one at a time.

mod harness;

conformance::conformance_timing_tests!(crate::harness::harness);
