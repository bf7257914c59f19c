//! Output: the human summary, the JSON lines file, and the SVG of latency percentiles.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde_json::Value;

pub fn default_results() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("results/results.jsonl")
}

pub fn append(path: &Path, record: &Value) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(f, "{record}").map_err(|e| e.to_string())
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn ms(us: &Value) -> String {
    match us.as_f64() {
        None => "-".into(),
        Some(u) if u < 10_000.0 => format!("{:.2}", u / 1000.0),
        Some(u) => format!("{:.0}", u / 1000.0),
    }
}

/// A difference in µs as signed ms.
fn ms_signed(us: &Value) -> String {
    match us.as_f64() {
        None => "-".into(),
        Some(u) if u.abs() < 10_000.0 => format!("{:+.2}", u / 1000.0),
        Some(u) => format!("{:+.0}", u / 1000.0),
    }
}

/// Latency percentiles of a record, as they are named in its JSON.
const PCT_KEYS: &[&str] = &["p50_us", "p90_us", "p99_us", "p999_us", "max_us"];

/// What the server adds to the broker's own latency: ours minus the broker floor (a plain
/// librdkafka consumer of the same topic in the same run), per percentile, in µs (negative
/// when ours was faster at that percentile). Null without both.
pub fn server_added(r: &Value) -> Value {
    let (l, b) = (&r["latency"], &r["broker_floor_latency"]);
    if r["target"] != "sse-kafka" || !l["p50_us"].is_number() || !b["p50_us"].is_number() {
        return Value::Null;
    }
    let mut o = serde_json::Map::new();
    for k in PCT_KEYS {
        o.insert(k.to_string(), serde_json::json!(f(&l[*k]) - f(&b[*k])));
    }
    Value::Object(o)
}

/// Marks each of our runs in one group (same load) as kept up or fell behind: a stream fell
/// behind when the server-added p99 exceeds the raw floor's p99 (the machine's own latency for
/// this load and client; 0 when no raw floor ran) by more than `margin_ms`. Sets `verdict` on
/// our records; without a margin (the check is off, or the scenario has none) it only reports.
pub fn judge(group: &mut [Value], margin_ms: Option<f64>) {
    let raw = group.iter().find(|r| r["target"] == "raw-floor");
    let raw_p99 = raw.and_then(|r| r["latency"]["p99_us"].as_f64());
    // A raw floor that did not deliver everything means the machine (load clients included)
    // could not carry this load: its p99 is then no floor, and no verdict is given.
    let raw_saturated = raw.is_some_and(|r| r["delivery"]["integrity_ok"] == false);
    for r in group.iter_mut().filter(|r| r["target"] == "sse-kafka") {
        let added = r["server_added_us"]["p99_us"].as_f64();
        let limit = margin_ms.map(|m| raw_p99.unwrap_or(0.0) + m * 1000.0);
        let fell_behind = match (added, limit) {
            (Some(a), Some(l)) if !raw_saturated => Some(a > l),
            _ => None,
        };
        r["verdict"] = serde_json::json!({
            "server_added_p99_us": added,
            "raw_floor_p99_us": raw_p99,
            "margin_ms": margin_ms,
            "limit_us": limit,
            "fell_behind": fell_behind,
            "raw_floor_saturated": raw_saturated,
        });
    }
}

/// One line per judged run of ours.
pub fn verdicts(records: &[Value]) -> String {
    let mut s = String::new();
    for r in records.iter().filter(|r| r["verdict"].is_object()) {
        let v = &r["verdict"];
        let what = match v["fell_behind"].as_bool() {
            Some(true) => "FELL BEHIND",
            Some(false) => "kept up",
            None if v["server_added_p99_us"].is_null() => "no verdict (no broker floor)",
            None if v["raw_floor_saturated"] == true => {
                "no verdict (the raw floor lost events too: the machine cannot carry this load)"
            }
            None => "not judged (margin off)",
        };
        let _ = writeln!(
            s,
            "{:<18} server adds p99 {} ms · raw floor p99 {} ms · margin {} ms → {what} · peak RSS {:.1} MiB",
            r["scenario"].as_str().unwrap_or(""),
            ms_signed(&v["server_added_p99_us"]),
            ms(&v["raw_floor_p99_us"]),
            v["margin_ms"].as_f64().map(|m| format!("{m}")).unwrap_or("off".into()),
            f(&r["memory"]["rss_peak_kib"]) / 1024.0,
        );
    }
    s
}

fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One run in a few lines.
pub fn summary(r: &Value) -> String {
    let mut s = String::new();
    let d = &r["delivery"];
    let l = &r["latency"];
    let _ = writeln!(
        s,
        "{:<14} {:<10} streams {:>6} (open {}, failed {})",
        r["scenario"].as_str().unwrap_or(""),
        r["target"].as_str().unwrap_or(""),
        r["streams"],
        r["opened"],
        r["failed_streams"]
    );
    if !r["feed"].is_null() {
        let _ = writeln!(
            s,
            "    delivered {} events ({} /s over {:.1} s) · {} per CPU-second of the target ({:.2} cores busy)",
            thousands(f(&d["unique"])),
            thousands(f(&d["delivered_per_s"])),
            f(&d["window_s"]),
            thousands(f(&r["cpu"]["events_per_cpu_s"])),
            f(&r["cpu"]["target_cores_busy"]),
        );
        let _ = writeln!(
            s,
            "    latency ms: p50 {} · p90 {} · p99 {} · p99.9 {} · max {}   (feed {:.0}/s achieved, {} failed)",
            ms(&l["p50_us"]),
            ms(&l["p90_us"]),
            ms(&l["p99_us"]),
            ms(&l["p999_us"]),
            ms(&l["max_us"]),
            f(&r["feed_report"]["achieved_rate"]),
            r["feed_report"]["failed"]
        );
        let b = &r["broker_floor_latency"];
        if !b["p50_us"].is_null() {
            let _ = writeln!(
                s,
                "    broker floor (plain Kafka consumer, same broker) ms: p50 {} · p90 {} · p99 {} · max {}",
                ms(&b["p50_us"]),
                ms(&b["p90_us"]),
                ms(&b["p99_us"]),
                ms(&b["max_us"]),
            );
        }
        let a = &r["server_added_us"];
        if a["p50_us"].is_number() {
            let _ = writeln!(
                s,
                "    server adds (ours − broker floor) ms: p50 {} · p90 {} · p99 {} · p99.9 {} · max {}",
                ms_signed(&a["p50_us"]),
                ms_signed(&a["p90_us"]),
                ms_signed(&a["p99_us"]),
                ms_signed(&a["p999_us"]),
                ms_signed(&a["max_us"]),
            );
        }
    }
    let _ = writeln!(
        s,
        "    lost {} · duplicated {} · out of order {} · unexpected {} · server closes {} · deliberate drops {} → {}",
        d["lost"],
        d["duplicates"],
        d["out_of_order"],
        d["unexpected"],
        d["server_closes"],
        d["deliberate_drops"],
        if d["integrity_ok"].as_bool() == Some(true) { "OK" } else { "INTEGRITY FAILURE" }
    );
    let m = &r["memory"];
    let _ = writeln!(
        s,
        "    target RSS {:.1} MiB before streams, {:.1} MiB with them, peak {:.1} MiB → {:.0} bytes per stream",
        f(&m["rss_before_kib"]) / 1024.0,
        f(&m["rss_with_streams_kib"]) / 1024.0,
        f(&m["rss_peak_kib"]) / 1024.0,
        f(&m["bytes_per_stream"]),
    );
    if f(&m["kernel_slab_bytes_per_socket"]) > 0.0 {
        let _ = writeln!(
            s,
            "    kernel: ≈{:.0} bytes of slab per socket (machine-wide delta / 2 ends), TCP buffer pages {:+}",
            f(&m["kernel_slab_bytes_per_socket"]),
            m["tcp_buffer_pages_delta"].as_i64().unwrap_or(0),
        );
    }
    let c = &r["cpu"];
    if f(&c["clients_s"]) > 0.0 {
        let _ = writeln!(
            s,
            "    CPU seconds in the window: target {:.2}, load clients {:.2}, broker {:.2}",
            f(&c["target_s"]),
            f(&c["clients_s"]),
            f(&c["broker_s"]),
        );
    }
    if let Some(o) = r["server_metrics"]["streams_ended"].as_object() {
        let ended: Vec<String> = o
            .iter()
            .filter(|(_, v)| f(v) > 0.0)
            .map(|(k, v)| format!("{k} {}", f(v)))
            .collect();
        if !ended.is_empty() {
            let _ = writeln!(s, "    server metrics: streams ended: {}", ended.join(", "));
        }
    }
    if let Some(o) = d["errors"].as_object() {
        if !o.is_empty() {
            let _ = writeln!(s, "    client errors: {}", Value::Object(o.clone()));
        }
    }
    s
}

