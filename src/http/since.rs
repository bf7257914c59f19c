//! The `since` query parameter: milliseconds since the epoch (`1764590400000`) or an RFC 3339
//! time (`2026-12-01T12:00:00Z`, `2026-12-01T13:00:00.250+01:00`), percent-encoded or not; a
//! `+` offset that form-encoding turned into a space is read as `+`.

use proto::http1::{percent_decode_form, query_param};

/// The `since` parameter of a query in milliseconds since the epoch: `Ok(None)` when absent,
/// `Err(())` when present but not a time (answered 400).
pub fn since_param(query: Option<&str>) -> Result<Option<i64>, ()> {
    let Some(raw) = query.and_then(|q| query_param(q, "since")) else {
        return Ok(None);
    };
    let mut decoded = Vec::with_capacity(raw.len());
    percent_decode_form(raw, &mut decoded);
    let text = std::str::from_utf8(&decoded).map_err(|_| ())?;
    parse_since(text).map(Some).ok_or(())
}

/// Milliseconds since the epoch (non-negative), or an RFC 3339 date-time.
pub fn parse_since(s: &str) -> Option<i64> {
    let s = s.trim_matches(' ');
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok().filter(|&ms| ms < 1 << 53);
    }
    rfc3339_ms(s)
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = b.get(at..at + n)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(part.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` → milliseconds since the epoch (RFC 3339 section
/// 5.6; `t`, `z` and a space separator are accepted as the RFC allows).
fn rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-' | b' ') if i + 6 == b.len() && b[i + 3] == b':' => {
            let h = digits(b, i + 1, 2)?;
            let m = digits(b, i + 4, 2)?;
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 60 + m;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_minutes * 60;
    let ms = secs * 1000 + millis;
    (ms >= 0).then_some(ms)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the era-based method).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
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
    fn epoch_millis_and_rfc3339() {
        assert_eq!(parse_since("0"), Some(0));
        assert_eq!(parse_since("1764590400000"), Some(1_764_590_400_000));
        assert_eq!(parse_since("1970-01-01T00:00:00Z"), Some(0));
        // 2026-12-01T12:00:00Z = 1796126400 s (date -u -d 2026-12-01T12:00:00Z +%s).
        assert_eq!(parse_since("2026-12-01T12:00:00Z"), Some(1_796_126_400_000));
        assert_eq!(
            parse_since("2026-12-01T13:00:00.25+01:00"),
            Some(1_796_126_400_250)
        );
        assert_eq!(
            parse_since("2026-12-01t07:30:00.123456-04:30"),
            Some(1_796_126_400_123)
        );
        assert_eq!(parse_since("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_since("2024-12-31 23:59:59z"), Some(1_735_689_599_000));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "-5",
            "abc",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T12:00:00",
            "2026-12-01T12:00:00.Z",
            "2026-12-01T12:00:00+0100",
            "2026-12-01",
            "1969-12-31T23:59:59Z",
            "99999999999999999999",
        ] {
            assert_eq!(parse_since(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn query_forms() {
        assert_eq!(since_param(None), Ok(None));
        assert_eq!(since_param(Some("a=1")), Ok(None));
        assert_eq!(since_param(Some("since=1000")), Ok(Some(1000)));
        assert_eq!(
            since_param(Some("since=2026-12-01T13%3A00%3A00%2B01%3A00")),
            Ok(Some(1_796_126_400_000))
        );
        assert_eq!(
            since_param(Some("x=y&since=2026-12-01T13:00:00+01:00")),
            Ok(Some(1_796_126_400_000)),
            "a raw + read as a form space is still the offset sign"
        );
        assert_eq!(since_param(Some("since=soon")), Err(()));
    }
}
