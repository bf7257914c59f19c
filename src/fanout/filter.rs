//! Key and header filters, resolved for one request (`${params.x}` already substituted).
//! Conditions inside one filter are ANDed; filters are ORed; no filter matches everything.
//! Streams with equal filters share one `Group`, so a filter is evaluated once per record per
//! worker however many streams use it.

use proto::kafka::Record;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Filter {
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Filter {
    fn matches(&self, record: &Record<'_>) -> bool {
        if let Some(key) = &self.key {
            if record.key != Some(key.as_slice()) {
                return false;
            }
        }
        self.headers.iter().all(|(name, value)| {
            record
                .headers
                .clone()
                .any(|(n, v)| n == name.as_slice() && v == Some(value.as_slice()))
        })
    }
}

/// Any filter matches (OR); an empty set matches every record.
pub fn matches_any(filters: &[Filter], record: &Record<'_>) -> bool {
    filters.is_empty() || filters.iter().any(|f| f.matches(record))
}
