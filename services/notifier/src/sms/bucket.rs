//! A token bucket per SMS provider: the messages per second the contract allows, with a
//! burst, slowed down when the SMSC answers `ESME_RTHROTTLED`. Pure: the caller passes
//! the time (an [`Instant`]), so tests drive it without sleeping.
//!
//! A throttle reply multiplies the rate by a factor (½ by default) and empties the
//! bucket; the rate then climbs back linearly, from 0 to the full rate over
//! [`TokenBucket::recovery`] (so from half to full in half of it). Replies to the
//! submits of one window arrive together, so a slow-down within
//! [`SLOW_DOWN_DEBOUNCE`] of the previous one is ignored rather than compounded; later
//! ones compound, down to [`MIN_MULTIPLIER`] of the rate, never to a stop.

use std::time::{Duration, Instant};

/// Slow-downs closer together than this count once.
pub(crate) const SLOW_DOWN_DEBOUNCE: Duration = Duration::from_secs(1);
/// The lowest fraction of the configured rate a slow-down goes to.
pub(crate) const MIN_MULTIPLIER: f64 = 1.0 / 32.0;
/// Tokens are floats; this much short of a whole token still counts as one, so that
/// waiting the time [`TokenBucket::try_take`] asked for always succeeds.
const EPSILON: f64 = 1e-9;