/// Ours against each baseline of the same scenario: ratios of throughput per CPU, latency, memory.
pub fn ratios(records: &[Value]) -> String {
    let mut s = String::new();
    let by = |scenario: &str, target: &str| {
        records
            .iter()
            .rev()
            .find(|r| r["scenario"] == scenario && r["target"] == target)
    };
    let mut scenarios: Vec<&str> = Vec::new();
    for sc in records.iter().filter_map(|r| r["scenario"].as_str()) {
        if !scenarios.contains(&sc) {
            scenarios.push(sc);
        }
    }
    for sc in scenarios {
        let Some(ours) = by(sc, "sse-kafka") else {
            continue;
        };
        let floor = &ours["broker_floor_latency"];
        if floor["p50_us"].is_number() && ours["latency"]["p50_us"].is_number() {
            let r = |k: &str| format!("{:.2}", f(&ours["latency"][k]) / f(&floor[k]).max(1.0));
            let _ = writeln!(
                s,
                "{sc:<14} ours/broker floor (plain Kafka consumer) latency · p50 {} · p99 {} · max {}",
                r("p50_us"),
                r("p99_us"),
                r("max_us")
            );
        }
        // Baselines ran once per group (same load), whatever protocol ours spoke.
        let group = ours["group"].as_str().unwrap_or(sc);
        for base in ["raw-floor", "nchan"] {
            let Some(b) = records
                .iter()
                .rev()
                .find(|r| r["target"] == base && r["group"].as_str().unwrap_or(sc) == group)
            else {
                continue;
            };
            let ratio = |a: &Value, b: &Value| -> String {
                match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
                    _ => "-".into(),
                }
            };
            let _ = writeln!(
                s,
                "{sc:<14} ours/{base:<9} events per CPU-s {} ({} vs {}) · p50 {} · p99 {} · max {} · bytes/stream {}",
                ratio(&ours["cpu"]["events_per_cpu_s"], &b["cpu"]["events_per_cpu_s"]),
                thousands(f(&ours["cpu"]["events_per_cpu_s"])),
                thousands(f(&b["cpu"]["events_per_cpu_s"])),
                ratio(&ours["latency"]["p50_us"], &b["latency"]["p50_us"]),
                ratio(&ours["latency"]["p99_us"], &b["latency"]["p99_us"]),
                ratio(&ours["latency"]["max_us"], &b["latency"]["max_us"]),
                ratio(&ours["memory"]["bytes_per_stream"], &b["memory"]["bytes_per_stream"]),
            );
        }
    }
    s
}

/// Latest record per (scenario, target) from a results file.
pub fn latest(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut map: BTreeMap<(String, String), Value> = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["latency"].is_null() {
            continue;
        }
        let key = (
            v["scenario"].as_str().unwrap_or("").to_string(),
            v["target"].as_str().unwrap_or("").to_string(),
        );
        map.insert(key, v);
    }
    map.into_values().collect()
}

