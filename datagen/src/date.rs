//! A compact civil date (days since 1970-01-01) with ISO and Japanese-era formatting.
//!
//! Hand-rolled rather than chrono for speed in the hot loops; tests cross-check against chrono.

/// A proleptic Gregorian date stored as days since 1970-01-01.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub(crate) struct Date(pub i32);

/// First day of the covered period: fiscal year 2021 starts 2021-04-01.
pub(crate) const FIRST_FY: i32 = 2021;
/// Last covered fiscal year (FY2025 ends 2026-03-31).
pub(crate) const LAST_FY: i32 = 2025;
/// Number of covered months.
pub(crate) const MONTHS: usize = ((LAST_FY - FIRST_FY + 1) * 12) as usize;

impl Date {
    /// Build from year, month (1-12), day (1-31). Algorithm from H. Hinnant's `days_from_civil`.
    pub(crate) const fn from_ymd(y: i32, m: u32, d: u32) -> Date {
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = (y - era * 400) as u32;
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Date(era * 146097 + doe as i32 - 719468)
    }

    /// Split into (year, month, day).
    pub(crate) const fn ymd(self) -> (i32, u32, u32) {
        let z = self.0 + 719468;
        let era = if z >= 0 { z } else { z - 146096 } / 146097;
        let doe = (z - era * 146097) as u32;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let y = yoe as i32 + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (if m <= 2 { y + 1 } else { y }, m, d)
    }

    /// Add a number of days.
    pub(crate) const fn add(self, days: i32) -> Date {
        Date(self.0 + days)
    }

    /// Japanese fiscal year (starts 1 April).
    pub(crate) const fn fiscal_year(self) -> i32 {
        let (y, m, _) = self.ymd();
        if m >= 4 { y } else { y - 1 }
    }

    /// Completed years of age at `on` for a person born on `self`.
    pub(crate) fn age_at(self, on: Date) -> i32 {
        let (y1, m1, d1) = self.ymd();
        let (y2, m2, d2) = on.ymd();
        let mut a = y2 - y1;
        if (m2, d2) < (m1, d1) {
            a -= 1;
        }
        a
    }

    /// The same month and day `years` later (29 Feb becomes 1 Mar when needed).
    pub(crate) fn add_years(self, years: i32) -> Date {
        let (y, m, d) = self.ymd();
        if m == 2 && d == 29 && !is_leap(y + years) {
            Date::from_ymd(y + years, 3, 1)
        } else {
            Date::from_ymd(y + years, m, d)
        }
    }

    /// Append `YYYY-MM-DD`.
    pub(crate) fn write_iso(self, out: &mut Vec<u8>) {
        let (y, m, d) = self.ymd();
        let y = y.clamp(0, 9999) as u32;
        out.extend_from_slice(&[
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
            b'-',
            b'0' + (m / 10) as u8,
            b'0' + (m % 10) as u8,
            b'-',
            b'0' + (d / 10) as u8,
            b'0' + (d % 10) as u8,
        ]);
    }

    /// Japanese era of this date: (era code 1-5, era letter, era name, year within era).
    pub(crate) fn era(self) -> (u32, char, &'static str, i32) {
        let (y, _, _) = self.ymd();
        if self >= REIWA {
            (5, 'R', "令和", y - 2018)
        } else if self >= HEISEI {
            (4, 'H', "平成", y - 1988)
        } else if self >= SHOWA {
            (3, 'S', "昭和", y - 1925)
        } else if self >= TAISHO {
            (2, 'T', "大正", y - 1911)
        } else {
            (1, 'M', "明治", y - 1867)
        }
    }

    /// Append the claims-file era code form: era digit + YYMMDD, e.g. `3500101` = 昭和50年1月1日.
    pub(crate) fn write_era_code(self, out: &mut Vec<u8>) {
        let (code, _, _, ey) = self.era();
        let (_, m, d) = self.ymd();
        let ey = ey.clamp(0, 99) as u32;
        out.extend_from_slice(&[
            b'0' + code as u8,
            b'0' + (ey / 10) as u8,
            b'0' + (ey % 10) as u8,
            b'0' + (m / 10) as u8,
            b'0' + (m % 10) as u8,
            b'0' + (d / 10) as u8,
            b'0' + (d % 10) as u8,
        ]);
    }

