//! A small seeded pseudo-random generator (SplitMix64).
//!
//! Why not a crate: the bench needs reproducible streams (`--seed`), one
//! per connection, and nothing cryptographic. SplitMix64 is a few lines,
//! passes BigCrush, and each connection derives its own stream from the
//! seed and its index, so runs with the same options generate the same
//! keys and payloads whatever the thread timing.

/// SplitMix64 state.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl Rng {
    /// A generator for `stream` (e.g. a connection index) under `seed`.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut mixer = Rng {
            state: seed ^ stream.wrapping_mul(GOLDEN_GAMMA).rotate_left(17),
        };
        // Decorrelate nearby seeds before the first use.
        let state = mixer.next_u64();
        Rng { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (multiply-shift; the bias is below 2^-32 for
    /// the bounds the bench uses).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "empty range");
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_stream_same_sequence() {
        let mut a = Rng::new(7, 3);
        let mut b = Rng::new(7, 3);
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn streams_differ() {
        let mut a = Rng::new(7, 0);
        let mut b = Rng::new(7, 1);
        let mut c = Rng::new(8, 0);
        let x = a.next_u64();
        assert_ne!(x, b.next_u64());
        assert_ne!(x, c.next_u64());
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(1, 0);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let v = rng.below(10);
            assert!(v < 10);
            seen[v as usize] += 1;
        }
        // Each bucket expects 1,000; a fair generator stays well within.
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }
}
