//! Proleptic Gregorian arithmetic on Arrow's `Date32` (days since 1970-01-01), without chrono
//! allocations or `Option`s in the per-row path. Algorithms from Howard Hinnant's
//! "chrono-Compatible Low-Level Date Algorithms".

/// `(year, month 1..=12, day 1..=31)` of a `Date32` value.
pub(crate) fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

/// The `Date32` value of a valid civil date (callers check validity with [`days_in_month`]).
pub(crate) fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i32
}

pub(crate) fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(crate) fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The `Date32` value of `y-m-d`, or `None` if it is not a calendar date.
pub(crate) fn checked_days(y: i32, m: u32, d: u32) -> Option<i32> {
    (d >= 1 && d <= days_in_month(y, m) && (-200_000..=200_000).contains(&y)).then(|| days_from_civil(y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    #[test]
    fn matches_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for days in (-800_000..800_000).step_by(97).chain(-400..400) {
            let c = epoch + chrono::Duration::days(i64::from(days));
            assert_eq!(civil_from_days(days), (c.year(), c.month(), c.day()), "{days}");
            assert_eq!(days_from_civil(c.year(), c.month(), c.day()), days);
        }
    }

    #[test]
    fn validity() {
        assert!(checked_days(2024, 2, 29).is_some());
        assert!(checked_days(2025, 2, 29).is_none());
        assert!(checked_days(1900, 2, 29).is_none());
        assert!(checked_days(2000, 2, 29).is_some());
        assert!(checked_days(2025, 13, 1).is_none());
        assert!(checked_days(2025, 4, 0).is_none());
    }
}
