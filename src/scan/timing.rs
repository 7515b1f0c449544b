//! Timing: per-host round-trip estimates and the connect-rate cap.
//!
//! The timeout of a probe comes from the host's smoothed RTT as TCP computes
//! its retransmission timeout (RFC 6298): `srtt + 4 * rttvar`, clamped
//! between the configured minimum and maximum. Before the first answer the
//! initial timeout is used.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
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

/// The smallest congestion window: a lossy path still gets this many
/// probes in flight.
pub const MIN_CWND: f64 = 4.0;

/// A congestion window in the spirit of nmap's (and TCP's): it grows by one
/// probe per answer until the slow-start threshold, then by one per
/// window's worth of answers; it halves when a probe is found lost (its
/// port answered only a retry). Losses of one episode cut it once: a loss
/// of a probe first sent before the last cut does not cut again. Silence
/// after every retry (a filtered port) is not a loss: nothing says the
/// probe was dropped on the way rather than by a firewall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Congestion {
    cwnd: f64,
    ssthresh: f64,
    max: f64,
    last_cut: Option<Instant>,
    cuts: u32,
}

impl Congestion {
    /// A window of `initial` probes that may grow to `max`.
    pub fn new(initial: f64, max: f64) -> Self {
        let max = max.max(MIN_CWND);
        Congestion {
            cwnd: initial.clamp(MIN_CWND, max),
            ssthresh: max,
            max,
            last_cut: None,
            cuts: 0,
        }
    }

    /// True when `inflight` probes leave room for one more.
    pub fn has_room(&self, inflight: usize) -> bool {
        (inflight as f64) < self.cwnd
    }

    /// The window, in probes.
    pub fn window(&self) -> usize {
        self.cwnd as usize
    }

    /// Times the window was cut for a loss.
    pub fn cuts(&self) -> u32 {
        self.cuts
    }

    /// An answer came. `lost_since` is when the pair's first probe went
    /// out, if that probe (or a later one) was lost before this answer.
    pub fn answered(&mut self, lost_since: Option<Instant>, now: Instant) {
        match lost_since {
            Some(first) if self.last_cut.is_none_or(|cut| first > cut) => {
                self.ssthresh = (self.cwnd / 2.0).max(MIN_CWND);
                self.cwnd = self.ssthresh;
                self.last_cut = Some(now);
                self.cuts += 1;
            }
            Some(_) => {}
            None if self.cwnd < self.ssthresh => self.cwnd = (self.cwnd + 1.0).min(self.max),
            None => self.cwnd = (self.cwnd + 1.0 / self.cwnd).min(self.max),
        }
    }
}

/// How many probes to a host were lost on the way, estimated from the
/// ports that answered: a port that answered on its third probe lost two.
/// It decides how many retries a silent port gets before it is called
/// filtered, so that a lossy path does not turn open or closed ports into
/// filtered ones (nmap raises its retries the same way, from the most
/// retries an answer needed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossEstimate {
    sent: u64,
    lost: u64,
}

/// The chance a port may have of being called filtered because every
/// probe to it was lost.
const FALSE_FILTERED: f64 = 1e-9;

impl LossEstimate {
    /// A port answered its `tries`-th probe.
    pub fn answered(&mut self, tries: u8) {
        self.sent += u64::from(tries.max(1));
        self.lost += u64::from(tries.saturating_sub(1));
    }

