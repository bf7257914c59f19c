//! The fan-out's driver: the only place where the hub meets tasks, timers and sockets. The
//! hub (`hub`, `owner`, `view`) decides synchronously, queuing messages for other workers in
//! its outbox and `Command`s for this driver; `flush`, called once at the end of every turn
//! that touched the hub, sends the messages and carries out the commands (a metadata look-up,
//! a partition start, a backfill), whose answers come back as further inputs. The long-poll
//! fetch loop per broker and the opening of a stream (which waits for metadata) live here too.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::hub::{Command, OpenError, OpenRequest, SharedHub, ViewKey};
use super::message::{Message, PartKey, StartHint, StreamKey};
use super::owner::Started;
use super::stream_io::SharedIo;
use crate::kafka::chunk::Chunk;
use crate::kafka::client::{EARLIEST, LATEST};
use crate::kafka::error::KafkaError;
use crate::kafka::fetch::{fetch, FetchPosition, Outcome};

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Attempts to start a partition (metadata + offsets) before its subscribers are told it failed.
const START_ATTEMPTS: u32 = 20;

fn backoff_next(d: Duration) -> Duration {
    (d * 2).min(BACKOFF_MAX)
}

/// Sends everything queued in the hub's outbox: local messages are handled right here (in
/// order), remote ones go to their inbox, or to an ordered overflow drained by a task when full.
pub fn flush(hub: &SharedHub) {
    send_outbox(hub);
    loop {
        let Some(command) = hub.borrow_mut().commands.pop() else {
            return;
        };
        execute(hub, command);
        send_outbox(hub);
    }
}

fn execute(hub: &SharedHub, command: Command) {
    match command {
        Command::Resolve(vkey) => {
            monoio::spawn(resolve_view(hub.clone(), vkey));
        }
        Command::StartPartition(key) => {
            monoio::spawn(start_partition(hub.clone(), key));
        }
        Command::Backfill {
            key,
            from,
            worker,
            stream,
            leader,
        } => {
            monoio::spawn(backfill(hub.clone(), key, from, worker, stream, leader));
        }
    }
}

fn send_outbox(hub: &SharedHub) {
    loop {
        let next = hub.borrow_mut().outbox.pop_front();
        let Some((to, msg)) = next else { return };
        let me = hub.borrow().worker;
        if to == me {
            hub.borrow_mut().handle(msg);
            continue;
        }
        let mut h = hub.borrow_mut();
        if !h.overflow[to].is_empty() {
            h.overflow[to].push_back(msg);
            continue;
        }
        if let Err(msg) = h.mesh.try_send(to, msg) {
            h.overflow[to].push_back(msg);
            if !h.overflow_draining[to] {
                h.overflow_draining[to] = true;
                drop(h);
                let hub = hub.clone();
                monoio::spawn(drain_overflow(hub, to));
            }
        }
    }
}

async fn drain_overflow(hub: SharedHub, to: usize) {
    loop {
        let (mesh, msg) = {
            let mut h = hub.borrow_mut();
            match h.overflow[to].pop_front() {
                Some(m) => (h.mesh.clone(), m),
                None => {
                    h.overflow_draining[to] = false;
                    if h.overflow.iter().all(VecDeque::is_empty) {
                        if let Some(clear) = h.overflow_clear.take() {
                            clear.set(());
                        }
                    }
                    return;
                }
            }
        };
        mesh.send(to, msg).await;
    }
}

/// Opens a stream: waits for the topic's metadata (404 / 503 after the metadata timeout), then
/// registers the stream; it starts delivering once every partition is subscribed.
pub async fn open_stream(
    hub: &SharedHub,
    mut req: OpenRequest,
) -> Result<(StreamKey, SharedIo), OpenError> {
    if let super::view::Start::Since(ms) = req.start {
        let ids = super::since::offsets_for_time(hub, &req, ms).await?;
        req.start = super::view::Start::Ids(ids);
    }
    let opening = hub.borrow_mut().begin_open(&req);
    flush(hub);
    let opening = opening?;
    opening.meta.wait().await?;
    let opened = hub.borrow_mut().finish_open(&opening, &req);
    flush(hub);
    opened
}

/// How often a request for a topic Kafka does not know asks again, until the metadata timeout:
/// one Metadata request per name per interval, shared by every request for that name.
const METADATA_RETRY: Duration = Duration::from_secs(1);