    /// Append the written form, e.g. `昭和50年1月1日` (元年 for year 1).
    pub(crate) fn write_era_text(self, out: &mut Vec<u8>) {
        use std::io::Write;
        let (_, _, name, ey) = self.era();
        let (_, m, d) = self.ymd();
        out.extend_from_slice(name.as_bytes());
        if ey == 1 {
            out.extend_from_slice("元".as_bytes());
        } else {
            let _ = write!(out, "{ey}");
        }
        let _ = write!(out, "年{m}月{d}日");
    }
}

/// 大正 (Taishō) era start.
pub(crate) const TAISHO: Date = Date::from_ymd(1912, 7, 30);
/// 昭和 (Shōwa) era start.
pub(crate) const SHOWA: Date = Date::from_ymd(1926, 12, 25);
/// 平成 (Heisei) era start.
pub(crate) const HEISEI: Date = Date::from_ymd(1989, 1, 8);
/// 令和 (Reiwa) era start.
pub(crate) const REIWA: Date = Date::from_ymd(2019, 5, 1);

/// Start of the covered period.
pub(crate) const PERIOD_START: Date = Date::from_ymd(FIRST_FY, 4, 1);
/// Last day of the covered period.
pub(crate) const PERIOD_END: Date = Date::from_ymd(LAST_FY + 1, 3, 31);

/// Leap year test.
pub(crate) const fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in a month.
pub(crate) const fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

/// First day of covered month `i` (0 = April of the first fiscal year).
pub(crate) fn month_start(i: usize) -> Date {
    let total = (FIRST_FY * 12 + 3) as usize + i; // months since year 0, April = index 3
    Date::from_ymd((total / 12) as i32, (total % 12) as u32 + 1, 1)
}

/// Last day of covered month `i`.
pub(crate) fn month_end(i: usize) -> Date {
    month_start(i + 1).add(-1)
}

/// Covered month index of a date, if inside the period.
pub(crate) fn month_index(d: Date) -> Option<usize> {
    if d < PERIOD_START || d > PERIOD_END {
        return None;
    }
    let (y, m, _) = d.ymd();
    Some(((y * 12 + m as i32 - 1) - (FIRST_FY * 12 + 3)) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    #[test]
    fn matches_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for days in (-30000..30000).step_by(7) {
            let nd = epoch + chrono::Duration::days(days as i64);
            let d = Date(days);
            assert_eq!(d.ymd(), (nd.year(), nd.month(), nd.day()));
            assert_eq!(Date::from_ymd(nd.year(), nd.month(), nd.day()), d);
            let mut s = Vec::new();
            d.write_iso(&mut s);
            assert_eq!(String::from_utf8(s).unwrap(), nd.format("%Y-%m-%d").to_string());
        }
    }

    #[test]
    fn eras() {
        let mut s = Vec::new();
        Date::from_ymd(1975, 1, 1).write_era_code(&mut s);
        assert_eq!(s, b"3500101");
        s.clear();
        Date::from_ymd(2025, 4, 1).write_era_code(&mut s);
        assert_eq!(s, b"5070401");
        s.clear();
        Date::from_ymd(2019, 4, 30).write_era_code(&mut s);
        assert_eq!(s, b"4310430");
        s.clear();
        Date::from_ymd(1989, 1, 8).write_era_text(&mut s);
        assert_eq!(String::from_utf8(s).unwrap(), "平成元年1月8日");
        assert_eq!(Date::from_ymd(1926, 12, 24).era().0, 2);
        assert_eq!(Date::from_ymd(1926, 12, 25).era().0, 3);
    }

    #[test]
    fn months_and_fy() {
        assert_eq!(month_start(0), PERIOD_START);
        assert_eq!(month_end(MONTHS - 1), PERIOD_END);
        assert_eq!(month_index(Date::from_ymd(2022, 3, 31)), Some(11));
        assert_eq!(Date::from_ymd(2022, 3, 31).fiscal_year(), 2021);
        assert_eq!(Date::from_ymd(2022, 4, 1).fiscal_year(), 2022);
        assert_eq!(Date::from_ymd(1950, 6, 10).age_at(Date::from_ymd(2025, 6, 9)), 74);
        assert_eq!(Date::from_ymd(1950, 6, 10).age_at(Date::from_ymd(2025, 6, 10)), 75);
    }
}