/// Messages per second, with a burst, for one provider.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    recovery: Duration,
    tokens: f64,
    /// When the tokens were last counted.
    counted: Instant,
    /// The last effective slow-down: when, and the multiplier it set.
    slowed: Option<(Instant, f64)>,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens (at least 1) refilled at `rate_per_second`
    /// (more than 0), recovering from a slow-down over `recovery` (more than 0).
    pub(crate) fn new(
        rate_per_second: f64,
        burst: u32,
        recovery: Duration,
        now: Instant,
    ) -> TokenBucket {
        debug_assert!(rate_per_second > 0.0 && rate_per_second.is_finite());
        debug_assert!(!recovery.is_zero());
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate_per_second.max(f64::MIN_POSITIVE),
            burst,
            recovery: recovery.max(Duration::from_millis(1)),
            tokens: burst,
            counted: now,
            slowed: None,
        }
    }

    /// Takes a token if there is one; otherwise the time to wait before asking again
    /// (an upper bound: a rate that is recovering may have the token sooner).
    pub(crate) fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens + EPSILON >= 1.0 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            return Ok(());
        }
        let seconds = (1.0 - self.tokens) / self.rate_at(now);
        Err(Duration::from_nanos((seconds * 1e9).ceil() as u64))
    }

    /// After a throttle reply: the rate times `factor` (clamped to `0..=1`; ½ halves it),
    /// the saved burst dropped. Ignored within [`SLOW_DOWN_DEBOUNCE`] of the previous
    /// slow-down.
    pub(crate) fn slow_down(&mut self, now: Instant, factor: f64) {
        if let Some((at, _)) = self.slowed
            && now.saturating_duration_since(at) < SLOW_DOWN_DEBOUNCE
        {
            return;
        }
        self.refill(now);
        let factor = if factor.is_nan() {
            1.0
        } else {
            factor.clamp(0.0, 1.0)
        };
        let multiplier = (self.multiplier(now) * factor).max(MIN_MULTIPLIER);
        self.slowed = Some((now, multiplier));
        self.tokens = 0.0;
    }

    /// Messages per second allowed at `now`: the configured rate, or less while a
    /// slow-down recovers.
    pub(crate) fn rate_at(&self, now: Instant) -> f64 {
        self.rate * self.multiplier(now)
    }

    /// The fraction of the rate allowed at `now`.
    fn multiplier(&self, now: Instant) -> f64 {
        match self.slowed {
            None => 1.0,
            Some((at, from)) => {
                let since = now.saturating_duration_since(at).as_secs_f64();
                (from + since / self.recovery.as_secs_f64()).min(1.0)
            }
        }
    }

    /// Adds the tokens earned since they were last counted: the integral of the rate,
    /// which rises linearly while a slow-down recovers.
    fn refill(&mut self, now: Instant) {
        if now <= self.counted {
            return;
        }
        let earned = match self.slowed {
            None => now.duration_since(self.counted).as_secs_f64(),
            Some((at, from)) => {
                let recovery = self.recovery.as_secs_f64();
                // Seconds after the slow-down: the span counted, and when it is over.
                let a = self.counted.saturating_duration_since(at).as_secs_f64();
                let b = now.saturating_duration_since(at).as_secs_f64();
                let recovered = (1.0 - from) * recovery;
                let ramp_end = b.min(recovered).max(a);
                let m = |t: f64| (from + t / recovery).min(1.0);
                (ramp_end - a) * (m(a) + m(ramp_end)) / 2.0 + (b - ramp_end)
            }
        };
        self.tokens = (self.tokens + earned * self.rate).min(self.burst);
        self.counted = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECOVERY: Duration = Duration::from_secs(60);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Takes tokens as fast as allowed, asking every millisecond, for `span` from
    /// `start`; the number taken.
    fn drain(bucket: &mut TokenBucket, start: Instant, span: Duration) -> usize {
        let steps = span.as_millis() as u64;
        (0..steps)
            .filter(|i| bucket.try_take(start + ms(*i)).is_ok())
            .count()
    }

    #[test]
    fn a_full_bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 5, RECOVERY, t0);
        for _ in 0..5 {
            assert_eq!(bucket.try_take(t0), Ok(()));
        }
        let wait = bucket.try_take(t0).expect_err("the burst is spent");
        assert_eq!(wait, ms(100));
        assert!(bucket.try_take(t0 + ms(99)).is_err());
        assert_eq!(bucket.try_take(t0 + wait), Ok(()));
        // 10 s at 10/s: 100 more, give or take the token in flight.
        let taken = drain(&mut bucket, t0 + wait, Duration::from_secs(10));
        assert!((99..=101).contains(&taken), "{taken}");
    }

    #[test]
    fn an_idle_bucket_fills_only_up_to_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(100.0, 3, RECOVERY, t0);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(t0), Ok(()));
        }
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(later), Ok(()));
        }
        assert!(bucket.try_take(later).is_err());
    }

    #[test]
    fn waiting_the_time_asked_for_always_yields_a_token() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(3.0, 1, RECOVERY, t0);
        let mut now = t0;
        bucket.slow_down(now, 0.5);
        for _ in 0..200 {
            match bucket.try_take(now) {
                Ok(()) => {}
                Err(wait) => {
                    now += wait;
                    assert_eq!(bucket.try_take(now), Ok(()), "after {wait:?}");
                }
            }
        }
    }

    #[test]
    fn a_throttle_halves_the_rate_which_then_recovers_gradually() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(20.0, 1, RECOVERY, t0);
        bucket.slow_down(t0, 0.5);
        assert_eq!(bucket.rate_at(t0), 10.0);
        assert!(bucket.try_take(t0).is_err(), "the saved burst is dropped");
        assert_eq!(bucket.rate_at(t0 + Duration::from_secs(15)), 15.0);
        assert_eq!(bucket.rate_at(t0 + Duration::from_secs(30)), 20.0);
        assert_eq!(bucket.rate_at(t0 + Duration::from_secs(300)), 20.0);

        // The first 10 s at 10/s rising to 13⅓/s: about 117 messages, not 200.
        let taken = drain(&mut bucket, t0, Duration::from_secs(10));
        assert!((115..=118).contains(&taken), "{taken}");
    }

    #[test]
    fn throttle_replies_to_one_window_count_once_and_later_ones_compound() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(64.0, 1, RECOVERY, t0);
        for i in 0..10 {
            bucket.slow_down(t0 + ms(i * 10), 0.5);
        }
        assert_eq!(bucket.rate_at(t0 + ms(100)), 64.0 * (0.5 + 0.1 / 60.0));
        let t1 = t0 + Duration::from_secs(1);
        bucket.slow_down(t1, 0.5);
        let compounded = bucket.rate_at(t1);
        assert!((compounded - 64.0 * (0.5 + 1.0 / 60.0) / 2.0).abs() < 1e-9);
        for i in 2..20 {
            bucket.slow_down(t0 + Duration::from_secs(i), 0.0);
        }
        let floor = bucket.rate_at(t0 + Duration::from_secs(19));
        assert!((floor - 64.0 * MIN_MULTIPLIER).abs() < 1e-9, "{floor}");
        assert!(bucket.try_take(t0 + Duration::from_secs(20)).is_ok());
    }
}
