//! Numbers, plurals, durations and widths as a person reads them.

use std::time::Duration;

/// `1234567` -> `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 customer`, `2 customers`, `1,000 events`.
pub(crate) fn noun(n: u64, singular: &str, plural: &str) -> String {
    format!("{} {}", count(n), if n == 1 { singular } else { plural })
}

/// `customer` -> `customers` for the regular nouns this tool uses.
pub(crate) fn plural(n: u64, singular: &str) -> String {
    let plural = match singular {
        "retry" => "retries".to_owned(),
        s => format!("{s}s"),
    };
    noun(n, singular, &plural)
}

/// A rate: `12,345 events/s`.
pub(crate) fn rate(per_sec: f64, unit: &str) -> String {
    let n = if per_sec.is_finite() && per_sec > 0.0 {
        per_sec.round() as u64
    } else {
        0
    };
    format!("{} {unit}/s", count(n))
}

/// Elapsed time with sensible precision: `850 ms`, `2.4 s`, `1 min 05 s`.
pub(crate) fn elapsed(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        if s < 3600 {
            format!("{} min {:02} s", s / 60, s % 60)
        } else {
            format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
        }
    }
}

/// An age in words, rounded down to its largest unit: `45 s`, `2 min`,
/// `3 h`, `5 days`, `8 months`, `2 years`.
pub(crate) fn age(seconds: u64) -> String {
    const MIN: u64 = 60;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    const MONTH: u64 = 30 * DAY;
    const YEAR: u64 = 365 * DAY;
    match seconds {
        s if s < MIN => format!("{s} s"),
        s if s < HOUR && s % MIN == 0 => format!("{} min", s / MIN),
        s if s < HOUR => format!("{} min {} s", s / MIN, s % MIN),
        s if s < DAY => format!("{} h", s / HOUR),
        s if s < 2 * MONTH => noun(s / DAY, "day", "days"),
        s if s < YEAR => noun(s / MONTH, "month", "months"),
        s => noun(s / YEAR, "year", "years"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_plurals() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(plural(1, "customer"), "1 customer");
        assert_eq!(plural(2, "customer"), "2 customers");
        assert_eq!(plural(1, "retry"), "1 retry");
        assert_eq!(plural(3, "retry"), "3 retries");
        assert_eq!(rate(12_345.4, "events"), "12,345 events/s");
        assert_eq!(rate(f64::NAN, "events"), "0 events/s");
    }

    #[test]
    fn durations() {
        assert_eq!(elapsed(Duration::from_millis(3)), "3 ms");
        assert_eq!(elapsed(Duration::from_millis(2449)), "2.4 s");
        assert_eq!(elapsed(Duration::from_secs(65)), "1 min 05 s");
        assert_eq!(elapsed(Duration::from_secs(7260)), "2 h 01 min");
        assert_eq!(age(5), "5 s");
        assert_eq!(age(150), "2 min 30 s");
        assert_eq!(age(120), "2 min");
        assert_eq!(age(3 * 3600 + 5), "3 h");
        assert_eq!(age(86_400), "1 day");
        assert_eq!(age(28_800_665), "11 months");
        assert_eq!(age(8 * 30 * 86_400), "8 months");
        assert_eq!(age(800 * 86_400), "2 years");
    }
}
