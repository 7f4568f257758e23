//! A histogram that records with three relaxed atomic additions and no lock.
//!
//! prometheus-client's own `Histogram` takes a mutex per observation; the IMAP server records
//! one per command at about 10,000 commands/s, so Herald keeps its own: fixed upper bounds in an
//! integer base unit (microseconds for latencies, a plain count for sizes), one atomic counter
//! per bucket (not cumulative, so an observation touches one bucket), and the sum in base
//! units. The exposition makes the buckets cumulative and reads the count as the sum of the
//! buckets, so a scrape racing an observation still shows a histogram whose `+Inf` bucket equals
//! its count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most finite buckets a histogram may have.
pub const MAX_BUCKETS: usize = 20;

/// Latency bounds, in microseconds: 100 µs to 10 s.
pub const LATENCY_MICROS: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Size bounds (operations in a commit, events in a batch): powers of two to 1024.
pub const SIZES: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// A fixed-bucket histogram; see the module documentation.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// Base units per exported unit (1e6 to export microseconds as seconds). A division by an
    /// exact power of ten, not a multiplication by its inexact inverse, so `le` labels read
    /// `0.0005`, never `0.0004999…`.
    per_unit: f64,
    /// `buckets[i]` counts observations in `(bounds[i-1], bounds[i]]`; the last one those above
    /// every bound.
    buckets: [AtomicU64; MAX_BUCKETS + 1],
    sum: AtomicU64,
}

/// What a histogram held when it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// The sum of the observations, in the exported unit.
    pub sum: f64,
    /// How many observations.
    pub count: u64,
    /// `(upper bound, observations in that bucket alone)`, ascending; the `+Inf` bucket is left
    /// to the encoder (it equals `count`).
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// A histogram with these upper bounds (ascending, at most [`MAX_BUCKETS`]), with
    /// `per_unit` base units per exported unit.
    pub const fn new(bounds: &'static [u64], per_unit: f64) -> Histogram {
        assert!(bounds.len() <= MAX_BUCKETS, "too many histogram buckets");
        Histogram {
            bounds,
            per_unit,
            buckets: [const { AtomicU64::new(0) }; MAX_BUCKETS + 1],
            sum: AtomicU64::new(0),
        }
    }

    /// A latency histogram (recorded in microseconds, exported in seconds).
    pub const fn latency() -> Histogram {
        Histogram::new(&LATENCY_MICROS, 1e6)
    }

    /// A size histogram (exported as is).
    pub const fn sizes() -> Histogram {
        Histogram::new(&SIZES, 1.0)
    }

    /// Records one observation, in base units.
    pub fn observe(&self, value: u64) {
        // The first bound not below the value: Prometheus buckets are "less than or equal".
        let i = self.bounds.partition_point(|&b| b < value);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Records a duration, in microseconds.
    pub fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// How many observations so far.
    pub fn count(&self) -> u64 {
        self.buckets[..=self.bounds.len()]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }

    /// Reads the histogram.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut count = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, n)| {
                let n = n.load(Ordering::Relaxed);
                count += n;
                (bound as f64 / self.per_unit, n)
            })
            .collect();
        count += self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            sum: self.sum.load(Ordering::Relaxed) as f64 / self.per_unit,
            count,
            buckets,
        }
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::latency()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_at_or_above_them() {
        static BOUNDS: [u64; 3] = [10, 20, 30];
        let h = Histogram::new(&BOUNDS, 1.0);
        for v in [0, 10, 11, 20, 30, 31, 1000] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.count, 7);
        assert_eq!(s.sum, 1102.0);
        assert_eq!(s.buckets, [(10.0, 2), (20.0, 2), (30.0, 1)]);
    }

    #[test]
    fn latencies_are_exported_in_seconds() {
        let h = Histogram::latency();
        h.observe_duration(Duration::from_millis(3));
        let s = h.snapshot();
        assert_eq!(s.count, 1);
        assert!((s.sum - 0.003).abs() < 1e-12);
        let (bound, n) = s.buckets.iter().find(|(_, n)| *n == 1).copied().unwrap();
        assert!((bound - 0.005).abs() < 1e-12 && n == 1);
        assert_eq!(h.count(), 1);
    }
}
