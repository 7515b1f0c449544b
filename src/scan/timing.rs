//! Timing: per-host round-trip estimates and the connect-rate cap.
//!
//! The timeout of a probe comes from the host's smoothed RTT as TCP computes
//! its retransmission timeout (RFC 6298): `srtt + 4 * rttvar`, clamped
//! between the configured minimum and maximum. Before the first answer the
//! initial timeout is used.

use std::time::{Duration, Instant};

/// Bounds and the starting point of the per-host timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttLimits {
    pub min: Duration,
    pub max: Duration,
    pub initial: Duration,
}

impl RttLimits {
    fn clamp(&self, d: Duration) -> Duration {
        d.clamp(self.min, self.max.max(self.min))
    }
}

/// RFC 6298 smoothed RTT and variance of one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl RttEstimator {
    /// Folds in one measured round trip.
    pub fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub fn rttvar(&self) -> Option<Duration> {
        self.srtt.map(|_| self.rttvar)
    }

    /// The timeout for a first probe to this host.
    pub fn timeout(&self, limits: &RttLimits) -> Duration {
        match self.srtt {
            None => limits.clamp(limits.initial),
            Some(srtt) => limits.clamp(srtt + self.rttvar * 4),
        }
    }
}

/// A token bucket capping probes per second. Each scan worker owns one with
/// its share of the rate, so the hot path takes no lock.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Instant,
    /// How far behind schedule we may fall before the debt is forgiven, so a
    /// pause (a stalled terminal, a suspended process) is not followed by a burst.
    burst: Duration,
}

impl RateLimiter {
    /// `per_second` must be positive.
    pub fn new(per_second: f64) -> Self {
        let interval = Duration::from_secs_f64(1.0 / per_second.max(1e-3));
        RateLimiter {
            interval,
            next: Instant::now(),
            burst: (interval * 16).min(Duration::from_millis(50)).max(interval),
        }
    }

    /// Takes a token if one is due now; otherwise returns the instant at
    /// which the next one will be.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Instant> {
        if self.next > now {
            return Err(self.next);
        }
        let floor = now.checked_sub(self.burst).unwrap_or(now);
        self.next = self.next.max(floor) + self.interval;
        Ok(())
    }

    /// Counts `n` more packets sent on the token just taken (a host
    /// discovery try sends several together): the next token comes that
    /// much later.
    pub fn charge(&mut self, n: u32) {
        self.next += self.interval * n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RttLimits = RttLimits {
        min: Duration::from_millis(100),
        max: Duration::from_secs(10),
        initial: Duration::from_secs(1),
    };

    #[test]
    fn first_sample_sets_srtt_and_half_variance() {
        let mut e = RttEstimator::default();
        assert_eq!(e.timeout(&LIMITS), Duration::from_secs(1));
        e.sample(Duration::from_millis(200));
        assert_eq!(e.srtt(), Some(Duration::from_millis(200)));
        assert_eq!(e.rttvar(), Some(Duration::from_millis(100)));
        assert_eq!(e.timeout(&LIMITS), Duration::from_millis(600));
    }

    #[test]
    fn later_samples_smooth_as_rfc6298() {
        let mut e = RttEstimator::default();
        e.sample(Duration::from_millis(80));
        e.sample(Duration::from_millis(160));
        // rttvar = 3/4 * 40 + 1/4 * |80 - 160| = 50; srtt = 7/8 * 80 + 1/8 * 160 = 90
        assert_eq!(e.rttvar(), Some(Duration::from_millis(50)));
        assert_eq!(e.srtt(), Some(Duration::from_millis(90)));
        assert_eq!(e.timeout(&LIMITS), Duration::from_millis(290));
    }

    #[test]
    fn timeout_is_clamped() {
        let mut e = RttEstimator::default();
        e.sample(Duration::from_micros(20));
        assert_eq!(e.timeout(&LIMITS), LIMITS.min);
        let mut slow = RttEstimator::default();
        slow.sample(Duration::from_secs(30));
        assert_eq!(slow.timeout(&LIMITS), LIMITS.max);
    }

    #[test]
    fn rate_limiter_spaces_tokens() {
        let start = Instant::now();
        let mut r = RateLimiter::new(1000.0);
        let mut taken = 0;
        let mut now = start;
        // Simulated clock: 100 ms in 10 µs steps must yield about 100 tokens
        // (plus the small burst allowance), never more.
        for _ in 0..10_000 {
            if r.try_take(now).is_ok() {
                taken += 1;
            }
            now += Duration::from_micros(10);
        }
        assert!((100..=117).contains(&taken), "took {taken}");
    }
}
