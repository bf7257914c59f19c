//! READ_COMMITTED filtering of one partition's fetched batches, as Kafka's consumer does it.

use super::batch::BatchHeader;
use super::record::ControlType;

/// Decides which batches of one partition's Fetch response must not reach clients under
/// READ_COMMITTED: control batches, and transactional batches of aborted transactions.
///
/// # Usage, per partition of each Fetch response (isolation level 1)
///
/// 1. `rc.reset(aborted)` with the partition's `aborted_transactions` as
///    `(producer_id, first_offset)` pairs, in any order (`ReadCommitted::new()` once, then
///    `reset` per response reuses the two internal vectors: no allocation once they have grown;
///    none at all per record). A null/empty list is an empty iterator. State never carries over
///    from one response to the next: the broker repeats every aborted transaction that
///    overlaps the fetched range.
/// 2. For every batch of that partition's records, in offset order (the order of
///    [`Batches`](super::Batches)), call `rc.skip(&batch.header)` before looking at its
///    records. `true`: deliver none of its records.
/// 3. When the batch was a control batch (`header.is_control()`; `skip` returned `true`), read
///    its first record (decompress first if it is compressed), and call
///    `rc.on_control(header.producer_id, t)` with `t = control_type(record.key)`, when that is
///    `Some`. An `Abort` marker ends that producer's aborted range, so its later transactional
///    batches are delivered again; `Commit` and `Unknown` change nothing. A control batch whose
///    record cannot be read leaves the producer's range open until the end of this response
///    (the safe side: possibly aborted data is held back, never leaked).
///
/// A transactional batch is held back when its producer is inside an aborted range: some
/// aborted entry of that producer has `first_offset <= header.last_offset()` (entries are
/// taken in offset order as batches of idempotent/transactional producers go by, as in the
/// Java consumer) and that producer's `Abort` marker has not been seen since. Batches of
/// non-transactional producers are always delivered.
#[derive(Debug, Clone, Default)]
pub struct ReadCommitted {
    /// Aborted transactions as `(first_offset, producer_id)`, sorted.
    aborted: Vec<(i64, i64)>,
    /// Entries of `aborted` before this index have been taken into `open`.
    next: usize,
    /// Producers inside an aborted transaction, sorted, without duplicates.
    open: Vec<i64>,
}

impl ReadCommitted {
    /// An empty filter (no aborted transactions); allocates nothing until `reset`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A filter for one response's `(producer_id, first_offset)` aborted transactions.
    pub fn with_aborted<I>(aborted: I) -> Self
    where
        I: IntoIterator<Item = (i64, i64)>,
    {
        let mut rc = Self::new();
        rc.reset(aborted);
        rc
    }

    /// Starts a new partition response with its `(producer_id, first_offset)` aborted
    /// transactions, in any order; keeps the allocated capacity.
    pub fn reset<I>(&mut self, aborted: I)
    where
        I: IntoIterator<Item = (i64, i64)>,
    {
        self.aborted.clear();
        self.aborted.extend(
            aborted
                .into_iter()
                .map(|(producer_id, first_offset)| (first_offset, producer_id)),
        );
        self.aborted.sort_unstable();
        self.next = 0;
        self.open.clear();
        // `skip` then never allocates: at most one open entry per aborted transaction.
        self.open.reserve(self.aborted.len());
    }

    /// `true` when none of this batch's records may reach clients. Call for every batch, in
    /// offset order; see the type's documentation for the sequence.
    pub fn skip(&mut self, header: &BatchHeader) -> bool {
        if header.has_producer_id() {
            let last = header.last_offset();
            while let Some(&(first_offset, producer_id)) = self.aborted.get(self.next) {
                if first_offset > last {
                    break;
                }
                if let Err(at) = self.open.binary_search(&producer_id) {
                    self.open.insert(at, producer_id);
                }
                self.next += 1;
            }
            if header.is_control() {
                return true;
            }
            if header.is_transactional() && self.open.binary_search(&header.producer_id).is_ok() {
                return true;
            }
        }
        header.is_control()
    }

    /// Reports the marker type of the control batch just passed to `skip`.
    pub fn on_control(&mut self, producer_id: i64, control: ControlType) {
        if control == ControlType::Abort {
            if let Ok(at) = self.open.binary_search(&producer_id) {
                self.open.remove(at);
            }
        }
    }

    /// The producer is currently inside an aborted transaction.
    pub fn is_aborting(&self, producer_id: i64) -> bool {
        self.open.binary_search(&producer_id).is_ok()
    }
}
