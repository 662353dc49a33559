//! Fuzz target `frame_decode`: see `smux_core::fuzzing::frame_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smux_core::fuzzing::frame_decode(data));
