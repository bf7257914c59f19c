//! HTTP dates (RFC 9110 section 5.6.7): IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the epoch as an IMF-fixdate.
pub fn format(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (y, m, d) = crate::logger::civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// An IMF-fixdate to seconds since the epoch; other forms (obsolete RFC 850, asctime) give
/// `None`, which makes the condition false and the file is sent whole.
pub fn parse(text: &str) -> Option<u64> {
    let mut w = text.trim().split(' ');
    let (_day, d, mon, y, time, gmt) = (
        w.next()?,
        w.next()?,
        w.next()?,
        w.next()?,
        w.next()?,
        w.next()?,
    );
    if gmt != "GMT" || w.next().is_some() || d.len() != 2 || y.len() != 4 {
        return None;
    }
    let d: u32 = d.parse().ok()?;
    let m = MONTHS.iter().position(|&x| x == mon)? as u32 + 1;
    let y: i64 = y.parse().ok()?;
    let mut t = time.split(':');
    let (h, mi, s): (u64, u64, u64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if t.next().is_some() || h > 23 || mi > 59 || s > 60 || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if days < 0 {
        return None;
    }
    Some(days as u64 * 86_400 + h * 3600 + mi * 60 + s)
}

/// (year, month, day), proleptic Gregorian, to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_and_parses_imf_fixdates() {
        assert_eq!(super::format(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            super::parse("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(super::format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            super::parse("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
        assert_eq!(super::parse("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(super::parse("Sun Nov  6 08:49:37 1994"), None);
        assert_eq!(super::parse("Sun, 06 Nov 1994 25:49:37 GMT"), None);
    }
}
