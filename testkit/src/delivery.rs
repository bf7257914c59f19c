//! Assertions over delivered events: exactly once, in order per partition.
use std::collections::HashMap;

use crate::*;

/// Checks that `events` carry exactly the values of `produced` (value → where it landed), each
/// once, in per-partition offset order, and that each event's id decodes to a progress whose
/// entry for the event's own partition is offset + 1.
pub fn assert_exactly_once(events: &[Event], produced: &[(String, Delivered)]) {
    let by_value: HashMap<&str, Delivered> =
        produced.iter().map(|(v, d)| (v.as_str(), *d)).collect();
    assert_eq!(
        by_value.len(),
        produced.len(),
        "test bug: produced values must be unique"
    );
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let d = by_value.get(e.data.as_str()).unwrap_or_else(|| {
            panic!(
                "event #{i} has unexpected data {:?} (id {:?})",
                e.data, e.id
            )
        });
        *seen.entry(e.data.as_str()).or_default() += 1;
        if let Some(prev) = last_offset.insert(d.partition, d.offset) {
            assert!(
                d.offset > prev,
                "partition {} order broken at event #{i}: offset {} after {prev}",
                d.partition,
                d.offset
            );
        }
        let id =
            e.id.as_deref()
                .unwrap_or_else(|| panic!("event #{i} ({}) has no id", e.data));
        let progress =
            decode_id(id).unwrap_or_else(|| panic!("event #{i}: id {id:?} does not decode"));
        assert_eq!(
            progress.get(&d.partition),
            Some(&(d.offset + 1)),
            "event #{i} ({}) at partition {} offset {}: id {id} decodes to {progress:?}",
            e.data,
            d.partition,
            d.offset
        );
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicated events: {dups:?}");
    let missing: Vec<_> = produced
        .iter()
        .filter(|(v, _)| !seen.contains_key(v.as_str()))
        .map(|(v, _)| v)
        .collect();
    assert!(missing.is_empty(), "missing events: {missing:?}");
}

/// Produces `per_partition` records to each of `partitions` partitions, interleaved, with values
/// `{tag}-p{partition}-{i}`; returns (value, where it landed).
pub fn produce_spread(
    producer: &Producer,
    topic: &str,
    partitions: i32,
    per_partition: usize,
    tag: &str,
) -> Vec<(String, Delivered)> {
    let mut out = Vec::new();
    for i in 0..per_partition {
        for p in 0..partitions {
            let v = format!("{tag}-p{p}-{i}");
            let d = producer.send(
                topic,
                Some(p),
                Some(format!("k{i}").as_bytes()),
                Some(v.as_bytes()),
                &[],
            );
            assert_eq!(d.partition, p);
            out.push((v, d));
        }
    }
    out
}
