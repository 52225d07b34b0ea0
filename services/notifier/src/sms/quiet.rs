//! Quiet hours: no SMS at night, district time, unless the policy is urgent. Pure: the
//! caller passes the time, as seconds since the Unix epoch.
//!
//! The window is `[start, end)` in the district's clock ([`zhida_runtime::district`],
//! UTC+8 without daylight saving), and may wrap midnight (21:00–08:00 by default). A
//! message that falls inside is held until `end`, the first moment it may go out;
//! `start == end` means never quiet.

use zhida_runtime::district::UTC_OFFSET_SECONDS;

const DAY: i64 = 24 * 3600;

/// The nightly window, as seconds after district midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuietHours {
    start: u32,
    end: u32,
}

impl QuietHours {
    /// 21:00 to 08:00 (the configuration's default).
    #[cfg(test)]
    pub(crate) const DEFAULT: QuietHours = QuietHours {
        start: 21 * 3600,
        end: 8 * 3600,
    };

    /// The window from `start` to `end`, in seconds after district midnight (see
    /// [`time_of_day`]); `None` if either is a whole day or more.
    pub(crate) fn new(start: u32, end: u32) -> Option<QuietHours> {
        (start < DAY as u32 && end < DAY as u32).then_some(QuietHours { start, end })
    }
}

/// Seconds after midnight of an `HH:MM` (or `HH:MM:SS`) time of day, if it is one.
pub(crate) fn time_of_day(text: &str) -> Option<u32> {
    let mut parts = text.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next().unwrap_or("00"));
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || !digits(h) || !digits(m) || !digits(s) {
        return None;
    }
    let (h, m, s): (u32, u32, u32) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    (h < 24 && m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

/// When a message may go out: `None` to send now, `Some(t)` to hold it until `t`
/// (seconds since the epoch, the window's end in the district's clock). Urgent messages
/// are never held.
pub(crate) fn release_at(now_utc_seconds: i64, quiet: QuietHours, urgent: bool) -> Option<i64> {
    if urgent || quiet.start == quiet.end {
        return None;
    }
    let second_of_day = (now_utc_seconds + i64::from(UTC_OFFSET_SECONDS)).rem_euclid(DAY);
    let (start, end) = (i64::from(quiet.start), i64::from(quiet.end));
    let quiet_now = if start < end {
        (start..end).contains(&second_of_day)
    } else {
        // Wraps midnight: from `start` to midnight, and from midnight to `end`.
        second_of_day >= start || second_of_day < end
    };
    // The wait to the next `end`, tomorrow's when today's has passed.
    quiet_now.then(|| now_utc_seconds + (end - second_of_day).rem_euclid(DAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-01 00:00 district time (2024-02-29 16:00 UTC).
    const MIDNIGHT: i64 = 1_709_222_400;

    fn at(hh_mm: &str) -> i64 {
        MIDNIGHT + i64::from(time_of_day(hh_mm).expect("a time of day"))
    }

    #[test]
    fn the_district_midnight_used_by_these_tests_is_16_00_utc() {
        assert_eq!((MIDNIGHT + 8 * 3600) % DAY, 0);
    }

    #[test]
    fn night_messages_are_held_until_eight_the_next_morning_district_time() {
        let eight_tomorrow = MIDNIGHT + DAY + 8 * 3600;
        for late in ["21:00", "22:30", "23:59"] {
            assert_eq!(
                release_at(at(late), QuietHours::DEFAULT, false),
                Some(eight_tomorrow),
                "{late}"
            );
        }
        let eight_today = MIDNIGHT + 8 * 3600;
        for early in ["00:00", "03:15", "07:59"] {
            assert_eq!(
                release_at(at(early), QuietHours::DEFAULT, false),
                Some(eight_today),
                "{early}"
            );
        }
        assert_eq!(
            release_at(at("07:59") + 59, QuietHours::DEFAULT, false),
            Some(eight_today)
        );
    }

    #[test]
    fn day_messages_and_urgent_ones_go_now() {
        for day in ["08:00", "12:00", "20:59"] {
            assert_eq!(
                release_at(at(day), QuietHours::DEFAULT, false),
                None,
                "{day}"
            );
        }
        assert_eq!(
            release_at(at("20:59") + 59, QuietHours::DEFAULT, false),
            None
        );
        for night in ["21:00", "02:00"] {
            assert_eq!(
                release_at(at(night), QuietHours::DEFAULT, true),
                None,
                "{night}"
            );
        }
    }

    #[test]
    fn a_window_within_one_day_and_an_empty_window_are_honoured() {
        let t = |s| time_of_day(s).expect("time");
        let lunch = QuietHours::new(t("12:00"), t("13:30")).expect("valid");
        assert_eq!(release_at(at("11:59"), lunch, false), None);
        assert_eq!(release_at(at("12:00"), lunch, false), Some(at("13:30")));
        assert_eq!(release_at(at("13:29"), lunch, false), Some(at("13:30")));
        assert_eq!(release_at(at("13:30"), lunch, false), None);
        let never = QuietHours::new(t("21:00"), t("21:00")).expect("valid");
        for any in ["00:00", "21:00", "23:00"] {
            assert_eq!(release_at(at(any), never, false), None, "{any}");
        }
    }

    #[test]
    fn times_before_the_epoch_use_the_same_clock() {
        // 1969-12-31 22:00 district time, held until 1970-01-01 08:00 district time,
        // which is the epoch.
        let before = -10 * 3600;
        assert_eq!(release_at(before, QuietHours::DEFAULT, false), Some(0));
        // 1969-12-31 12:00 district time: day.
        let noon = -20 * 3600;
        assert_eq!(release_at(noon, QuietHours::DEFAULT, false), None);
    }

    #[test]
    fn only_hh_mm_and_hh_mm_ss_times_of_day_are_accepted() {
        assert_eq!(time_of_day("08:00"), Some(8 * 3600));
        assert_eq!(time_of_day("23:59"), Some(23 * 3600 + 59 * 60));
        assert_eq!(time_of_day("08:00:30"), Some(8 * 3600 + 30));
        for bad in [
            "8:00",
            "24:00",
            "12:60",
            "12-00",
            "1200",
            "",
            "+1:00",
            "08:00:60",
            "08:00:00:00",
            "08:00:",
            "08:00:5",
        ] {
            assert_eq!(time_of_day(bad), None, "{bad}");
        }
        assert_eq!(QuietHours::new(24 * 3600, 0), None);
    }
}
