//! The district's clock: Yangpu keeps China Standard Time (UTC+8, no daylight saving), and
//! every date a person sees or a rule compares (validity, registration dates, digest times)
//! is a district date. Defined once here.

use chrono::{FixedOffset, Utc};

/// Seconds east of UTC.
pub const UTC_OFFSET_SECONDS: i32 = 8 * 3600;

/// The district's offset from UTC.
pub fn offset() -> FixedOffset {
    FixedOffset::east_opt(UTC_OFFSET_SECONDS).expect("UTC+8 is a valid offset")
}

/// Now, in whole seconds since the Unix epoch (the instant every district time is
/// computed from).
pub fn unix_now() -> i64 {
    Utc::now().timestamp()
}

/// Today in the district, `YYYY-MM-DD`.
pub fn today() -> String {
    Utc::now()
        .with_timezone(&offset())
        .format("%Y-%m-%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_district_day_starts_at_16_00_utc() {
        let before = Utc
            .with_ymd_and_hms(2023, 3, 31, 15, 59, 59)
            .single()
            .expect("valid");
        let after = Utc
            .with_ymd_and_hms(2023, 3, 31, 16, 0, 0)
            .single()
            .expect("valid");
        let day = |t: chrono::DateTime<Utc>| t.with_timezone(&offset()).format("%F").to_string();
        assert_eq!(day(before), "2023-03-31");
        assert_eq!(day(after), "2023-04-01");
    }
}
