//! Interoperability tests of smux-rs, and the `smux-echo` command-line peer that other
//! tools (and the tests against Go's xtaci/smux) drive.
//!
//! The library part holds what the binary and the tests share: the seeded data that
//! `smux-echo` sends and checks.

/// The seeded bytes that `smux-echo` writes on a stream: a splitmix64 sequence from
/// `seed` and the stream's index, so both ends can check an echo without keeping a copy.
pub fn seeded(seed: u64, stream: u64, len: usize) -> Vec<u8> {
    let mut state = seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeded_data_depends_on_seed_and_stream() {
        assert_eq!(super::seeded(1, 2, 100), super::seeded(1, 2, 100));
        assert_ne!(super::seeded(1, 2, 100), super::seeded(1, 3, 100));
        assert_ne!(super::seeded(1, 2, 100), super::seeded(2, 2, 100));
        assert_eq!(super::seeded(1, 2, 13).len(), 13);
    }
}
