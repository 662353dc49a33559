//! The seeded generator every smux-rs test suite draws its data from: splitmix64, so that a
//! failing seed reproduces anywhere, and so that `smux-echo` and the Go peer
//! (`interop-tests/go`, which implements the same sequence) can check each other's data
//! without keeping a copy.
//!
//! ```
//! use test_rng::Rng;
//!
//! let mut rng = Rng::new(7);
//! let a = rng.bytes(100);
//! assert_eq!(a, Rng::new(7).bytes(100));
//! assert!((10..=20).contains(&rng.range(10, 20)));
//! ```

/// A splitmix64 generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The generator of stream `stream`'s data under `seed`, as `smux-echo` and the Go peer
    /// derive it.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        Self(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// Fills `buf`: the values' little-endian bytes, in order.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// `n` bytes, as [`fill`](Self::fill) writes them.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    /// The sequence is fixed: the Go peer and recorded seeds depend on it.
    #[test]
    fn the_sequence_is_splitmix64() {
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let bytes = Rng::new(0).bytes(9);
        assert_eq!(&bytes[..8], &0xE220_A839_7B1D_CDAFu64.to_le_bytes());
        assert_ne!(
            Rng::for_stream(1, 2).bytes(16),
            Rng::for_stream(1, 3).bytes(16)
        );
    }
}
