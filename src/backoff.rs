//! Waiting before trying again, and spreading work over time.
//!
//! The sidecar retries in three places (reload actions, Kubernetes Events, pod annotations), all
//! with the same doubling delay up to a cap; one type keeps them alike. [`Jitter`] is the other
//! kind of wait: a random delay below a limit, so that many replicas do not act at once.

use std::time::Duration;

/// A delay that starts at `first`, doubles on every use, stays at `max`, and starts over on
/// [`Backoff::reset`].
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A `max` below `first` caps every delay at `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait now; the following one is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next.min(self.max);
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// The next delay is `first` again (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// A random delay below a limit (`--jitter`); zero when the limit is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jitter {
    limit: Duration,
}

impl Jitter {
    pub fn new(limit: Duration) -> Self {
        Jitter { limit }
    }

    pub fn is_zero(&self) -> bool {
        self.limit.is_zero()
    }

    /// A fresh random delay in `[0, limit)`.
    pub fn draw(&self) -> Duration {
        self.at(random_fraction())
    }

    /// The delay for a draw of `fraction` in `[0, 1)`.
    fn at(&self, fraction: f64) -> Duration {
        self.limit.mul_f64(fraction)
    }
}

/// A number in `[0, 1)`: the top 53 bits of a random `u64`, as many as an `f64` holds exactly.
fn random_fraction() -> f64 {
    (crate::random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_the_cap_and_starts_over_on_reset() {
        let mut backoff = Backoff::new(100 * MS, 1000 * MS);
        let delays: Vec<Duration> = (0..6).map(|_| backoff.next_delay()).collect();
        assert_eq!(
            delays,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
        backoff.reset();
        assert_eq!(backoff.next_delay(), 100 * MS);
        assert_eq!(backoff.next_delay(), 200 * MS);
    }

    #[test]
    fn huge_or_inverted_bounds_neither_overflow_nor_exceed_the_cap() {
        let mut backoff = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(backoff.next_delay(), Duration::MAX);
        assert_eq!(backoff.next_delay(), Duration::MAX);
        let mut inverted = Backoff::new(5 * MS, 2 * MS);
        assert_eq!(inverted.next_delay(), 2 * MS);
        assert_eq!(inverted.next_delay(), 2 * MS);
    }

    /// Many draws: every one in range, and spread evenly over it (a fixed, clamped or biased
    /// draw fails one of these).
    #[test]
    fn random_fractions_cover_zero_to_one_evenly() {
        const DRAWS: usize = 20_000;
        const BINS: usize = 10;
        let mut bins = [0usize; BINS];
        let mut sum = 0.0;
        for _ in 0..DRAWS {
            let fraction = random_fraction();
            assert!(
                (0.0..1.0).contains(&fraction),
                "{fraction} is not in [0, 1)"
            );
            bins[(fraction * BINS as f64) as usize] += 1;
            sum += fraction;
        }
        // Each bin expects 2,000 draws with a standard deviation of about 42: ±400 is ~9 sigma.
        for (bin, &count) in bins.iter().enumerate() {
            assert!(
                (1_600..=2_400).contains(&count),
                "bin {bin} holds {count} of {DRAWS} draws: {bins:?}"
            );
        }
        let mean = sum / DRAWS as f64;
        assert!((0.48..0.52).contains(&mean), "mean {mean}");
    }

    #[test]
    fn jitter_stays_below_its_limit() {
        let jitter = Jitter::new(1000 * MS);
        assert_eq!(jitter.at(0.0), Duration::ZERO);
        assert_eq!(jitter.at(0.5), 500 * MS);
        assert!((0..1_000).all(|_| jitter.draw() < 1000 * MS));
        assert!(Jitter::new(Duration::ZERO).is_zero());
        assert_eq!(Jitter::new(Duration::ZERO).draw(), Duration::ZERO);
    }
}
