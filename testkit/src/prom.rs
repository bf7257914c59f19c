//! Prometheus text exposition: scraping and a strict parser.
use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use crate::*;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub struct PromText {
    pub samples: Vec<PromSample>,
    /// Metric family → type (`counter`, `gauge`, `histogram`, `summary`, `untyped`).
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
    pub raw: String,
}

impl PromText {
    /// The value of the sample `name` with exactly these labels (any order).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut want: Vec<(&str, &str)> = labels.to_vec();
        want.sort();
        self.samples
            .iter()
            .find(|s| {
                let mut have: Vec<(&str, &str)> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                have.sort();
                s.name == name && have == want
            })
            .map(|s| s.value)
    }

    /// Like `get`, panicking (with the whole text) when the sample is missing.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in:\n{}", self.raw))
    }

    /// Every sample of `name`.
    pub fn all(&self, name: &str) -> Vec<&PromSample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }
}

pub(crate) fn is_metric_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

pub(crate) fn is_label_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

pub(crate) fn prom_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => {
            // Go's ParseFloat syntax: digits, '.', exponent, sign; no hex, no "inf" words.
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
                return None;
            }
            v.parse().ok()
        }
    }
}

/// The family a sample belongs to, given the declared types (`x_bucket` → `x` for histograms).
pub(crate) fn family_of(name: &str, types: &BTreeMap<String, String>) -> String {
    for (suffix, kinds) in [
        ("_bucket", &["histogram"][..]),
        ("_sum", &["histogram", "summary"][..]),
        ("_count", &["histogram", "summary"][..]),
    ] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| kinds.contains(&t.as_str())) {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

/// A sample's labels, in order.
type Labels = Vec<(String, String)>;

/// Parses Prometheus text format 0.0.4 strictly: HELP/TYPE syntax, at most one of each per
/// family and before its samples, a family's lines contiguous, metric and label names, quoted
/// label values with only `\\`, `\"`, `\n` escapes, no duplicate label names or series,
/// numeric values (and optional integer timestamps), and for histograms: `le` on every bucket,
/// buckets ascending and cumulative, a `+Inf` bucket equal to `_count`, and a `_sum`.
pub fn parse_prometheus(text: &str) -> Result<PromText, String> {
    let mut out = PromText {
        raw: text.to_string(),
        ..PromText::default()
    };
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("exposition does not end with a newline".into());
    }
    let mut seen_series = std::collections::HashSet::new();
    let mut finished_families = std::collections::HashSet::new();
    let mut current: Option<String> = None;
    let mut with_samples = std::collections::HashSet::new();
    let mut enter =
        |family: &str, current: &mut Option<String>, lineno: usize| -> Result<(), String> {
            if current.as_deref() != Some(family) {
                if finished_families.contains(family) {
                    return Err(format!("line {lineno}: family {family} is not contiguous"));
                }
                if let Some(prev) = current.take() {
                    finished_families.insert(prev);
                }
                *current = Some(family.to_string());
            }
            Ok(())
        };
    for (i, line) in text.split('\n').enumerate() {
        let lineno = i + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            let mut parts = rest.splitn(3, ' ');
            let kw = parts.next().unwrap_or("");
            if kw != "HELP" && kw != "TYPE" {
                continue; // a plain comment
            }
            let name = parts
                .next()
                .ok_or(format!("line {lineno}: {kw} without a name"))?;
            if !is_metric_name(name) {
                return Err(format!("line {lineno}: bad metric name {name:?}"));
            }
            let arg = parts.next().unwrap_or("");
            enter(name, &mut current, lineno)?;
            if kw == "HELP" {
                let mut chars = arg.chars();
                while let Some(c) = chars.next() {
                    if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                        return Err(format!("line {lineno}: bad escape in HELP"));
                    }
                }
                if out.help.insert(name.to_string(), arg.to_string()).is_some() {
                    return Err(format!("line {lineno}: second HELP for {name}"));
                }
            } else {
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg) {
                    return Err(format!("line {lineno}: unknown type {arg:?}"));
                }
                if with_samples.contains(name) {
                    return Err(format!("line {lineno}: TYPE for {name} after its samples"));
                }
                if out
                    .types
                    .insert(name.to_string(), arg.to_string())
                    .is_some()
                {
                    return Err(format!("line {lineno}: second TYPE for {name}"));
                }
            }
            continue;
        }
        // A sample.
        let name_end = line
            .find(['{', ' '])
            .ok_or(format!("line {lineno}: no value: {line:?}"))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(format!("line {lineno}: bad metric name {name:?}"));
        }
        let mut rest = &line[name_end..];
        let mut labels: Vec<(String, String)> = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            loop {
                // label name
                let start = match chars.peek() {
                    Some(&(_, '}')) => {
                        let (j, _) = chars.next().unwrap();
                        rest = &r[j + 1..];
                        break;
                    }
                    Some(&(j, _)) => j,
                    None => return Err(format!("line {lineno}: unterminated labels")),
                };
                let eq = r[start..]
                    .find('=')
                    .ok_or(format!("line {lineno}: label without '='"))?
                    + start;
                let lname = &r[start..eq];
                if !is_label_name(lname) {
                    return Err(format!("line {lineno}: bad label name {lname:?}"));
                }
                while chars.peek().is_some_and(|&(j, _)| j <= eq) {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(format!("line {lineno}: label value not quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            other => {
                                return Err(format!(
                                    "line {lineno}: bad escape {other:?} in label value"
                                ))
                            }
                        },
                        Some((_, '\n')) | None => {
                            return Err(format!("line {lineno}: unterminated label value"))
                        }
                        Some((_, c)) => value.push(c),
                    }
                }
                if labels.iter().any(|(n, _)| n == lname) {
                    return Err(format!("line {lineno}: label {lname} twice"));
                }
                labels.push((lname.to_string(), value));
                match chars.next() {
                    Some((_, ',')) => {}
                    Some((j, '}')) => {
                        rest = &r[j + 1..];
                        break;
                    }
                    other => {
                        return Err(format!(
                            "line {lineno}: expected ',' or '}}', got {other:?}"
                        ))
                    }
                }
            }
        }
        let rest = rest
            .strip_prefix(' ')
            .ok_or(format!("line {lineno}: no space before the value"))?;
        let mut fields = rest.split(' ');
        let value_text = fields.next().unwrap_or("");
        let value =
            prom_value(value_text).ok_or(format!("line {lineno}: bad value {value_text:?}"))?;
        if let Some(ts) = fields.next() {
            if ts.parse::<i64>().is_err() {
                return Err(format!("line {lineno}: bad timestamp {ts:?}"));
            }
        }
        if fields.next().is_some() {
            return Err(format!("line {lineno}: trailing fields"));
        }
        let family = family_of(name, &out.types);
        enter(&family, &mut current, lineno)?;
        with_samples.insert(family.clone());
        let mut key: Vec<(String, String)> = labels.clone();
        key.sort();
        if !seen_series.insert((name.to_string(), key)) {
            return Err(format!("line {lineno}: duplicate series {name}{labels:?}"));
        }
        let kind = out
            .types
            .get(&family)
            .map(String::as_str)
            .unwrap_or("untyped");
        if kind == "counter"
            && !matches!(
                value.partial_cmp(&0.0),
                Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
            )
        {
            return Err(format!("line {lineno}: counter {name} is {value}"));
        }
        if kind == "histogram"
            && name.ends_with("_bucket")
            && !labels.iter().any(|(n, _)| n == "le")
        {
            return Err(format!("line {lineno}: histogram bucket without le"));
        }
        out.samples.push(PromSample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    // Histograms: cumulative buckets, +Inf == count, a sum.
    for (family, kind) in &out.types {
        if kind != "histogram" {
            continue;
        }
        // Group buckets by their labels other than `le`.
        let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for s in out.all(&format!("{family}_bucket")) {
            let mut other: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|(n, _)| n != "le")
                .cloned()
                .collect();
            other.sort();
            let le = &s.labels.iter().find(|(n, _)| n == "le").unwrap().1;
            let bound = prom_value(le).ok_or(format!("{family}: bad le {le:?}"))?;
            series.entry(other).or_default().push((bound, s.value));
        }
        if series.is_empty() {
            return Err(format!("histogram {family} has no buckets"));
        }
        for (other, buckets) in series {
            for w in buckets.windows(2) {
                if w[0].0.partial_cmp(&w[1].0) != Some(std::cmp::Ordering::Less) {
                    return Err(format!(
                        "{family}{other:?}: bucket bounds not ascending: {buckets:?}"
                    ));
                }
                if w[0].1 > w[1].1 {
                    return Err(format!(
                        "{family}{other:?}: buckets not cumulative: {buckets:?}"
                    ));
                }
            }
            let last = buckets.last().unwrap();
            if last.0 != f64::INFINITY {
                return Err(format!("{family}{other:?}: no +Inf bucket"));
            }
            let pick = |suffix: &str| {
                out.all(&format!("{family}{suffix}")).into_iter().find(|s| {
                    let mut l = s.labels.clone();
                    l.sort();
                    l == other
                })
            };
            let count = pick("_count").ok_or(format!("{family}{other:?}: no _count"))?;
            pick("_sum").ok_or(format!("{family}{other:?}: no _sum"))?;
            if count.value != last.1 {
                return Err(format!(
                    "{family}{other:?}: _count {} differs from the +Inf bucket {}",
                    count.value, last.1
                ));
            }
        }
    }
    Ok(out)
}

