//! When to try a delivery again. An endpoint that is down for a while (a park's server being
//! patched overnight) should still get its messages, but one that stays down should not
//! be hammered forever: the delays grow, and after the last attempt fails the endpoint is
//! to be disabled (the subscriber re-enables it once fixed).
//!
//! The default is Svix's schedule, which receivers of Standard Webhooks know: immediately,
//! then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h later, eight attempts over about a day
//! and nine hours. No jitter: the schedule is deterministic, so tests can use a short one
//! (`["0s", "200ms", "200ms"]`) and know when each attempt happens.

use std::time::Duration;

/// The delays before each attempt; the first is usually zero. Never empty. In the config
/// file: a list of humantime durations, `["0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h"]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct RetrySchedule(Vec<Duration>);

/// Why a list of delays is not a schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("a retry schedule needs at least one attempt")]
    Empty,
    #[error("delay {index} of the retry schedule ({text:?}) is not a duration: {reason}")]
    BadDelay {
        index: usize,
        text: String,
        reason: String,
    },
}

impl Default for RetrySchedule {
    fn default() -> Self {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        Self(
            [
                0,
                5,
                5 * MINUTE,
                30 * MINUTE,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
        )
    }
}

impl RetrySchedule {
    /// A schedule of these delays, one per attempt.
    pub fn new(delays: Vec<Duration>) -> Result<Self, ScheduleError> {
        if delays.is_empty() {
            return Err(ScheduleError::Empty);
        }
        Ok(Self(delays))
    }

    /// How long to wait (after the previous attempt, or after the message came for the
    /// first) before attempt `attempt`, counted from 0. `None` once every attempt was made:
    /// the endpoint is then to be disabled.
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        usize::try_from(attempt)
            .ok()
            .and_then(|i| self.0.get(i))
            .copied()
    }

    /// How many attempts a message gets (at least 1).
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX)
    }

    /// The delays, one per attempt.
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }
}

impl TryFrom<Vec<String>> for RetrySchedule {
    type Error = ScheduleError;

    fn try_from(texts: Vec<String>) -> Result<Self, ScheduleError> {
        let delays = texts
            .into_iter()
            .enumerate()
            .map(|(index, text)| {
                humantime::parse_duration(&text).map_err(|e| ScheduleError::BadDelay {
                    index,
                    reason: e.to_string(),
                    text,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(delays)
    }
}

impl From<RetrySchedule> for Vec<String> {
    fn from(schedule: RetrySchedule) -> Self {
        schedule
            .0
            .into_iter()
            .map(|d| humantime::format_duration(d).to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_svix_schedule() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 8);
        let secs: Vec<u64> = (0..8)
            .map(|a| schedule.delay_before(a).expect("attempt").as_secs())
            .collect();
        assert_eq!(secs, [0, 5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(schedule.delay_before(8), None);
        assert_eq!(schedule.delay_before(u32::MAX), None);
    }

    #[derive(Debug, serde::Deserialize)]
    struct Config {
        retry: RetrySchedule,
    }

    #[test]
    fn reads_humantime_lists_and_refuses_empty_or_bad_ones() {
        let config: Config =
            serde_json::from_str(r#"{"retry": ["0s", "200ms", "1m 30s"]}"#).expect("schedule");
        assert_eq!(
            config.retry.delays(),
            [
                Duration::ZERO,
                Duration::from_millis(200),
                Duration::from_secs(90)
            ]
        );
        assert_eq!(config.retry.delay_before(2), Some(Duration::from_secs(90)));
        assert_eq!(config.retry.delay_before(3), None);

        let err = serde_json::from_str::<Config>(r#"{"retry": []}"#).expect_err("empty");
        assert!(err.to_string().contains("at least one attempt"), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"retry": ["0s", "soon"]}"#).expect_err("bad");
        assert!(err.to_string().contains("delay 1"), "{err}");
        assert_eq!(RetrySchedule::new(Vec::new()), Err(ScheduleError::Empty));
    }

    #[test]
    fn serializes_back_to_the_same_schedule() {
        let schedule = RetrySchedule::default();
        let json = serde_json::to_string(&schedule).expect("serialize");
        assert_eq!(json, r#"["0s","5s","5m","30m","2h","5h","10h","10h"]"#);
        assert_eq!(
            serde_json::from_str::<RetrySchedule>(&json).expect("deserialize"),
            schedule
        );
    }
}
