//! Layered configuration: built-in defaults, then an optional TOML file, then `ZHIDA_*`
//! environment variables (`__` separates sections: `ZHIDA_KAFKA__BROKERS=host:9092`;
//! `ZHIDA_SHUTDOWN_GRACE=30s` for the one top-level key).
//! [`Config::validate`] runs at start so a bad value stops the process with a clear message.

use std::{path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The whole configuration of a Zhida process; each service reads the sections it needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub grpc: GrpcConfig,
    pub kafka: KafkaConfig,
    pub store: StoreConfig,
    pub smtp: SmtpConfig,
    pub digest: DigestConfig,
    pub telemetry: TelemetryConfig,
    /// How long in-flight work may take to drain after SIGTERM before the process exits anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grpc: GrpcConfig::default(),
            kafka: KafkaConfig::default(),
            store: StoreConfig::default(),
            smtp: SmtpConfig::default(),
            digest: DigestConfig::default(),
            telemetry: TelemetryConfig::default(),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// When the notifier sends daily digests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigestConfig {
    /// Time of day in the district (UTC+8), `HH:MM`, of the first digest run of a day.
    pub send_at: String,
    /// Time between digest runs: `24h` for a daily digest (shorter in tests).
    #[serde(with = "humantime_serde")]
    pub period: Duration,
}

impl Default for DigestConfig {
    fn default() -> Self {
        Self {
            send_at: "08:00".into(),
            period: Duration::from_secs(24 * 3600),
        }
    }
}

impl DigestConfig {
    /// Seconds after midnight of `send_at`, if it is a valid `HH:MM`.
    pub fn send_at_seconds(&self) -> Option<u64> {
        let (h, m) = self.send_at.split_once(':')?;
        let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && self.send_at.len() == 5).then_some(h * 3600 + m * 60)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Address the gRPC server listens on; port 0 picks a free one.
    pub listen: String,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:50051".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// Prepended to every topic name, to run several environments (or tests) on one cluster.
    pub topic_prefix: String,
    /// Prepended to every consumer group id, for the same reason.
    pub group_prefix: String,
    /// Create missing topics at start.
    pub create_topics: bool,
    /// Partitions for topics created at start.
    pub partitions: i32,
    pub replication_factor: i32,
    /// How long a produce may wait for the broker's acknowledgement (librdkafka retries within it).
    #[serde(with = "humantime_serde")]
    pub produce_timeout: Duration,
    /// Upper bound of the backoff between retries of a transiently failing event.
    #[serde(with = "humantime_serde")]
    pub max_retry_backoff: Duration,
    /// Send every record in its own batch. Needed with tansu 0.6: a consumer whose committed
    /// offset falls inside a multi-record batch receives nothing more from that partition
    /// (seen in `a_notifier_killed_mid_batch_…`). Set false on Apache Kafka for throughput.
    pub one_record_per_batch: bool,
    /// A consumer left without partitions this long leaves and rejoins its group (works
    /// around a tansu 0.6 rebalance that strands partitions after a member died). `0s`
    /// disables it; do so on Apache Kafka when running more replicas than partitions.
    #[serde(with = "humantime_serde")]
    pub rejoin_unassigned_after: Duration,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: String::new(),
            group_prefix: String::new(),
            create_topics: true,
            partitions: 3,
            replication_factor: 1,
            produce_timeout: Duration::from_secs(30),
            max_retry_backoff: Duration::from_secs(10),
            one_record_per_batch: true,
            rejoin_unassigned_after: Duration::from_secs(15),
        }
    }
}

