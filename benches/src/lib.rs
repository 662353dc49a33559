//! Benchmarks of smux-rs and the side-by-side comparison runner.
//!
//! Not written yet: this crate has no benchmarks until the benches issue lands.