async fn resolve_view(hub: SharedHub, vkey: ViewKey) {
    let (client, timeout) = {
        let h = hub.borrow();
        (h.clusters[vkey.0].clone(), h.settings.metadata_timeout)
    };
    let deadline = std::time::Instant::now() + timeout;
    let mut last = OpenError::Unavailable;
    loop {
        match monoio::time::timeout_at(deadline.into(), client.metadata(&vkey.1)).await {
            Ok(Ok(meta)) => {
                hub.borrow_mut().on_metadata(&vkey, &meta);
                flush(&hub);
                return;
            }
            Ok(Err(KafkaError::UnknownTopic)) => last = OpenError::NotFound,
            // Refused credentials or certificate: answer 503 now rather than at the timeout.
            Ok(Err(e)) if e.is_security() => {
                crate::debug!("metadata for {}: {e}", vkey.1);
                last = OpenError::Unavailable;
                break;
            }
            Ok(Err(e)) => {
                crate::debug!("metadata for {}: {e}", vkey.1);
                last = OpenError::Unavailable;
            }
            Err(_) => break,
        }
        let pause = METADATA_RETRY;
        if std::time::Instant::now() + pause >= deadline {
            break;
        }
        monoio::time::sleep(pause).await;
    }
    hub.borrow_mut().on_unresolved(&vkey, last);
    flush(&hub);
}

fn ensure_fetch_loop(hub: &SharedHub, cluster: usize, leader: i32) {
    if leader < 0 {
        return;
    }
    let mut h = hub.borrow_mut();
    if h.fetch_loops.insert((cluster, leader), ()).is_none() {
        drop(h);
        monoio::spawn(broker_fetch_loop(hub.clone(), cluster, leader));
    }
}

/// `cache_server.bootstrap`: this worker starts fetching the partitions of `topic` it owns, so
/// the first client finds a warm cache. Retries until the topic's metadata is known.
pub async fn bootstrap_topic(hub: SharedHub, cluster: usize, topic: String, hint: StartHint) {
    let client = hub.borrow().clusters[cluster].clone();
    let mut backoff = BACKOFF_MIN;
    let meta = loop {
        match client.metadata(&topic).await {
            Ok(meta) => break meta,
            Err(e) => {
                if backoff == BACKOFF_MAX {
                    crate::warn!("bootstrap topic {topic}: {e}; retrying");
                }
            }
        }
        if hub.borrow().shutting_down {
            return;
        }
        monoio::time::sleep(backoff).await;
        backoff = backoff_next(backoff);
    };
    let mut h = hub.borrow_mut();
    let topic = h.intern(&topic);
    let (me, workers) = (h.worker, h.workers());
    for p in &meta.partitions {
        let key = PartKey {
            cluster,
            topic: topic.clone(),
            partition: p.partition,
        };
        if key.owner(workers) == me {
            h.pin(key, hint);
        }
    }
    h.pin_view(cluster, topic, hint, &meta);
    drop(h);
    flush(&hub);
}

/// Finds the leader and the earliest/latest offsets, then activates the partition.
async fn start_partition(hub: SharedHub, key: PartKey) {
    let client = hub.borrow().clusters[key.cluster].clone();
    let mut backoff = BACKOFF_MIN;
    let mut last = String::new();
    for _ in 0..START_ATTEMPTS {
        match start_once(&client, &key).await {
            Ok(started) => {
                let leader = started.leader;
                hub.borrow_mut().activate(&key, started);
                ensure_fetch_loop(&hub, key.cluster, leader);
                flush(&hub);
                return;
            }
            Err(e) => {
                crate::debug!("start {}/{}: {e}", key.topic, key.partition);
                last = e.to_string();
            }
        }
        if hub.borrow().shutting_down {
            return;
        }
        monoio::time::sleep(backoff).await;
        backoff = backoff_next(backoff);
    }
    hub.borrow_mut().fail_start(&key, last);
    flush(&hub);
}

async fn start_once(
    client: &crate::kafka::client::ClusterClient,
    key: &PartKey,
) -> Result<Started, KafkaError> {
    let meta = client.metadata(&key.topic).await?;
    let leader = meta
        .partitions
        .iter()
        .find(|p| p.partition == key.partition)
        .map(|p| p.leader)
        .ok_or(KafkaError::UnknownTopic)?;
    if leader < 0 {
        return Err(KafkaError::Code(5));
    }
    let earliest = client
        .list_offset(leader, &key.topic, key.partition, EARLIEST)
        .await?;
    let latest = client
        .list_offset(leader, &key.topic, key.partition, LATEST)
        .await?;
    let compacted = client.is_compacted(&key.topic).await.unwrap_or_else(|e| {
        crate::warn!(
            "topic {}: cannot read cleanup.policy ({e}); not compacted",
            key.topic
        );
        false
    });
    crate::debug!(
        "topic {} partition {}: leader {leader}, offsets {earliest}..{latest}, compacted {compacted}",
        key.topic,
        key.partition
    );
    Ok(Started {
        leader,
        earliest,
        latest,
        compacted,
    })
}