const COLORS: &[(&str, &str)] = &[
    ("sse-kafka", "#d62728"),
    ("raw-floor", "#2ca02c"),
    ("nchan", "#1f77b4"),
    ("broker floor", "#888888"),
];
const PCTS: &[(&str, &str)] = &[
    ("p50", "p50_us"),
    ("p90", "p90_us"),
    ("p99", "p99_us"),
    ("p99.9", "p999_us"),
    ("max", "max_us"),
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One panel per scenario: latency (ms, log scale) at p50…max, one line per target.
pub fn svg(records: &[Value]) -> String {
    let mut scenarios: Vec<String> = records
        .iter()
        .filter_map(|r| r["scenario"].as_str().map(String::from))
        .collect();
    scenarios.sort();
    scenarios.dedup();
    let (pw, ph) = (360.0, 240.0);
    let cols = 2usize.min(scenarios.len().max(1));
    let rows = scenarios.len().div_ceil(cols).max(1);
    let (w, h) = (cols as f64 * pw + 20.0, rows as f64 * ph + 60.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">End-to-end latency (produce → event parsed by the client), ms, log scale</text>"#
    );
    // Legend.
    let mut lx = 10.0;
    for (name, color) in COLORS {
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="36" x2="{}" y2="36" stroke="{color}" stroke-width="3"/><text x="{}" y="40">{name}</text>"#,
            lx + 20.0,
            lx + 24.0
        );
        lx += 110.0;
    }
    for (i, sc) in scenarios.iter().enumerate() {
        let (ox, oy) = ((i % cols) as f64 * pw + 10.0, (i / cols) as f64 * ph + 50.0);
        let (x0, y0, x1, y1) = (ox + 50.0, oy + 30.0, ox + pw - 20.0, oy + ph - 30.0);
        let rs: Vec<&Value> = records
            .iter()
            .filter(|r| r["scenario"] == sc.as_str())
            .collect();
        // Each line: (target, latency object, dashed).
        let mut lines: Vec<(&str, &Value, bool)> = Vec::new();
        for r in &rs {
            lines.push((r["target"].as_str().unwrap_or(""), &r["latency"], false));
            if r["broker_floor_latency"]["p50_us"].is_number() {
                lines.push(("broker floor", &r["broker_floor_latency"], true));
            }
        }
        let vals: Vec<f64> = lines
            .iter()
            .flat_map(|(_, l, _)| PCTS.iter().filter_map(|(_, k)| l[*k].as_f64()))
            .map(|us| us / 1000.0)
            .filter(|v| *v > 0.0)
            .collect();
        let lo = vals.iter().cloned().fold(f64::MAX, f64::min).max(0.001);
        let hi = vals.iter().cloned().fold(0.0, f64::max).max(lo * 10.0);
        let (llo, lhi) = (lo.log10().floor(), hi.log10().ceil());
        let y = |v: f64| y1 - (v.max(1e-3).log10() - llo) / (lhi - llo) * (y1 - y0);
        let x = |j: usize| x0 + j as f64 * (x1 - x0) / (PCTS.len() - 1) as f64;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-weight="bold">{}</text>"#,
            ox + 50.0,
            oy + 18.0,
            esc(sc)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            x1 - x0,
            y1 - y0
        );
        let mut e = llo as i32;
        while e as f64 <= lhi {
            let v = 10f64.powi(e);
            let yy = y(v);
            let label = if v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v}")
            };
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{yy}" x2="{x1}" y2="{yy}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{label}</text>"##,
                x0 - 4.0,
                yy + 4.0
            );
            e += 1;
        }
        for (j, (label, _)) in PCTS.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">{label}</text>"#,
                x(j),
                y1 + 16.0
            );
        }
        for (target, lat, dashed) in &lines {
            let color = COLORS
                .iter()
                .find(|c| c.0 == *target)
                .map(|c| c.1)
                .unwrap_or("#777");
            let pts: Vec<String> = PCTS
                .iter()
                .enumerate()
                .filter_map(|(j, (_, k))| {
                    lat[*k]
                        .as_f64()
                        .map(|us| format!("{:.1},{:.1}", x(j), y(us / 1000.0)))
                })
                .collect();
            let dash = if *dashed {
                r#" stroke-dasharray="5,3""#
            } else {
                ""
            };
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}><title>{} {}</title></polyline>"#,
                pts.join(" "),
                esc(sc),
                target
            );
            for p in &pts {
                let (px, py) = p.split_once(',').unwrap();
                let _ = writeln!(s, r#"<circle cx="{px}" cy="{py}" r="2.5" fill="{color}"/>"#);
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

pub fn write_svg(results: &Path, svg_path: &Path) -> Result<(), String> {
    let records = latest(results);
    std::fs::write(svg_path, svg(&records)).map_err(|e| format!("{}: {e}", svg_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lat(p50: f64, p99: f64) -> Value {
        json!({"p50_us": p50, "p90_us": p50, "p99_us": p99, "p999_us": p99, "max_us": p99})
    }

    fn ours(p99: f64, floor_p99: f64) -> Value {
        let mut r = json!({
            "target": "sse-kafka", "scenario": "fanout-1000",
            "latency": lat(1_000.0, p99), "broker_floor_latency": lat(500.0, floor_p99),
        });
        r["server_added_us"] = server_added(&r);
        r
    }

    fn raw(p99: f64) -> Value {
        json!({"target": "raw-floor", "scenario": "fanout-1000", "latency": lat(100.0, p99)})
    }

    #[test]
    fn server_added_is_ours_minus_the_broker_floor_per_percentile() {
        let r = ours(700_000.0, 690_000.0);
        assert_eq!(r["server_added_us"]["p50_us"], 500.0);
        assert_eq!(r["server_added_us"]["p99_us"], 10_000.0);
        let no_floor = json!({"target": "sse-kafka", "latency": lat(1.0, 2.0)});
        assert!(server_added(&no_floor).is_null());
    }

    #[test]
    fn a_run_fell_behind_past_the_raw_floor_p99_plus_the_margin() {
        // Server adds 4,620 ms at p99; raw floor 57 ms; margin 50 ms.
        let mut g = vec![ours(5_310_000.0, 690_000.0), raw(57_000.0)];
        judge(&mut g, Some(50.0));
        assert_eq!(g[0]["verdict"]["fell_behind"], true);
        assert!(g[1]["verdict"].is_null(), "baselines are not judged");
        assert!(verdicts(&g).contains("FELL BEHIND"));
        // Adds 100 ms: within 57 + 50.
        let mut g = vec![ours(790_000.0, 690_000.0), raw(57_000.0)];
        judge(&mut g, Some(50.0));
        assert_eq!(g[0]["verdict"]["fell_behind"], false);
        assert!(verdicts(&g).contains("kept up"));
        // Adds 108 ms: just past it.
        let mut g = vec![ours(798_000.0, 690_000.0), raw(57_000.0)];
        judge(&mut g, Some(50.0));
        assert_eq!(g[0]["verdict"]["fell_behind"], true);
    }

    #[test]
    fn no_verdict_when_the_raw_floor_itself_did_not_keep_up() {
        let mut r = raw(23_000_000.0);
        r["delivery"] = json!({"integrity_ok": false});
        let mut g = vec![ours(25_000_000.0, 690_000.0), r];
        judge(&mut g, Some(50.0));
        assert!(g[0]["verdict"]["fell_behind"].is_null());
        assert!(verdicts(&g).contains("machine cannot carry"));
    }

    #[test]
    fn without_a_raw_floor_the_margin_alone_is_the_limit_and_off_only_reports() {
        let mut g = vec![ours(2_000.0 + 6_000.0, 2_000.0)];
        judge(&mut g, Some(5.0));
        assert_eq!(g[0]["verdict"]["fell_behind"], true);
        let mut g = vec![ours(9_000_000.0, 2_000.0)];
        judge(&mut g, None);
        assert!(g[0]["verdict"]["fell_behind"].is_null());
        assert!(verdicts(&g).contains("margin off"));
    }
}
