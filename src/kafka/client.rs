//! A worker's view of one Kafka cluster: bootstrap, negotiated API versions, topic metadata and
//! a small pool of idle broker connections for short requests (metadata, offsets, one-shot
//! fetches). Long-poll fetches use their own connection (`fetch.rs`).
//!
//! Every method takes `&self` and never holds a `RefCell` borrow across an await, so any task
//! of the worker may use the client concurrently.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::conn::BrokerConn;
use super::error::{KafkaError, UNKNOWN_TOPIC_OR_PARTITION};
use super::security::Security;
use crate::metrics::WorkerMetrics;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per broker for short requests.
const POOL_PER_BROKER: usize = 2;
/// After a refused authentication (SASL or TLS), connections are not tried again for this long,
/// doubling per failure up to `SECURITY_BACKOFF_MAX`: a wrong password must not make every new
/// stream hammer the broker.
const SECURITY_BACKOFF_MIN: Duration = Duration::from_millis(500);
const SECURITY_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// ListOffsets timestamps.
pub const EARLIEST: i64 = -2;
pub const LATEST: i64 = -1;

/// API versions we speak, clamped to what the cluster offers.
#[derive(Debug, Clone, Copy)]
pub struct Versions {
    pub metadata: i16,
    pub fetch: i16,
    pub list_offsets: i16,
    /// `None` when the cluster does not offer DescribeConfigs (topics are then taken as not
    /// compacted).
    pub describe_configs: Option<i16>,
}

/// The range of each API we implement. Fetch stops at 11: v12+ responses carry tagged fields
/// that some brokers (tansu 0.6) fill in ways kafka-protocol 0.18 refuses, and v13+ names topics
/// by id only; v11 has everything we need (isolation level, aborted transactions).
const METADATA: (i16, i16) = (1, 12);
const FETCH: (i16, i16) = (4, 11);
const LIST_OFFSETS: (i16, i16) = (2, 7);
const DESCRIBE_CONFIGS: (i16, i16) = (1, 3);

#[derive(Debug, Clone)]
pub struct PartitionMeta {
    pub partition: i32,
    /// -1 while the partition has no leader.
    pub leader: i32,
}

#[derive(Debug, Clone)]
pub struct TopicMeta {
    /// Sorted by partition id.
    pub partitions: Vec<PartitionMeta>,
}

pub struct ClusterClient {
    pub name: String,
    bootstrap: Vec<String>,
    versions: RefCell<Option<Versions>>,
    brokers: RefCell<HashMap<i32, String>>,
    idle: RefCell<HashMap<String, Vec<BrokerConn>>>,
    security: Arc<Security>,
    metrics: Arc<WorkerMetrics>,
    /// While authentication is refused: the error, and when to try again.
    refused: RefCell<Option<(KafkaError, Instant)>>,
    security_backoff: Cell<Duration>,
}

impl ClusterClient {
    pub fn new(
        name: String,
        bootstrap: Vec<String>,
        security: Arc<Security>,
        metrics: Arc<WorkerMetrics>,
    ) -> Rc<Self> {
        Rc::new(Self {
            name,
            bootstrap,
            versions: RefCell::new(None),
            brokers: RefCell::new(HashMap::new()),
            idle: RefCell::new(HashMap::new()),
            security,
            metrics,
            refused: RefCell::new(None),
            security_backoff: Cell::new(SECURITY_BACKOFF_MIN),
        })
    }

    /// The error authentication was last refused with, while retries are held back.
    pub fn refused(&self) -> Option<KafkaError> {
        let refused = self.refused.borrow();
        let (e, until) = refused.as_ref()?;
        (Instant::now() < *until).then(|| e.clone())
    }

