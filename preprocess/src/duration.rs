//! Durations written as Go writes them (`time.ParseDuration`): `1m30s`, `1.5s`, `250ms`,
//! `2h45m`, `-1.5h`, `0`. Every duration flag of every kreplay binary goes through here, so a
//! value copied from a kperf report, a kubectl flag or a Go program means the same thing.
//!
//! No crate parses Go's form exactly (`humantime` rejects `1.5s`), and the grammar is small:
//! `[-+]?(DIGITS[.DIGITS]UNIT)+` with units `ns us µs μs ms s m h`, or a bare `0`.

use std::time::Duration;

/// Nanoseconds per unit, as Go names the units.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The largest duration Go can hold (`math.MaxInt64` nanoseconds, about 292 years).
const MAX_NANOS: u128 = i64::MAX as u128;

const HINT: &str = "use Go's form, e.g. 1m30s, 1.5s, 250ms, 2h45m (units ns, us, ms, s, m, h)";

/// A signed duration in nanoseconds, exactly as Go's `time.ParseDuration` reads `text`.
pub fn parse_go_duration_nanos(text: &str) -> Result<i64, String> {
    let s = text.trim();
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(format!("invalid duration {text:?}: {HINT}"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_digits, after_int) = rest.split_at(int_end);
        let (frac_digits, after_num) = match after_int.strip_prefix('.') {
            Some(f) => {
                let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                f.split_at(end)
            }
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(format!("invalid duration {text:?}: {HINT}"));
        }
        let unit_end = after_num
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_num.len());
        let (unit, next) = after_num.split_at(unit_end);
        if unit.is_empty() {
            return Err(format!(
                "invalid duration {text:?}: missing unit after {}; {HINT}",
                &rest[..rest.len() - after_num.len()]
            ));
        }
        let per_unit = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, n)| *n)
            .ok_or_else(|| format!("invalid duration {text:?}: unknown unit {unit:?}; {HINT}"))?;
        let overflow = || format!("duration {text:?} is out of range (at most 2562047h47m16s)");
        let whole: u128 = if int_digits.is_empty() {
            0
        } else {
            int_digits.parse().map_err(|_| overflow())?
        };
        // Digits past the 18th cannot change a nanosecond count of a unit ≤ 1 h.
        let frac_digits = &frac_digits[..frac_digits.len().min(18)];
        let frac_nanos = if frac_digits.is_empty() {
            0
        } else {
            let numerator: u128 = frac_digits.parse().map_err(|_| overflow())?;
            numerator * per_unit / 10u128.pow(frac_digits.len() as u32)
        };
        total = whole
            .checked_mul(per_unit)
            .and_then(|w| w.checked_add(frac_nanos))
            .and_then(|w| w.checked_add(total))
            .filter(|t| *t <= MAX_NANOS)
            .ok_or_else(overflow)?;
        rest = next;
    }
    let total = total as i64;
    Ok(if negative { -total } else { total })
}

/// A duration flag that cannot be negative (`0` allowed): a clap `value_parser`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let nanos = parse_go_duration_nanos(text)?;
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| format!("duration {text:?} must not be negative"))
}

/// A duration flag where zero makes no sense (a timeout, a period): a clap `value_parser`.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("duration {text:?} must be greater than 0"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(text: &str) -> i64 {
        parse_go_duration_nanos(text).unwrap()
    }

    #[test]
    fn go_forms() {
        // Expected values are those of Go's time.ParseDuration for the same text.
        assert_eq!(ns("1m30s"), 90_000_000_000);
        assert_eq!(ns("1.5s"), 1_500_000_000);
        assert_eq!(ns("250ms"), 250_000_000);
        assert_eq!(ns("2h45m"), 9_900_000_000_000);
        assert_eq!(ns("-1.5h"), -5_400_000_000_000);
        assert_eq!(ns("+5s"), 5_000_000_000);
        assert_eq!(ns(".5s"), 500_000_000);
        assert_eq!(ns("1.s"), 1_000_000_000);
        assert_eq!(ns("100us"), 100_000);
        assert_eq!(ns("100µs"), 100_000);
        assert_eq!(ns("100μs"), 100_000);
        assert_eq!(ns("7ns"), 7);
        assert_eq!(ns("1h1m1s1ms1us1ns"), 3_661_001_001_001);
        assert_eq!(ns("0"), 0);
        assert_eq!(ns("-0"), 0);
        assert_eq!(ns("0s"), 0);
        assert_eq!(ns("2562047h47m16.854775807s"), i64::MAX);
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "",
            "1",
            "1.5",
            "60",
            "-",
            "+",
            ".",
            ".s",
            "s",
            "5 parsecs",
            "1d",
            "1sec",
            "3000000h",
            "1s2",
        ] {
            assert!(
                parse_go_duration_nanos(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(parse_go_duration_nanos("60")
            .unwrap_err()
            .contains("missing unit"));
    }

    #[test]
    fn flag_parsers() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_positive_duration("0s")
            .unwrap_err()
            .contains("greater than 0"));
        assert_eq!(
            parse_positive_duration("1.5s"),
            Ok(Duration::from_millis(1500))
        );
    }
}
