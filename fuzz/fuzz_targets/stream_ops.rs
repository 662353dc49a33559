//! Fuzz target `stream_ops`: see `smux_core::fuzzing::stream_ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smux_core::fuzzing::stream_ops(data));