    /// The retries a silent port gets: `base` while nothing was lost,
    /// else enough for every probe of a port to be lost with a chance
    /// below `FALSE_FILTERED` at the loss rate seen, at most `ceiling`.
    pub fn retries(&self, base: u8, ceiling: u8) -> u8 {
        if self.lost == 0 || ceiling <= base {
            return base;
        }
        let p = (self.lost as f64 / self.sent as f64).min(0.99);
        let tries = (FALSE_FILTERED.ln() / p.ln()).ceil();
        let retries = if tries.is_finite() {
            tries - 1.0
        } else {
            255.0
        };
        (retries.clamp(0.0, 255.0) as u8).clamp(base, ceiling)
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

/// Buckets of the deadline wheel: one millisecond each, 16.4 s in all
/// (longer than any probe timeout the templates allow).
const WHEEL_SLOTS: u64 = 16_384;

/// Deadlines of probes in flight, in buckets of one millisecond: adding one
/// costs a push, and expiring visits only the buckets that came due, where
/// a heap pays a logarithm per probe in memory it misses in cache (a fast
/// scan holds hundreds of thousands, most answered long before their
/// deadline and skipped when it comes). A deadline beyond the wheel's span
/// waits in a heap of its own. Items come out at most a millisecond
/// late, never early.
#[derive(Debug)]
pub struct DeadlineWheel<T> {
    origin: Instant,
    /// The first bucket not yet expired, in milliseconds since `origin`.
    cursor: u64,
    slots: Vec<Vec<T>>,
    far: BinaryHeap<Reverse<(Instant, T)>>,
    len: usize,
}

impl<T: Ord> DeadlineWheel<T> {
    pub fn new(origin: Instant) -> Self {
        DeadlineWheel {
            origin,
            cursor: 0,
            slots: (0..WHEEL_SLOTS).map(|_| Vec::new()).collect(),
            far: BinaryHeap::new(),
            len: 0,
        }
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bucket of `t`: the first millisecond boundary at or after it.
    fn tick_of(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.origin);
        let ms = d.as_millis() as u64;
        if d > Duration::from_millis(ms) {
            ms + 1
        } else {
            ms
        }
    }

    pub fn push(&mut self, deadline: Instant, item: T) {
        let tick = self.tick_of(deadline).max(self.cursor);
        if tick - self.cursor < WHEEL_SLOTS {
            self.slots[(tick % WHEEL_SLOTS) as usize].push(item);
        } else {
            self.far.push(Reverse((deadline, item)));
        }
        self.len += 1;
    }

    /// Hands `due` every item whose deadline is at or before `now`, bucket
    /// by bucket in deadline order.
    pub fn expire(&mut self, now: Instant, mut due: impl FnMut(T)) {
        let now_tick = now.saturating_duration_since(self.origin).as_millis() as u64;
        if now_tick >= self.cursor {
            let last = now_tick.min(self.cursor + WHEEL_SLOTS - 1);
            for tick in self.cursor..=last {
                let slot = &mut self.slots[(tick % WHEEL_SLOTS) as usize];
                self.len -= slot.len();
                for item in slot.drain(..) {
                    due(item);
                }
            }
            self.cursor = now_tick + 1;
        }
        while self.far.peek().is_some_and(|Reverse((t, _))| *t <= now) {
            if let Some(Reverse((_, item))) = self.far.pop() {
                self.len -= 1;
                due(item);
            }
        }
    }

    /// When the next item comes due (the end of its bucket), if any.
    pub fn next_due(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        let near = (self.cursor..self.cursor + WHEEL_SLOTS)
            .find(|tick| !self.slots[(tick % WHEEL_SLOTS) as usize].is_empty())
            .map(|tick| self.origin + Duration::from_millis(tick));
        let far = self.far.peek().map(|Reverse((t, _))| *t);
        near.into_iter().chain(far).min()
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
    fn the_window_grows_on_answers_and_halves_once_per_loss_episode() {
        let t0 = Instant::now();
        let mut cc = Congestion::new(10.0, 1000.0);
        for _ in 0..10 {
            cc.answered(None, t0);
        }
        assert_eq!(cc.window(), 20);
        cc.answered(Some(t0), t0 + Duration::from_millis(1));
        assert_eq!(cc.window(), 10);
        // A probe sent before that cut is the same episode.
        cc.answered(Some(t0), t0 + Duration::from_millis(2));
        assert_eq!(cc.window(), 10);
        // Above the threshold it grows by one per window of answers.
        for _ in 0..10 {
            cc.answered(None, t0);
        }
        assert_eq!(cc.window(), 10, "{cc:?}");
        cc.answered(None, t0);
        assert_eq!(cc.window(), 11);
        let later = t0 + Duration::from_millis(5);
        cc.answered(Some(later), later);
        assert_eq!(cc.window(), 5);
        assert_eq!(cc.cuts(), 2);
        for _ in 0..10 {
            cc.answered(
                Some(t0 + Duration::from_secs(1)),
                t0 + Duration::from_secs(2),
            );
        }
        assert!(cc.has_room(MIN_CWND as usize - 1) && !cc.has_room(MIN_CWND as usize));
    }

    #[test]
    fn retries_rise_with_the_losses_seen() {
        let mut loss = LossEstimate::default();
        for _ in 0..1000 {
            loss.answered(1);
        }
        assert_eq!(loss.retries(2, 6), 2, "nothing lost");
        for _ in 0..20 {
            loss.answered(2);
        }
        // 20 lost of 1040 sent: 2%, and 0.02^6 < 1e-9 < 0.02^5.
        assert_eq!(loss.retries(2, 10), 5);
        assert_eq!(loss.retries(2, 4), 4, "capped");
        assert_eq!(loss.retries(3, 3), 3, "a typed --retries is kept");
        let mut awful = LossEstimate::default();
        awful.answered(5);
        assert_eq!(awful.retries(2, 6), 6);
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

    #[test]
    fn the_wheel_hands_out_deadlines_in_order_never_early() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut w = DeadlineWheel::new(t0);
        for (at, item) in [(30, 'c'), (10, 'a'), (20, 'b'), (20_000, 'z'), (10, 'A')] {
            w.push(ms(at), item);
        }
        w.push(t0 + Duration::from_micros(10_500), 'h');
        assert_eq!(w.len(), 6);
        assert_eq!(w.next_due(), Some(ms(10)));
        let mut out = Vec::new();
        w.expire(ms(9), |i| out.push(i));
        assert!(out.is_empty(), "nothing is due before 10 ms");
        w.expire(ms(10), |i| out.push(i));
        assert_eq!(out, vec!['a', 'A'], "10.5 ms is not due at 10 ms");
        w.expire(ms(25), |i| out.push(i));
        assert_eq!(out, vec!['a', 'A', 'h', 'b']);
        // A deadline already past goes out at the next expiry.
        w.push(ms(1), 'p');
        w.expire(ms(26), |i| out.push(i));
        assert_eq!(out.last(), Some(&'p'));
        // Long idle: a wheel's span and more passes at once.
        w.expire(ms(40_000), |i| out.push(i));
        assert_eq!(out, vec!['a', 'A', 'h', 'b', 'p', 'c', 'z']);
        assert!(w.is_empty() && w.next_due().is_none());
        // Buckets are reused after the wheel turns.
        w.push(ms(40_000 + WHEEL_SLOTS + 3), 'r');
        assert_eq!(w.next_due(), Some(ms(40_000 + WHEEL_SLOTS + 3)));
        w.expire(ms(40_000 + WHEEL_SLOTS + 2), |i| out.push(i));
        assert_eq!(out.len(), 7);
        w.expire(ms(40_000 + WHEEL_SLOTS + 3), |i| out.push(i));
        assert_eq!(out.last(), Some(&'r'));
    }
}
