//! Gregorian dates from and to day counts since 1970-01-01 (Howard Hinnant's algorithms), for the
//! few dates Kuryr reads and writes (Keystone's token times, the man page's date) without a date
//! crate.

/// The `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The day count since 1970-01-01 of `year-month-day` (negative before it).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_gregorian_both_ways() {
        for (days, ymd) in [
            (0, (1970, 1, 1)),
            (11_016, (2000, 2, 29)),
            (19_782, (2024, 2, 29)),
            (20_426, (2025, 12, 4)),
        ] {
            assert_eq!(civil_from_days(days), ymd);
            let (y, m, d) = ymd;
            assert_eq!(days_from_civil(y as i64, m as i64, d as i64), days as i64);
        }
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }
}