/// Re-reads leaders for the topics of `keys`; partitions that moved get a loop on their new
/// leader. Errors are left for the next attempt.
async fn refresh_leaders(hub: &SharedHub, cluster: usize, keys: &[PartKey]) {
    let client = hub.borrow().clusters[cluster].clone();
    let mut topics: Vec<Arc<str>> = keys.iter().map(|k| k.topic.clone()).collect();
    topics.sort();
    topics.dedup();
    for topic in topics {
        let Ok(meta) = client.metadata(&topic).await else {
            continue;
        };
        for k in keys.iter().filter(|k| k.topic == topic) {
            let Some(p) = meta.partitions.iter().find(|p| p.partition == k.partition) else {
                continue;
            };
            if hub.borrow_mut().set_leader(k, p.leader) {
                crate::info!(
                    "topic {} partition {}: leader is now broker {}",
                    k.topic,
                    k.partition,
                    p.leader
                );
                ensure_fetch_loop(hub, cluster, p.leader);
            }
        }
    }
}

/// The shared long-poll fetch for every owned partition led by `leader`.
async fn broker_fetch_loop(hub: SharedHub, cluster: usize, leader: i32) {
    let client = hub.borrow().clusters[cluster].clone();
    let mut conn = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        let wanted = {
            let h = hub.borrow();
            if h.shutting_down {
                Vec::new()
            } else {
                h.fetch_positions(cluster, leader)
            }
        };
        if wanted.is_empty() {
            hub.borrow_mut().fetch_loops.remove(&(cluster, leader));
            return;
        }
        let keys: Vec<PartKey> = wanted.iter().map(|(k, _)| k.clone()).collect();
        let positions: Vec<FetchPosition> = wanted.into_iter().map(|(_, p)| p).collect();
        if conn.is_none() {
            match client.connect_node(leader).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    if e.is_security() {
                        // Logged once by the client.
                        crate::debug!("kafka broker {leader}: {e}; retrying in {backoff:?}");
                    } else {
                        crate::warn!("kafka broker {leader}: {e}; retrying in {backoff:?}");
                    }
                    monoio::time::sleep(backoff).await;
                    backoff = backoff_next(backoff);
                    refresh_leaders(&hub, cluster, &keys).await;
                    continue;
                }
            }
        }
        // A full inbox downstream: wait until it takes what the last fetch produced.
        let backpressure = hub.borrow_mut().backpressure();
        if let Some(clear) = backpressure {
            metrics_backpressure(&hub);
            clear.wait().await;
            continue;
        }
        let Some(c) = conn.as_mut() else { continue };
        if c.reauth_due() {
            // KIP-368: the broker's session is about to expire. Some brokers (tansu 0.6) refuse
            // a second handshake on one connection: a new connection then authenticates anew.
            if let Err(e) = c
                .reauthenticate(crate::kafka::client::REQUEST_TIMEOUT)
                .await
            {
                crate::debug!("kafka broker {leader}: re-authentication: {e}; reconnecting");
                conn = None;
                continue;
            }
            crate::debug!("kafka broker {leader}: re-authenticated");
        }
        let version = client.versions().map_or(4, |v| v.fetch);
        let metrics = hub.borrow().metrics.clone();
        metrics.fetch_requests.inc();
        let max_wait = hub.borrow().settings.fetch_max_wait;
        match fetch(c, version, &positions, max_wait).await {
            Ok(outcomes) => {
                backoff = BACKOFF_MIN;
                let mut moved = Vec::new();
                for ((key, pos), outcome) in keys.iter().zip(&positions).zip(outcomes) {
                    match outcome {
                        Outcome::Records(chunk) => {
                            if chunk.next_offset > pos.offset || !chunk.records().is_empty() {
                                // Topic models (src/models): converted once here, for all.
                                let converted =
                                    crate::models::convert(cluster, &key.topic, chunk, &metrics);
                                if let Some(chunk) = converted.await {
                                    hub.borrow_mut().publish(key, chunk);
                                }
                            }
                        }
                        Outcome::OutOfRange => {
                            out_of_range(&hub, &client, key, pos.offset, leader).await;
                        }
                        Outcome::Error(e) => {
                            metrics.fetch_errors.inc();
                            if e.needs_metadata() {
                                moved.push(key.clone());
                            } else {
                                crate::warn!(
                                    "topic {} partition {}: fetch: {e}",
                                    key.topic,
                                    key.partition
                                );
                            }
                        }
                    }
                }
                flush(&hub);
                if !moved.is_empty() {
                    monoio::time::sleep(backoff).await;
                    backoff = backoff_next(backoff);
                    refresh_leaders(&hub, cluster, &moved).await;
                }
            }
            Err(e) => {
                metrics.fetch_errors.inc();
                crate::warn!(
                    "kafka broker {leader}: fetch failed: {e}; reconnecting in {backoff:?}"
                );
                conn = None;
                monoio::time::sleep(backoff).await;
                backoff = backoff_next(backoff);
                refresh_leaders(&hub, cluster, &keys).await;
            }
        }
    }
}

