//! Five-field cron schedules (`minute hour day-of-month month day-of-week`) in an IANA time zone.
//!
//! Semantics follow Vixie cron, as Kubernetes CronJobs do: lists (`1,15`), ranges (`1-5`), steps
//! (`*/15`, `10-50/20`), names (`jan`, `mon`), `7` as Sunday, and the macros `@hourly`, `@daily`,
//! `@weekly`, `@monthly`, `@yearly`. When both day fields are restricted, a day matches either.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    dom_restricted: bool,
    dow_restricted: bool,
}

/// Why a schedule could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron schedule {input:?}: {why}")]
pub struct CronError {
    /// The schedule as written.
    pub input: String,
    /// What is wrong with it.
    pub why: String,
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl CronSchedule {
    /// Parses a five-field schedule or a macro.
    pub fn parse(input: &str) -> Result<Self, CronError> {
        let err = |why: String| CronError { input: input.to_string(), why };
        let expanded = match input.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), got {}",
                fields.len()
            )));
        }
        let minutes = parse_field(fields[0], 0, 59, &[]).map_err(|w| err(format!("minute: {w}")))?;
        let hours = parse_field(fields[1], 0, 23, &[]).map_err(|w| err(format!("hour: {w}")))?;
        let days_of_month = parse_field(fields[2], 1, 31, &[]).map_err(|w| err(format!("day of month: {w}")))?;
        let months = parse_field(fields[3], 1, 12, &MONTHS).map_err(|w| err(format!("month: {w}")))?;
        let mut days_of_week = parse_field(fields[4], 0, 7, &DAYS).map_err(|w| err(format!("day of week: {w}")))?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week | 1) & !(1 << 7);
        }
        Ok(Self {
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            dom_restricted: !fields[2].starts_with('*'),
            dow_restricted: !fields[4].starts_with('*'),
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = bit(self.days_of_month, date.day() as u32);
        let dow = bit(self.days_of_week, date.weekday().to_sunday_zero_offset() as u32);
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first time strictly after `after` at which the schedule fires in `tz`, searching up to
    /// five years ahead (`None` for schedules such as `0 0 30 2 *` that never fire). A wall-clock time
    /// skipped by a daylight-saving change fires at the first instant after the gap.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = after.to_zoned(tz.clone()).datetime();
        let mut date = start.date();
        for _ in 0..(366 * 5) {
            if bit(self.months, date.month() as u32) && self.day_matches(date) {
                for h in 0..24u32 {
                    if !bit(self.hours, h) {
                        continue;
                    }
                    for m in 0..60u32 {
                        if !bit(self.minutes, m) {
                            continue;
                        }
                        let dt = DateTime::from_parts(date, Time::new(h as i8, m as i8, 0, 0).ok()?);
                        let ts = tz.to_ambiguous_zoned(dt).compatible().ok()?.timestamp();
                        if ts > after {
                            return Some(ts);
                        }
                    }
                }
            }
            date = date.checked_add(1.day()).ok()?;
        }
        None
    }
}

fn bit(set: u64, n: u32) -> bool {
    set & (1u64 << n) != 0
}

fn parse_value(s: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + offset);
    }
    s.parse::<u32>().map_err(|_| format!("{s:?} is not a number{}", if names.is_empty() { "" } else { " or a name" }))
}

fn parse_field(field: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    let mut set = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("step {s:?} is not a number"))?;
                if step == 0 {
                    return Err("step must be at least 1".into());
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (parse_value(a, names, min)?, parse_value(b, names, min)?)
        } else {
            let v = parse_value(range, names, min)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

/// Parses an IANA time zone name (`Europe/Berlin`); `None` means UTC.
pub fn parse_time_zone(name: Option<&str>) -> Result<TimeZone, String> {
    match name {
        None | Some("UTC") | Some("Etc/UTC") => Ok(TimeZone::UTC),
        Some(n) => {
            TimeZone::get(n).map_err(|_| format!("unknown time zone {n:?} (use an IANA name such as Europe/Berlin)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn next_fire_times() {
        // (schedule, zone, after, expected next)
        let table = [
            ("0 3 * * 0", "UTC", "2026-11-27T09:00:00Z", "2026-11-29T03:00:00Z"),
            ("0 3 * * 0", "Europe/Berlin", "2026-11-27T09:00:00Z", "2026-11-29T02:00:00Z"),
            ("*/15 * * * *", "UTC", "2026-11-27T09:00:00Z", "2026-11-27T09:15:00Z"),
            ("*/15 * * * *", "UTC", "2026-11-27T09:07:30Z", "2026-11-27T09:15:00Z"),
            ("@daily", "UTC", "2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z"),
            ("0 0 1 jan *", "UTC", "2026-11-27T00:00:00Z", "2027-01-01T00:00:00Z"),
            ("30 9 * * mon-fri", "UTC", "2026-11-27T10:00:00Z", "2026-11-30T09:30:00Z"),
            ("0 12 13 * 5", "UTC", "2026-11-27T13:00:00Z", "2026-12-04T12:00:00Z"),
            ("0 0 * * 7", "UTC", "2026-11-27T00:00:00Z", "2026-11-29T00:00:00Z"),
            // 02:30 does not exist in Berlin on 2027-03-28: fires just after the gap.
            ("30 2 28 3 *", "Europe/Berlin", "2027-03-01T00:00:00Z", "2027-03-28T01:30:00Z"),
        ];
        for (cron, zone, after, want) in table {
            let s = CronSchedule::parse(cron).unwrap();
            let tz = parse_time_zone(Some(zone)).unwrap();
            assert_eq!(s.next_after(ts(after), &tz), Some(ts(want)), "{cron} in {zone} after {after}");
        }
    }

    #[test]
    fn never_firing_schedule() {
        let s = CronSchedule::parse("0 0 30 2 *").unwrap();
        assert_eq!(s.next_after(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC), None);
    }

    #[test]
    fn rejects_malformed_schedules() {
        let table = [
            ("0 3 * *", "expected 5 fields"),
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "step must be at least 1"),
            ("5-1 * * * *", "outside"),
            ("x * * * *", "not a number"),
            ("* * * foo *", "not a number or a name"),
        ];
        for (cron, want) in table {
            let e = CronSchedule::parse(cron).unwrap_err().to_string();
            assert!(e.contains(want), "{cron}: {e}");
        }
    }

    #[test]
    fn time_zones() {
        assert!(parse_time_zone(Some("Europe/Berlin")).is_ok());
        assert!(parse_time_zone(None).is_ok());
        assert!(parse_time_zone(Some("Mars/Olympus")).unwrap_err().contains("unknown time zone"));
    }
}
