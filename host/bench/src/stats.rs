//! Order statistics over timing samples.

use std::time::Duration;

/// Timing samples of one measurement.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Samples { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The nearest-rank percentile (`p` in 0..=100); zero when there are no samples.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let n = self.sorted.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.sorted
            .get(rank.clamp(1, n) - 1)
            .copied()
            .unwrap_or_default()
    }

    /// The median: the mean of the two middle samples when their number is even.
    pub fn median(&self) -> Duration {
        let n = self.sorted.len();
        match n {
            0 => Duration::ZERO,
            _ if n % 2 == 1 => self.sorted.get(n / 2).copied().unwrap_or_default(),
            _ => {
                let lo = self.sorted.get(n / 2 - 1).copied().unwrap_or_default();
                let hi = self.sorted.get(n / 2).copied().unwrap_or_default();
                (lo + hi) / 2
            }
        }
    }

    pub fn p90(&self) -> Duration {
        self.percentile(90.0)
    }

    pub fn min(&self) -> Duration {
        self.sorted.first().copied().unwrap_or_default()
    }

    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }
}

/// A duration in milliseconds, as a float for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// A duration for a table: three significant figures, in the unit that suits it.
pub fn human(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    let (value, unit) = if ns < 1_000.0 {
        (ns, "ns")
    } else if ns < 1_000_000.0 {
        (ns / 1_000.0, "µs")
    } else if ns < 1_000_000_000.0 {
        (ns / 1_000_000.0, "ms")
    } else {
        (ns / 1_000_000_000.0, "s")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_samples(values: &[u64]) -> Samples {
        Samples::new(values.iter().map(|&v| Duration::from_millis(v)).collect())
    }

    #[test]
    fn order_statistics() {
        let s = ms_samples(&[5, 1, 4, 2, 3]);
        assert_eq!(s.median(), Duration::from_millis(3));
        assert_eq!(s.min(), Duration::from_millis(1));
        assert_eq!(s.max(), Duration::from_millis(5));
        assert_eq!(s.p90(), Duration::from_millis(5));
        let even = ms_samples(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(even.median(), Duration::from_micros(5_500));
        assert_eq!(even.p90(), Duration::from_millis(9));
        assert_eq!(Samples::default().median(), Duration::ZERO);
    }

    #[test]
    fn human_units() {
        assert_eq!(human(Duration::from_nanos(512)), "512 ns");
        assert_eq!(human(Duration::from_micros(42)), "42.0 µs");
        assert_eq!(human(Duration::from_micros(1_234)), "1.23 ms");
        assert_eq!(human(Duration::from_millis(2_500)), "2.50 s");
    }
}
