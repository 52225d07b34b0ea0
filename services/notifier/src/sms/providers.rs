//! Choosing an SMS provider: weighted, health-aware, with failover. Pure: the caller
//! passes the time and a random number, so a choice is deterministic in tests.
//!
//! Each provider has a configured weight (its share of the traffic while all is well).
//! Its health comes from the outcomes of the last [`HealthPolicy::window`]:
//! - every error lowers its effective weight (weight × (answered + 1) / (outcomes + 1)),
//!   and every slow or throttled answer too (down to ¼ of the weight when all are slow),
//!   so traffic drifts to the providers that answer well, as GOV.UK Notify lowers the
//!   priority of a provider that errs or delivers slowly; as old outcomes leave the
//!   window the weight comes back;
//! - [`HealthPolicy::errors`] errors in a row make it unhealthy for
//!   [`HealthPolicy::cool_down`]: it gets no traffic while another provider is healthy.
//!   After the cool-down it is tried again; one more error then sends it straight back
//!   to cool down (a half-open circuit), a success closes the run.
//!
//! [`Providers::choose`] never picks an unhealthy provider while a healthy one is left
//! (after `exclude`, the providers this message already failed at); when every one is
//! unhealthy it still picks the one whose cool-down ends first, because a message held
//! back is worse than a try at a provider that may have recovered. A provider with
//! weight 0 is a standby: chosen only when no weighted provider is healthy.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use zhida_smpp::SubmitError;

/// Outcomes kept per provider, whatever the window (bounds memory at high rates).
const MAX_SAMPLES: usize = 512;
/// The share of a provider's weight that slow answers can take away.
const SLOW_PENALTY: f64 = 0.75;

/// A provider, by its position in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ProviderId(usize);

impl ProviderId {
    /// Its position in the configuration (`sms.providers[n]`).
    pub(crate) fn index(self) -> usize {
        self.0
    }
}

/// How a submit to a provider went, as far as the provider's health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The provider answered: it accepted the message, or refused this message itself
    /// (a bad number is not the provider's fault).
    Answered,
    /// It asked us to slow down: counted as a slow answer, not as an error.
    Throttled,
    /// It failed, timed out, lost the connection or could not be reached.
    Error,
}

impl Outcome {
    /// The health outcome of a submit's result.
    pub(crate) fn of<T>(result: &Result<T, SubmitError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Answered,
            Err(SubmitError::Throttled { .. }) => Outcome::Throttled,
            // The message, or our encoding of it, is at fault, not the provider.
            Err(SubmitError::Refused { .. } | SubmitError::Invalid(_)) => Outcome::Answered,
            Err(
                SubmitError::Failed { .. } | SubmitError::ConnectionLost | SubmitError::Timeout,
            ) => Outcome::Error,
        }
    }
}

/// When a provider counts as slow or unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HealthPolicy {
    /// Outcomes older than this are forgotten.
    pub(crate) window: Duration,
    /// An answer slower than this is slow.
    pub(crate) slow: Duration,
    /// This many errors in a row make a provider unhealthy (at least 1).
    pub(crate) errors: u32,
    /// How long an unhealthy provider gets no traffic.
    pub(crate) cool_down: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            window: Duration::from_secs(60),
            slow: Duration::from_secs(2),
            errors: 3,
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    error: bool,
    slow: bool,
}

#[derive(Debug, Clone)]
struct Provider {
    name: String,
    weight: u32,
    samples: VecDeque<Sample>,
    errors_in_a_row: u32,
    unhealthy_until: Option<Instant>,
}

/// The configured providers and their recent health.
#[derive(Debug, Clone)]
pub(crate) struct Providers {
    providers: Vec<Provider>,
    policy: HealthPolicy,
}

impl Providers {
    /// The providers, by name and weight, in configuration order, all healthy.
    pub(crate) fn new(
        providers: impl IntoIterator<Item = (String, u32)>,
        policy: HealthPolicy,
    ) -> Providers {
        let providers = providers
            .into_iter()
            .map(|(name, weight)| Provider {
                name,
                weight,
                samples: VecDeque::new(),
                errors_in_a_row: 0,
                unhealthy_until: None,
            })
            .collect();
        Providers {
            providers,
            policy: HealthPolicy {
                errors: policy.errors.max(1),
                ..policy
            },
        }
    }

