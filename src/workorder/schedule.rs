//! Recurring work orders (SPEC §9): `schedule: {every: ...}`, the pass's clock (`--now`, `PLATFORM_NOW`) and the UTC calendar period a run belongs to.
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The environment variable that sets the pass's clock when `--now` is not given.
pub const NOW_ENV: &str = "PLATFORM_NOW";

/// How often a scheduled work order runs: once per UTC calendar period of this length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Every {
    Hour,
    Day,
    Week,
    Month,
}

impl Every {
    /// The schema's word for it (`schedule.every`).
    pub fn from_name(name: &str) -> Option<Every> {
        match name {
            "hour" => Some(Every::Hour),
            "day" => Some(Every::Day),
            "week" => Some(Every::Week),
            "month" => Some(Every::Month),
            _ => None,
        }
    }

    /// The id of the period holding `now`: `2026-12-01T13`, `2026-12-01`, `2026-W49` (ISO
    /// week: `%G-W%V`, so 2027-01-01 is in `2026-W53`), `2026-12`.
    pub fn period(self, now: DateTime<Utc>) -> String {
        let format = match self {
            Every::Hour => "%Y-%m-%dT%H",
            Every::Day => "%Y-%m-%d",
            Every::Week => "%G-W%V",
            Every::Month => "%Y-%m",
        };
        now.format(format).to_string()
    }
}

/// The clock of one pass: `--now`, else `$PLATFORM_NOW`, else the system clock. Read once, so
/// every work order of the pass (and, in the workflow, every shard) sees the same periods.
pub fn pass_clock(flag: Option<&str>) -> Result<DateTime<Utc>> {
    if let Some(text) = flag {
        return parse_now(text, "--now");
    }
    let help = "set PLATFORM_NOW to a time such as 2026-12-01T13:05:00Z, or unset it";
    match crate::env_text::read(NOW_ENV, help)? {
        Some(text) => parse_now(&text, NOW_ENV),
        None => Ok(Utc::now()),
    }
}

fn parse_now(text: &str, source: &str) -> Result<DateTime<Utc>> {
    let now = DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Error::input(format!("{source} '{text}' is not an RFC 3339 time: {e}"))
                .help("pass a time such as 2026-12-01T13:05:00Z")
        })?;
    // RFC 3339 years are 0000-9999 before the offset is applied; in UTC (and as an ISO week
    // year) they can fall outside, and a period id must keep SPEC §9's four-digit form.
    use chrono::Datelike;
    let years = 0..=9999;
    let outside = if !years.contains(&now.year()) {
        Some(format!("is {now}, in the year {}", now.year()))
    } else if !years.contains(&now.iso_week().year()) {
        Some(format!("falls in ISO week year {}", now.iso_week().year()))
    } else {
        None
    };
    if let Some(why) = outside {
        return Err(Error::input(format!(
            "{source} '{text}' {why} (UTC), outside the years 0000-9999 that period ids can name"
        ))
        .help("pass a time such as 2026-12-01T13:05:00Z"));
    }
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        parse_now(s, "--now").unwrap()
    }

    #[test]
    fn periods_are_utc_calendar_periods() {
        let t = at("2026-12-01T13:59:59+00:00");
        assert_eq!(Every::Hour.period(t), "2026-12-01T13");
        assert_eq!(Every::Day.period(t), "2026-12-01");
        assert_eq!(Every::Week.period(t), "2026-W49");
        assert_eq!(Every::Month.period(t), "2026-12");
        // An offset is converted to UTC first: 00:30+02:00 is the day before, 22:30 UTC.
        assert_eq!(
            Every::Day.period(at("2026-12-02T00:30:00+02:00")),
            "2026-12-01"
        );
        // ISO weeks: the Friday 2027-01-01 belongs to the last week of 2026.
        assert_eq!(Every::Week.period(at("2027-01-01T00:00:00Z")), "2026-W53");
        assert_eq!(Every::Week.period(at("2026-12-28T00:00:00Z")), "2026-W53");
        assert_eq!(Every::Week.period(at("2027-01-04T00:00:00Z")), "2027-W01");
    }

    #[test]
    fn a_clock_whose_utc_period_leaves_the_four_digit_years_is_refused() {
        for text in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+00:01"] {
            let err = parse_now(text, "--now").unwrap_err();
            assert_eq!(err.exit_code(), 2, "{text}");
            assert!(
                err.message.contains("outside the years 0000-9999"),
                "{}",
                err.message
            );
        }
        // 0000-01-01 is in the ISO week year -1: no four-digit week id either.
        assert!(parse_now("0000-01-01T00:00:00Z", "--now").is_err());
        assert_eq!(Every::Day.period(at("9999-12-31T23:59:59Z")), "9999-12-31");
        assert_eq!(Every::Week.period(at("0000-01-03T00:00:00Z")), "0000-W01");
    }

    #[test]
    fn a_bad_clock_is_an_input_error_naming_its_source() {
        let err = parse_now("yesterday", NOW_ENV).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.message.starts_with("PLATFORM_NOW 'yesterday'"),
            "{}",
            err.message
        );
        assert_eq!(
            pass_clock(Some("2026-12-01T00:00:00Z")).unwrap(),
            at("2026-12-01T00:00:00Z")
        );
        assert!(pass_clock(Some("2026-13-01T00:00:00Z")).is_err());
    }
}
