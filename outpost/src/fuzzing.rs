//! Test-only helpers for the protocol fuzz tests: a reproducible PRNG and a byte mutator
//! (bit flips, random bytes, truncation, splices from other seeds, random runs, boundary
//! length values, deletions).

/// xorshift64*: small, fast and reproducible.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next value.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `n` random bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One to five mutations of `seed`; `lengths` are byte values worth trying where a length
/// field may be (BER long forms, RADIUS attribute lengths, ...).
pub(crate) fn mutate(rng: &mut Rng, seed: &[u8], corpus: &[Vec<u8>], lengths: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(4) {
        if bytes.is_empty() {
            bytes.push(seed.first().copied().unwrap_or(0));
        }
        let at = rng.below(bytes.len());
        match rng.below(7) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = rng.next() as u8,
            2 => bytes.truncate(at),
            3 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len());
                let to = (from + rng.below(32)).min(other.len());
                bytes.splice(at..at, other[from..to].iter().copied());
            }
            4 => {
                let len = rng.below(16);
                let run = rng.bytes(len);
                bytes.splice(at..at, run);
            }
            5 if !lengths.is_empty() => bytes[at] = lengths[rng.below(lengths.len())],
            _ => {
                let end = (at + rng.below(8)).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
    bytes
}