fn metrics_backpressure(hub: &SharedHub) {
    hub.borrow().metrics.fetch_paused.inc();
}

/// OFFSET_OUT_OF_RANGE: the position fell below retention; move to the earliest record.
async fn out_of_range(
    hub: &SharedHub,
    client: &crate::kafka::client::ClusterClient,
    key: &PartKey,
    pos: i64,
    leader: i32,
) {
    match client
        .list_offset(leader, &key.topic, key.partition, EARLIEST)
        .await
    {
        Ok(earliest) if earliest > pos => {
            crate::warn!(
                "topic {} partition {}: offset {pos} no longer retained; continuing at {earliest}",
                key.topic,
                key.partition
            );
            hub.borrow_mut()
                .publish(key, Chunk::jump(key.partition, pos, earliest, earliest));
        }
        Ok(earliest) => {
            crate::warn!(
                "topic {} partition {}: offset {pos} out of range (earliest {earliest})",
                key.topic,
                key.partition
            );
        }
        Err(e) => crate::warn!(
            "topic {} partition {}: list offsets: {e}",
            key.topic,
            key.partition
        ),
    }
}

/// One-shot read of `from` for a stream older than the cache.
async fn backfill(
    hub: SharedHub,
    key: PartKey,
    from: i64,
    worker: usize,
    stream: StreamKey,
    leader: i32,
) {
    let client = hub.borrow().clusters[key.cluster].clone();
    let mut backoff = BACKOFF_MIN;
    let chunk = loop {
        if hub.borrow().shutting_down {
            return;
        }
        let leader = hub.borrow().leader_of(&key).unwrap_or(leader);
        let attempt = async {
            let mut conn = client.connect_node(leader).await?;
            let version = client.versions().map_or(4, |v| v.fetch);
            let pos = FetchPosition {
                topic: key.topic.clone(),
                partition: key.partition,
                offset: from,
            };
            let out = fetch(
                &mut conn,
                version,
                std::slice::from_ref(&pos),
                Duration::ZERO,
            )
            .await?;
            client.checkin(conn);
            Ok::<_, KafkaError>(out)
        };
        match attempt.await {
            Ok(mut out) => match out.pop() {
                // Past the log end: some brokers (tansu 0.6) answer an empty fetch with the high
                // watermark instead of OFFSET_OUT_OF_RANGE.
                Some(Outcome::Records(chunk))
                    if chunk.records().is_empty()
                        && chunk.high_watermark >= 0
                        && chunk.high_watermark < from =>
                {
                    match client
                        .list_offset(leader, &key.topic, key.partition, EARLIEST)
                        .await
                    {
                        Ok(earliest) => break Chunk::reset(key.partition, from, earliest),
                        Err(e) => crate::debug!("backfill {}/{}: {e}", key.topic, key.partition),
                    }
                }
                Some(Outcome::Records(chunk)) => {
                    let metrics = hub.borrow().metrics.clone();
                    let converted =
                        crate::models::convert(key.cluster, &key.topic, chunk, &metrics);
                    if let Some(chunk) = converted.await {
                        break chunk;
                    }
                }
                Some(Outcome::OutOfRange) => {
                    match client
                        .list_offset(leader, &key.topic, key.partition, EARLIEST)
                        .await
                    {
                        Ok(earliest) if earliest > from => {
                            break Chunk::jump(key.partition, from, earliest, earliest)
                        }
                        // Not below the earliest, so `from` is past the log end.
                        Ok(earliest) => break Chunk::reset(key.partition, from, earliest),
                        Err(e) => crate::debug!("backfill {}/{}: {e}", key.topic, key.partition),
                    }
                }
                Some(Outcome::Error(e)) => {
                    crate::debug!("backfill {}/{}: {e}", key.topic, key.partition)
                }
                None => {}
            },
            Err(e) => crate::debug!("backfill {}/{}: {e}", key.topic, key.partition),
        }
        monoio::time::sleep(backoff).await;
        backoff = backoff_next(backoff);
    };
    hub.borrow_mut().send(
        worker,
        Message::BackfillData {
            key,
            stream,
            chunk: Arc::new(chunk),
        },
    );
    flush(&hub);
}