/// Where serving state (dedup ledger, feeds) lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Redis: for deployments with more than one replica.
    Redis,
    /// Process memory: the embedded default; lost on exit.
    Memory,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    pub redis_url: String,
    /// Prepended to every Redis key.
    pub key_prefix: String,
    /// How long a notifier may hold a delivery before another replica may retry it.
    #[serde(with = "humantime_serde")]
    pub delivery_lease: Duration,
    /// How long a finished delivery is remembered for deduplication.
    #[serde(with = "humantime_serde")]
    pub dedup_ttl: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Redis,
            redis_url: "redis://127.0.0.1:6379".into(),
            key_prefix: "zhida:".into(),
            delivery_lease: Duration::from_secs(30),
            dedup_ttl: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// How the notifier hands over email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpMode {
    /// A real SMTP server.
    Smtp,
    /// `.eml` files in `file_dir` (the embedded default).
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub mode: SmtpMode,
    pub host: String,
    pub port: u16,
    /// SMTP AUTH credentials, if the relay requires them.
    pub username: Option<String>,
    #[serde(skip_serializing)]
    pub password: Option<SecretString>,
    /// The From: of every notice.
    pub from: String,
    pub file_dir: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            mode: SmtpMode::Smtp,
            host: "127.0.0.1".into(),
            port: 25,
            username: None,
            password: None,
            from: "杨浦区政策直达 <zhida@yangpu.example.gov.cn>".into(),
            file_dir: "mail-out".into(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Logs and traces. The two are filtered independently (see [`crate::telemetry`]):
/// `log_filter` decides what is logged, never which spans exist. Tracing always takes every
/// `INFO`+ span of Zhida's own crates and every `WARN`+ event, so each record on the bus
/// carries a `traceparent` and one trace follows a policy to each delivery, even with
/// `log_filter = "error"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `tracing` filter directives for the logs, e.g. `info,zhida_bus=debug`. It does not
    /// affect tracing: raising it to `warn` or `error` keeps trace context flowing.
    pub log_filter: String,
    /// Log as JSON lines (for collectors) instead of human-readable text.
    pub log_json: bool,
    /// OTLP/gRPC endpoint (e.g. `http://otel-collector:4317`); traces are exported only when set.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_filter: "info".into(),
            log_json: false,
            otlp_endpoint: None,
        }
    }
}

/// A configuration value that cannot work, with the key that holds it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Config {
    /// Defaults, then `file` if given, then `ZHIDA_*` variables from `env`, validated.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment
            .merge(
                // Only `SECTION__KEY` variables (and the one top-level key) are config:
                // scripts and tests use other `ZHIDA_*` names (ZHIDA_CACHE, ZHIDA_TEST_KAFKA, …).
                Env::prefixed("ZHIDA_")
                    .filter(|key| key.as_str().contains("__") || key == "shutdown_grace")
                    .split("__"),
            )
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: non-empty addresses, sane numbers.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.to_string(),
            })
        };
        if self.grpc.listen.parse::<std::net::SocketAddr>().is_err() {
            return invalid("grpc.listen", "must be an ip:port such as 0.0.0.0:50051");
        }
        if self.kafka.brokers.trim().is_empty() {
            return invalid("kafka.brokers", "must name at least one host:port");
        }
        if !(1..=1000).contains(&self.kafka.partitions) {
            return invalid("kafka.partitions", "must be between 1 and 1000");
        }
        if self.kafka.replication_factor < 1 {
            return invalid("kafka.replication_factor", "must be at least 1");
        }
        if self.kafka.produce_timeout < Duration::from_millis(100) {
            return invalid("kafka.produce_timeout", "must be at least 100ms");
        }
        if self.store.backend == StoreBackend::Redis && !self.store.redis_url.starts_with("redis") {
            return invalid("store.redis_url", "must be a redis:// or rediss:// URL");
        }
        if self.store.delivery_lease < Duration::from_secs(1) {
            return invalid("store.delivery_lease", "must be at least 1s");
        }
        if self.smtp.mode == SmtpMode::Smtp && self.smtp.host.trim().is_empty() {
            return invalid("smtp.host", "must be set when smtp.mode = \"smtp\"");
        }
        if self.digest.send_at_seconds().is_none() {
            return invalid("digest.send_at", "must be a time of day HH:MM, e.g. 08:00");
        }
        if self.digest.period < Duration::from_secs(1) {
            return invalid("digest.period", "must be at least 1s");
        }
        if !self.smtp.from.contains('@') {
            return invalid("smtp.from", "must be a mailbox such as Name <a@b.cn>");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_override_defaults_and_bad_values_name_their_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zhida.toml");
        std::fs::write(&path, "[kafka]\nbrokers = \"k1:9092\"\npartitions = 0\n").expect("write");
        let err = Config::load(Some(&path)).expect_err("partitions = 0 must be rejected");
        assert!(err.to_string().contains("kafka.partitions"), "{err}");

        std::fs::write(
            &path,
            "shutdown_grace = \"5s\"\n[kafka]\nbrokers = \"k1:9092\"\n",
        )
        .expect("write");
        let config = Config::load(Some(&path)).expect("valid");
        assert_eq!(config.kafka.brokers, "k1:9092");
        assert_eq!(config.shutdown_grace, Duration::from_secs(5));
        assert_eq!(
            config.kafka.partitions, 3,
            "defaults fill what the file leaves out"
        );
    }

    #[test]
    fn unknown_keys_are_rejected_rather_than_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zhida.toml");
        std::fs::write(&path, "[kafka]\nbroker = \"typo:9092\"\n").expect("write");
        let err = Config::load(Some(&path)).expect_err("typo must be rejected");
        assert!(err.to_string().contains("broker"), "{err}");
    }
}
