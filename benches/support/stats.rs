//! Shared by the benchmark harnesses: the distribution of timed samples and time formatting.
#![allow(dead_code)] // each harness uses a different part

/// Per-operation time distribution over timed samples (nanoseconds per operation).
pub struct Stats {
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    /// Operations timed (samples × ops per sample).
    pub iterations: usize,
}

impl Stats {
    /// The distribution of `samples`, each the mean of `ops_per_sample` back-to-back operations.
    pub fn of(mut samples: Vec<f64>, ops_per_sample: usize) -> Stats {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Stats {
            median: at(0.5),
            p10: at(0.1),
            p90: at(0.9),
            iterations: samples.len() * ops_per_sample,
        }
    }
}

/// Nanoseconds in the most readable unit: `412 ns`, `1.90 µs`, `2.513 ms`.
pub fn format_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.3} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}