/// `GET path` from the exporter on `127.0.0.1:port`: (status, content type, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String, String)> {
    // The exporter starts listening a moment after the server logs `listening on`.
    wait_for_port(&format!("127.0.0.1:{port}"), WAIT);
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let r = raw_request(&format!("127.0.0.1:{port}"), req.as_bytes(), WAIT)?;
    Some((
        r.status,
        r.header("content-type").unwrap_or("").to_string(),
        String::from_utf8_lossy(&r.body).into_owned(),
    ))
}

/// Scrapes `http://127.0.0.1:port/metrics` and parses it (panics on any error).
pub fn scrape(port: u16) -> PromText {
    let (status, content_type, body) = http_get(port, "/metrics")
        .unwrap_or_else(|| panic!("no answer from the metrics port {port}"));
    assert_eq!(status, 200, "metrics status; body: {body}");
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "metrics content type {content_type:?}"
    );
    parse_prometheus(&body).unwrap_or_else(|e| panic!("bad exposition: {e}\n{body}"))
}

/// Waits until `cond` holds for a scrape; returns the last scrape either way.
pub fn wait_metrics(
    port: u16,
    timeout: Duration,
    cond: impl Fn(&PromText) -> bool,
) -> (bool, PromText) {
    let deadline = Instant::now() + timeout;
    loop {
        let m = scrape(port);
        if cond(&m) {
            return (true, m);
        }
        if Instant::now() >= deadline {
            return (false, m);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`wait_metrics`], failing the test with `what` and the last scrape when `cond` does not
/// come to hold within [`WAIT`].
pub fn expect_metrics(port: u16, what: &str, cond: impl Fn(&PromText) -> bool) -> PromText {
    let (ok, m) = wait_metrics(port, WAIT, cond);
    assert!(ok, "{what}:\n{}", m.raw);
    m
}