    /// Every provider, in configuration order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = ProviderId> + '_ {
        (0..self.providers.len()).map(ProviderId)
    }

    /// The provider with this name.
    #[cfg(test)]
    pub(crate) fn id(&self, name: &str) -> Option<ProviderId> {
        self.providers
            .iter()
            .position(|p| p.name == name)
            .map(ProviderId)
    }

    /// The provider's configured name.
    pub(crate) fn name(&self, id: ProviderId) -> &str {
        &self.providers[id.0].name
    }

    /// Whether the provider is out of its cool-down at `now`.
    pub(crate) fn is_healthy(&self, id: ProviderId, now: Instant) -> bool {
        self.providers[id.0]
            .unhealthy_until
            .is_none_or(|until| now >= until)
    }

    /// The provider's share of traffic at `now` relative to the others: its weight
    /// lowered by the errors and slow answers within the window.
    pub(crate) fn effective_weight(&self, id: ProviderId, now: Instant) -> f64 {
        let provider = &self.providers[id.0];
        let since = now.checked_sub(self.policy.window);
        let (mut total, mut errors, mut slow) = (0u32, 0u32, 0u32);
        for sample in provider
            .samples
            .iter()
            .filter(|s| since.is_none_or(|since| s.at > since))
        {
            total += 1;
            errors += u32::from(sample.error);
            slow += u32::from(sample.slow);
        }
        let answered = f64::from(total - errors + 1) / f64::from(total + 1);
        let speed = if total == 0 {
            1.0
        } else {
            1.0 - SLOW_PENALTY * f64::from(slow) / f64::from(total)
        };
        f64::from(provider.weight) * answered * speed
    }

    /// A provider for the next submit, or `None` when every provider is in `exclude`.
    ///
    /// Among the healthy providers not excluded, one with weight above 0, at random in
    /// proportion to the effective weights; else a healthy standby (weight 0), evenly;
    /// else the unhealthy one whose cool-down ends first. `random` is a uniformly
    /// random number (from the caller's RNG).
    pub(crate) fn choose(
        &self,
        now: Instant,
        exclude: &[ProviderId],
        random: u64,
    ) -> Option<ProviderId> {
        let candidates: Vec<ProviderId> = self.ids().filter(|id| !exclude.contains(id)).collect();
        let healthy: Vec<ProviderId> = candidates
            .iter()
            .copied()
            .filter(|id| self.is_healthy(*id, now))
            .collect();
        // A fraction in [0, 1) from the top 53 bits.
        let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;

        let weighted: Vec<(ProviderId, f64)> = healthy
            .iter()
            .map(|id| (*id, self.effective_weight(*id, now)))
            .filter(|(_, weight)| *weight > 0.0)
            .collect();
        let total: f64 = weighted.iter().map(|(_, weight)| weight).sum();
        if total > 0.0 {
            let mut point = fraction * total;
            for (id, weight) in &weighted {
                if point < *weight {
                    return Some(*id);
                }
                point -= weight;
            }
            // Rounding left the point past the last one.
            return weighted.last().map(|(id, _)| *id);
        }
        if !healthy.is_empty() {
            let index = ((fraction * healthy.len() as f64) as usize).min(healthy.len() - 1);
            return Some(healthy[index]);
        }
        // Every candidate is cooling down: the first back, the heavier on a tie.
        candidates.into_iter().min_by_key(|id| {
            let provider = &self.providers[id.0];
            (provider.unhealthy_until, Reverse(provider.weight))
        })
    }

    /// Records how a submit to `provider` went and how long it took to answer.
    pub(crate) fn record(
        &mut self,
        provider: ProviderId,
        outcome: Outcome,
        latency: Duration,
        now: Instant,
    ) {
        let policy = self.policy;
        let provider = &mut self.providers[provider.0];
        let error = outcome == Outcome::Error;
        provider.samples.push_back(Sample {
            at: now,
            error,
            slow: outcome == Outcome::Throttled || latency > policy.slow,
        });
        let since = now.checked_sub(policy.window);
        while provider.samples.len() > MAX_SAMPLES
            || provider
                .samples
                .front()
                .is_some_and(|s| since.is_some_and(|since| s.at <= since))
        {
            provider.samples.pop_front();
        }
        match outcome {
            Outcome::Error => {
                provider.errors_in_a_row = provider.errors_in_a_row.saturating_add(1);
                if provider.errors_in_a_row >= policy.errors {
                    provider.unhealthy_until = Some(now + policy.cool_down);
                }
            }
            Outcome::Answered => {
                provider.errors_in_a_row = 0;
                provider.unhealthy_until = None;
            }
            Outcome::Throttled => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use zhida_smpp::{Status, Submitted};

    use super::*;

    const FAST: Duration = Duration::from_millis(50);

    /// splitmix64: a fixed, seedable sequence of random numbers.
    fn rng(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    fn providers(weights: &[(&str, u32)]) -> Providers {
        Providers::new(
            weights
                .iter()
                .map(|(name, weight)| (name.to_string(), *weight)),
            HealthPolicy::default(),
        )
    }

    /// The share of `picks` choices that went to each provider.
    fn shares(providers: &Providers, now: Instant, exclude: &[ProviderId], seed: u64) -> Vec<f64> {
        const PICKS: usize = 20_000;
        let mut next = rng(seed);
        let mut counts = vec![0usize; providers.ids().count()];
        for _ in 0..PICKS {
            let id = providers.choose(now, exclude, next()).expect("a provider");
            counts[id.0] += 1;
        }
        counts.iter().map(|c| *c as f64 / PICKS as f64).collect()
    }

    fn near(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 0.015
    }

    #[test]
    fn traffic_follows_the_configured_weights() {
        let set = providers(&[("a", 3), ("b", 1), ("c", 0)]);
        let now = Instant::now();
        for seed in [1, 7, 42] {
            let s = shares(&set, now, &[], seed);
            assert!(near(s[0], 0.75) && near(s[1], 0.25), "seed {seed}: {s:?}");
            assert_eq!(s[2], 0.0, "a standby gets nothing while others are healthy");
        }
        assert_eq!(set.choose(now, &[], 0), set.id("a"));
        assert_eq!(set.choose(now, &[], u64::MAX), set.id("b"));
    }

    #[test]
    fn errors_and_slow_answers_lower_a_providers_share() {
        let mut set = providers(&[("a", 1), ("b", 1)]);
        let (a, b) = (set.id("a").expect("a"), set.id("b").expect("b"));
        let t0 = Instant::now();
        set.record(a, Outcome::Error, FAST, t0);
        set.record(a, Outcome::Answered, FAST, t0);
        // a: 2 outcomes, 1 error: weight (1 + 1) / 3.
        assert!(near(set.effective_weight(a, t0), 2.0 / 3.0));
        let s = shares(&set, t0, &[], 3);
        assert!(near(s[0], 0.4) && near(s[1], 0.6), "{s:?}");

        set.record(b, Outcome::Answered, Duration::from_secs(5), t0);
        set.record(b, Outcome::Throttled, FAST, t0);
        // b: both slow: a quarter of its weight.
        assert!(near(set.effective_weight(b, t0), 0.25));
        assert!(set.is_healthy(b, t0), "throttling is not an error");

        // Old outcomes leave the window and the weights come back.
        let later = t0 + HealthPolicy::default().window + Duration::from_secs(1);
        assert_eq!(set.effective_weight(a, later), 1.0);
        assert_eq!(set.effective_weight(b, later), 1.0);
    }

    #[test]
    fn a_failing_provider_loses_its_traffic_and_recovers_after_the_cool_down() {
        let policy = HealthPolicy::default();
        let mut set = providers(&[("a", 1), ("b", 1)]);
        let (a, b) = (set.id("a").expect("a"), set.id("b").expect("b"));
        let t0 = Instant::now();
        for i in 0..3 {
            set.record(
                a,
                Outcome::Error,
                Duration::from_secs(10),
                t0 + Duration::from_secs(i),
            );
        }
        let failed = t0 + Duration::from_secs(2);
        assert!(!set.is_healthy(a, failed));
        let during = failed + policy.cool_down - Duration::from_millis(1);
        assert_eq!(shares(&set, during, &[], 5), [0.0, 1.0]);

        // After the cool-down it is tried again, with a share its errors still lower.
        let after = failed + policy.cool_down;
        assert!(set.is_healthy(a, after));
        let s = shares(&set, after, &[], 5);
        assert!(s[0] > 0.0 && s[0] < 0.2, "{s:?}");

        // Half-open: one more error and it cools down again at once.
        set.record(a, Outcome::Error, FAST, after);
        assert!(!set.is_healthy(a, after + Duration::from_secs(1)));

        // Successes close the circuit and, as the errors age out, it is back to half.
        let back = after + policy.cool_down;
        for i in 0..10 {
            set.record(a, Outcome::Answered, FAST, back + Duration::from_secs(i));
            set.record(b, Outcome::Answered, FAST, back + Duration::from_secs(i));
        }
        let recovered = back + policy.window;
        assert!(set.is_healthy(a, recovered));
        let s = shares(&set, recovered, &[], 9);
        assert!(near(s[0], 0.5), "{s:?}");
    }

    #[test]
    fn failover_excludes_the_providers_already_tried() {
        let set = providers(&[("a", 5), ("b", 1), ("c", 0)]);
        let (a, b, c) = (
            set.id("a").expect("a"),
            set.id("b").expect("b"),
            set.id("c").expect("c"),
        );
        let now = Instant::now();
        let mut next = rng(11);
        for _ in 0..1000 {
            assert_eq!(set.choose(now, &[a], next()), Some(b));
        }
        assert_eq!(set.choose(now, &[a, b], next()), Some(c), "the standby");
        assert_eq!(set.choose(now, &[a, b, c], next()), None);
    }

    #[test]
    fn when_every_provider_is_unhealthy_the_first_to_recover_is_still_chosen() {
        let mut set = providers(&[("a", 1), ("b", 1)]);
        let (a, b) = (set.id("a").expect("a"), set.id("b").expect("b"));
        let t0 = Instant::now();
        for _ in 0..3 {
            set.record(b, Outcome::Error, FAST, t0);
        }
        let t1 = t0 + Duration::from_secs(5);
        for _ in 0..3 {
            set.record(a, Outcome::Error, FAST, t1);
        }
        assert!(!set.is_healthy(a, t1) && !set.is_healthy(b, t1));
        let mut next = rng(2);
        for _ in 0..100 {
            assert_eq!(set.choose(t1, &[], next()), Some(b));
        }
        assert_eq!(set.choose(t1, &[b], next()), Some(a));
    }

    #[test]
    fn submit_results_are_classified_for_health() {
        let ok: Result<Submitted, SubmitError> = Ok(Submitted {
            message_id: "1".into(),
        });
        assert_eq!(Outcome::of(&ok), Outcome::Answered);
        for (error, outcome) in [
            (
                SubmitError::Throttled {
                    status: Status::ESME_RTHROTTLED,
                },
                Outcome::Throttled,
            ),
            (
                SubmitError::Refused {
                    status: Status::ESME_RINVDSTADR,
                },
                Outcome::Answered,
            ),
            (SubmitError::Invalid("too long".into()), Outcome::Answered),
            (
                SubmitError::Failed {
                    status: Status::ESME_RSYSERR,
                },
                Outcome::Error,
            ),
            (SubmitError::ConnectionLost, Outcome::Error),
            (SubmitError::Timeout, Outcome::Error),
        ] {
            let result: Result<Submitted, SubmitError> = Err(error.clone());
            assert_eq!(Outcome::of(&result), outcome, "{error}");
        }
    }
}
