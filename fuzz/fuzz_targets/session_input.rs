//! Fuzz target `session_input`: see `smux_core::fuzzing::session_input`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smux_core::fuzzing::session_input(data));