    /// A new connection: TCP, TLS, versions (first contact), SASL.
    async fn open(&self, addr: &str) -> Result<BrokerConn, KafkaError> {
        if let Some(e) = self.refused() {
            return Err(e);
        }
        let result: Result<BrokerConn, KafkaError> = async {
            let mut conn = BrokerConn::connect(addr, CONNECT_TIMEOUT, &self.security).await?;
            if self.versions().is_none() {
                let v = negotiate(&mut conn).await?;
                *self.versions.borrow_mut() = Some(v);
            }
            if let Some(plan) = &self.security.sasl {
                conn.authenticate(plan, REQUEST_TIMEOUT).await?;
            }
            Ok(conn)
        }
        .await;
        match &result {
            Err(e) if e.is_security() => {
                match e {
                    KafkaError::Auth { .. } => self.metrics.sasl_failures.inc(),
                    _ => self.metrics.tls_failures.inc(),
                }
                let backoff = self.security_backoff.get();
                self.security_backoff
                    .set((backoff * 2).min(SECURITY_BACKOFF_MAX));
                *self.refused.borrow_mut() = Some((e.clone(), Instant::now() + backoff));
                if self.security.failed() {
                    crate::error!(
                        "kafka client bindings.{} ({addr}): {e}; new streams get 503, retrying \
                         with backoff up to {}s",
                        self.security.binding,
                        SECURITY_BACKOFF_MAX.as_secs()
                    );
                } else {
                    crate::debug!(
                        "kafka client bindings.{} ({addr}): {e}",
                        self.security.binding
                    );
                }
            }
            Ok(_) => {
                if self.refused.borrow().is_some() {
                    *self.refused.borrow_mut() = None;
                    self.security_backoff.set(SECURITY_BACKOFF_MIN);
                }
                if self.security.succeeded() {
                    crate::info!(
                        "kafka client bindings.{} ({addr}): connected and authenticated again",
                        self.security.binding
                    );
                }
            }
            Err(_) => {}
        }
        result
    }

    pub fn versions(&self) -> Option<Versions> {
        *self.versions.borrow()
    }

    pub fn broker_addr(&self, node: i32) -> Option<String> {
        self.brokers.borrow().get(&node).cloned()
    }

    /// A connection to `addr`, from the pool or new; negotiates versions on first contact.
    pub async fn checkout(&self, addr: &str) -> Result<BrokerConn, KafkaError> {
        loop {
            let pooled = self.idle.borrow_mut().get_mut(addr).and_then(|v| v.pop());
            match pooled {
                // A pooled connection whose SASL session is about to expire is replaced
                // rather than re-authenticated (short requests need no long-lived session).
                Some(conn) if conn.reauth_due() => continue,
                Some(conn) => return Ok(conn),
                None => break,
            }
        }
        self.open(addr).await
    }

    /// Returns a healthy connection to the pool.
    pub fn checkin(&self, conn: BrokerConn) {
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(conn.addr.clone()).or_default();
        if list.len() < POOL_PER_BROKER {
            list.push(conn);
        }
    }

    /// Opens a dedicated (unpooled) connection to a broker node.
    pub async fn connect_node(&self, node: i32) -> Result<BrokerConn, KafkaError> {
        let addr = self
            .broker_addr(node)
            .ok_or(KafkaError::UnknownBroker(node))?;
        self.checkout(&addr).await
    }

    /// Metadata for one topic from any reachable broker (bootstrap servers first, then known
    /// brokers). Also refreshes the broker address table.
    pub async fn metadata(&self, topic: &str) -> Result<TopicMeta, KafkaError> {
        let mut candidates: Vec<String> = self.bootstrap.clone();
        candidates.extend(self.brokers.borrow().values().cloned());
        let mut last = KafkaError::NoBroker;
        for addr in candidates {
            match self.metadata_from(&addr, topic).await {
                Ok(meta) => return Ok(meta),
                Err(e @ KafkaError::UnknownTopic) => return Err(e),
                // Every broker of the cluster takes the same credentials and certificate.
                Err(e) if e.is_security() => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn metadata_from(&self, addr: &str, topic: &str) -> Result<TopicMeta, KafkaError> {
        let mut conn = self.checkout(addr).await?;
        let version = self.versions().map_or(METADATA.0, |v| v.metadata);
        let mut req =
            MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(topic.to_owned()))))]));
        if version >= 4 {
            req = req.with_allow_auto_topic_creation(false);
        }
        let resp = conn.send(&req, version, REQUEST_TIMEOUT).await?;
        self.checkin(conn);
        {
            let mut brokers = self.brokers.borrow_mut();
            for b in &resp.brokers {
                brokers.insert(b.node_id.0, format!("{}:{}", b.host.as_str(), b.port));
            }
        }
        let t = resp
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
            .ok_or(KafkaError::UnknownTopic)?;
        match t.error_code {
            0 => {}
            UNKNOWN_TOPIC_OR_PARTITION => return Err(KafkaError::UnknownTopic),
            code => return Err(KafkaError::Code(code)),
        }
        if t.partitions.is_empty() {
            return Err(KafkaError::UnknownTopic);
        }
        let mut partitions: Vec<PartitionMeta> = t
            .partitions
            .iter()
            .map(|p| PartitionMeta {
                partition: p.partition_index,
                leader: if p.error_code == 0 || p.leader_id.0 >= 0 {
                    p.leader_id.0
                } else {
                    -1
                },
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        Ok(TopicMeta { partitions })
    }

    /// ListOffsets for one partition at `timestamp` (`EARLIEST` or `LATEST`), READ_COMMITTED.
    pub async fn list_offset(
        &self,
        leader: i32,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<i64, KafkaError> {
        let addr = self
            .broker_addr(leader)
            .ok_or(KafkaError::UnknownBroker(leader))?;
        let mut conn = self.checkout(&addr).await?;
        let version = self.versions().map_or(LIST_OFFSETS.0, |v| v.list_offsets);
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(1)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(timestamp)])]);
        let resp = conn.send(&req, version, REQUEST_TIMEOUT).await?;
        self.checkin(conn);
        let p = resp
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or(KafkaError::Code(-1))?;
        if p.error_code != 0 {
            return Err(KafkaError::Code(p.error_code));
        }
        Ok(p.offset)
    }
}

impl ClusterClient {
    /// Health probe: a Metadata request without topics, answered by any reachable broker.
    pub async fn probe(&self) -> Result<(), KafkaError> {
        let mut candidates: Vec<String> = self.bootstrap.clone();
        candidates.extend(self.brokers.borrow().values().cloned());
        let mut last = KafkaError::NoBroker;
        for addr in candidates {
            let mut conn = match self.checkout(&addr).await {
                Ok(c) => c,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let version = self.versions().map_or(METADATA.0, |v| v.metadata);
            let req = MetadataRequest::default().with_topics(Some(Vec::new()));
            match conn.send(&req, version, REQUEST_TIMEOUT).await {
                Ok(_) => {
                    self.checkin(conn);
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl ClusterClient {
    /// Whether the topic's `cleanup.policy` contains `compact` (reference section 4).
    pub async fn is_compacted(&self, topic: &str) -> Result<bool, KafkaError> {
        let addrs: Vec<String> = {
            let mut a = self.bootstrap.clone();
            a.extend(self.brokers.borrow().values().cloned());
            a
        };
        let mut last = KafkaError::NoBroker;
        for addr in addrs {
            let mut conn = match self.checkout(&addr).await {
                Ok(c) => c,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let Some(version) = self.versions().and_then(|v| v.describe_configs) else {
                self.checkin(conn);
                return Ok(false);
            };
            let req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_string(topic.to_owned()))
                    // All configs (null keys): tansu 0.6 cannot decode a key list.
                    .with_configuration_keys(None),
            ]);
            let resp = conn.send(&req, version, REQUEST_TIMEOUT).await?;
            self.checkin(conn);
            let Some(result) = resp.results.first() else {
                return Ok(false);
            };
            if result.error_code != 0 {
                return Err(KafkaError::Code(result.error_code));
            }
            return Ok(result.configs.iter().any(|c| {
                c.name.as_str() == "cleanup.policy"
                    && c.value
                        .as_ref()
                        .is_some_and(|v| v.as_str().split(',').any(|p| p.trim() == "compact"))
            }));
        }
        Err(last)
    }
}

async fn negotiate(conn: &mut BrokerConn) -> Result<Versions, KafkaError> {
    let resp = conn
        .send(&ApiVersionsRequest::default(), 0, REQUEST_TIMEOUT)
        .await?;
    if resp.error_code != 0 {
        return Err(KafkaError::Code(resp.error_code));
    }
    let pick = |key: ApiKey, (lo, hi): (i16, i16)| -> Result<i16, KafkaError> {
        let offered = resp
            .api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .ok_or(KafkaError::Unsupported(key as i16))?;
        let v = hi.min(offered.max_version);
        if v < lo || v < offered.min_version {
            return Err(KafkaError::Unsupported(key as i16));
        }
        Ok(v)
    };
    Ok(Versions {
        metadata: pick(ApiKey::Metadata, METADATA)?,
        fetch: pick(ApiKey::Fetch, FETCH)?,
        list_offsets: pick(ApiKey::ListOffsets, LIST_OFFSETS)?,
        describe_configs: pick(ApiKey::DescribeConfigs, DESCRIBE_CONFIGS).ok(),
    })
}

impl From<io::Error> for KafkaError {
    fn from(e: io::Error) -> Self {
        KafkaError::Io(e.to_string())
    }
}
