//! Layered configuration: built-in defaults, then an optional TOML file, then `ZHIDA_*`
//! environment variables (`__` separates sections: `ZHIDA_KAFKA__BROKERS=host:9092`;
//! `ZHIDA_SHUTDOWN_GRACE=30s` for the one top-level key).
//!
//! The runtime owns the layering, the validation and the sections every service shares
//! ([`Config`]: gRPC, Kafka, store, telemetry, and `[unsubscribe]`, whose keys the notifier
//! signs with and the profiler verifies with); a component owns its own sections (the
//! notifier's `[smtp]` and `[digest]`) as [`Sections`], loaded from the same file and
//! variables by [`Config::load_with`]. Everything is validated at start, so a bad value
//! stops the process with a message naming its key, and an unknown key is an error too.

use std::{path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
    value::Dict,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
pub use zhida_unsubscribe::UnsubscribeConfig;

pub use crate::auth::AuthConfig;

/// The sections every Zhida service shares; each service reads the ones it needs. Each
/// section denies unknown keys; unknown sections are denied by [`Config::load_with`], which
/// also knows the components' own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub grpc: GrpcConfig,
    pub kafka: KafkaConfig,
    pub store: StoreConfig,
    pub telemetry: TelemetryConfig,
    /// One-click unsubscribe links: where they point, and the keys that sign (notifier)
    /// and check (profiler) their tokens. Shared so both services read the same keys.
    pub unsubscribe: UnsubscribeConfig,
    /// How callers authenticate (`[auth]`): the public keys that verify their tokens.
    pub auth: AuthConfig,
    /// How long in-flight work may take to drain after SIGTERM before the process exits anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// The publisher's review gate and the reviewer's audience preview (`[publisher]`).
    pub publisher: PublisherConfig,
    /// The relay's webhooks to associations and parks (`[relay.webhooks]`).
    pub relay: RelayConfig,
}

/// `[relay]`: how the "政府+" relay pushes to its subscribers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    pub webhooks: WebhookConfig,
}

/// `[relay.webhooks]`: Standard Webhooks deliveries to subscribers' endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// The delay before each attempt of one delivery, as durations (`"0s"`, `"5s"`, …); the
    /// default is Svix's: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. After the last
    /// attempt fails the endpoint is disabled.
    pub retry_schedule: Vec<String>,
    /// How long one attempt may take, connect to last byte.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Networks (CIDR, e.g. `"127.0.0.0/8"`) an endpoint may resolve to although the SSRF
    /// guard refuses them otherwise (loopback, private, link-local, CGNAT, metadata). For
    /// tests and for receivers inside the district's own network; empty in production.
    pub allow_networks: Vec<String>,
    /// PEM files of certificate authorities trusted besides the public web PKI (a
    /// district-internal CA; the tests' own).
    pub extra_root_certs: Vec<std::path::PathBuf>,
    /// Deliveries one endpoint may have waiting; more are recorded as overflowed (still in
    /// the feed) instead of queued.
    pub queue_capacity: usize,
    /// Deliveries per second to one endpoint unless its subscriber sets its own.
    pub max_per_second: u32,
    /// Endpoints one relay replica works on at once.
    pub concurrency: usize,
    /// How long a rotated-out secret still signs (beside the new one).
    #[serde(with = "humantime_serde")]
    pub rotation_grace: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            retry_schedule: ["0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h"]
                .map(String::from)
                .to_vec(),
            timeout: Duration::from_secs(15),
            allow_networks: Vec::new(),
            extra_root_certs: Vec::new(),
            queue_capacity: 10_000,
            max_per_second: 10,
            concurrency: 64,
            rotation_grace: Duration::from_secs(24 * 3600),
        }
    }
}

impl WebhookConfig {
    /// The retry schedule as durations; `Err` names the entry that is not one.
    pub fn schedule(&self) -> Result<Vec<Duration>, ConfigError> {
        if self.retry_schedule.is_empty() || self.retry_schedule.len() > 20 {
            return Err(ConfigError::invalid(
                "relay.webhooks.retry_schedule",
                "must list 1–20 delays",
            ));
        }
        self.retry_schedule
            .iter()
            .enumerate()
            .map(|(i, text)| {
                humantime_serde::re::humantime::parse_duration(text).map_err(|e| {
                    ConfigError::invalid(
                        format!("relay.webhooks.retry_schedule[{i}]"),
                        e.to_string(),
                    )
                })
            })
            .collect()
    }
}

/// `[publisher]`: what the review gate refuses to let through, and where the reviewer's
/// audience preview is computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublisherConfig {
    /// Words that must not appear in a published policy (先审查后公开): each occurrence
    /// is a review finding. The default holds the classification markings (密级标志) of
    /// documents that are not for publication.
    pub forbidden_words: Vec<String>,
    /// The profiler's gRPC endpoint (`http://host:port`), asked for `PreviewAudience` when
    /// a reviewer approves. Empty: the profiler in the same process (`serve all`, the
    /// demo), or no preview when there is none.
    pub profiler_url: String,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            forbidden_words: ["绝密", "机密", "秘密★", "内部资料", "不予公开", "涉密"]
                .map(String::from)
                .to_vec(),
            profiler_url: String::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grpc: GrpcConfig::default(),
            kafka: KafkaConfig::default(),
            store: StoreConfig::default(),
            telemetry: TelemetryConfig::default(),
            unsubscribe: UnsubscribeConfig::default(),
            auth: AuthConfig::default(),
            shutdown_grace: Duration::from_secs(20),
            publisher: PublisherConfig::default(),
            relay: RelayConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Address the gRPC server listens on; port 0 picks a free one.
    pub listen: String,
    /// Largest request a call may send, in bytes; more is `RESOURCE_EXHAUSTED`.
    pub max_request_bytes: usize,
    /// Write calls (publish, profile writes, MarkRead, …) per second each caller's token
    /// bucket refills with; beyond it `RESOURCE_EXHAUSTED` with RetryInfo. 0: no limit.
    pub write_rate_per_second: f64,
    /// Write calls a caller may make in a burst after being idle.
    pub write_burst: u32,
    /// Server streams (`StreamInbox`, …) one caller may hold open at once.
    pub max_streams_per_caller: u32,
    /// `[grpc.tls]`: TLS on the listener, mutual with `client_ca_file`. Absent: plaintext.
    pub tls: Option<crate::tls::TlsConfig>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        let limits = crate::limits::LimitsConfig::default();
        Self {
            listen: "0.0.0.0:50051".into(),
            max_request_bytes: limits.max_request_bytes,
            write_rate_per_second: limits.write_rate_per_second,
            write_burst: limits.write_burst,
            max_streams_per_caller: limits.max_streams_per_caller,
            tls: None,
        }
    }
}

impl GrpcConfig {
    /// The limits the gRPC host enforces per caller ([`crate::limits`]).
    pub fn limits(&self) -> crate::limits::LimitsConfig {
        crate::limits::LimitsConfig {
            max_request_bytes: self.max_request_bytes,
            write_rate_per_second: self.write_rate_per_second,
            write_burst: self.write_burst,
            max_streams_per_caller: self.max_streams_per_caller,
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
    /// Send every record in its own batch. Producers batch by default (up to 1,000
    /// records): tansu 0.6 answers a fetch inside a batch without that batch, so consumers
    /// start each assigned partition's fetch up to 999 records early and skip what the
    /// committed offset passed (docs/upstream/tansu-fetch-inside-batch.md). Set true only
    /// for a Kafka-protocol broker whose consumers cannot do that: it costs 16–21× in
    /// produce rate on tansu 0.6 (`just bench-broker`).
    pub one_record_per_batch: bool,
    /// Records one consumer handles at once where records of different keys are
    /// independent (the notifier's `delivery.requests`, keyed by recipient): concurrent
    /// across keys, in order within a key, the commit never past an unfinished record.
    /// Other consumers handle one record at a time.
    pub max_in_flight: usize,
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
            one_record_per_batch: false,
            max_in_flight: 64,
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

/// The top-level sections a component owns, beside the shared ones (the notifier's
/// `[smtp]` and `[digest]`): read from the same file and the same `ZHIDA_<SECTION>__<KEY>`
/// variables by [`Config::load_with`]. Each section struct denies unknown keys itself
/// (`#[serde(deny_unknown_fields)]`); the loader denies sections nobody owns. Section names
/// must differ from the shared ones.
pub trait Sections: Default + Serialize + DeserializeOwned {
    /// Checks what serde cannot; the error names the key (`smtp.host`).
    fn validate(&self) -> Result<(), ConfigError>;
}

/// A configuration value that cannot work, with the key that holds it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error(
        "invalid configuration: unknown section `{section}`{origin}; expected one of {expected}"
    )]
    UnknownSection {
        section: String,
        /// Where it was set, e.g. ` in zhida.toml TOML file`.
        origin: String,
        expected: String,
    },
}

impl ConfigError {
    /// `key` (e.g. `smtp.host`, `sms.templates[0].text`) holds a value that cannot work,
    /// for `reason`.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl Config {
    /// Defaults, then `file` if given, then `ZHIDA_*` variables: the shared sections and the
    /// component sections `S`, each validated.
    pub fn load_with<S: Sections>(file: Option<&Path>) -> Result<(Self, S), ConfigError> {
        let shared = Figment::from(Serialized::defaults(Config::default()));
        let own = Figment::from(Serialized::defaults(S::default()));
        let sections = |defaults: &Figment| -> Result<Vec<String>, ConfigError> {
            Ok(defaults
                .extract::<Dict>()
                .map_err(Box::new)?
                .into_keys()
                .collect())
        };
        let mut known = sections(&shared)?;
        let owned = sections(&own)?;
        debug_assert!(
            owned.iter().all(|section| !known.contains(section)),
            "a component section shadows a shared one: {owned:?}"
        );
        known.extend(owned);
        let mut figment = shared.merge(own);
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let figment = figment.merge(
            // Only `SECTION__KEY` variables (and the one top-level key) are config:
            // scripts and tests use other `ZHIDA_*` names (ZHIDA_CACHE, ZHIDA_TEST_KAFKA, …).
            Env::prefixed("ZHIDA_")
                .filter(|key| key.as_str().contains("__") || key == "shutdown_grace")
                .split("__"),
        );
        let present = figment.extract::<Dict>().map_err(Box::new)?;
        if let Some(section) = present.keys().find(|key| !known.contains(key)) {
            let origin = figment
                .find_metadata(section)
                .map_or_else(String::new, |md| match &md.source {
                    Some(source) => format!(" in {source} {}", md.name),
                    None => format!(" in {}", md.name),
                });
            return Err(ConfigError::UnknownSection {
                section: section.clone(),
                origin,
                expected: known.join(", "),
            });
        }
        let config: Config = figment.extract().map_err(Box::new)?;
        let own: S = figment.extract().map_err(Box::new)?;
        config.validate()?;
        own.validate()?;
        Ok((config, own))
    }

    /// Checks what serde cannot: non-empty addresses, sane numbers.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason| Err(ConfigError::invalid(key, reason));
        if self.grpc.listen.parse::<std::net::SocketAddr>().is_err() {
            return invalid("grpc.listen", "must be an ip:port such as 0.0.0.0:50051");
        }
        if let Err((key, reason)) = self.grpc.limits().validate() {
            return Err(ConfigError::invalid(key, reason));
        }
        if let Some(Err((key, reason))) = self.grpc.tls.as_ref().map(|tls| tls.validate()) {
            return Err(ConfigError::invalid(key, reason));
        }
        let hooks = &self.relay.webhooks;
        hooks.schedule()?;
        if hooks.timeout < Duration::from_millis(10) {
            return invalid("relay.webhooks.timeout", "must be at least 10ms");
        }
        if !(1..=1_000_000).contains(&hooks.queue_capacity) {
            return invalid(
                "relay.webhooks.queue_capacity",
                "must be between 1 and 1000000",
            );
        }
        if !(1..=10_000).contains(&hooks.max_per_second) {
            return invalid(
                "relay.webhooks.max_per_second",
                "must be between 1 and 10000",
            );
        }
        if !(1..=10_000).contains(&hooks.concurrency) {
            return invalid("relay.webhooks.concurrency", "must be between 1 and 10000");
        }
        for (i, net) in hooks.allow_networks.iter().enumerate() {
            if !is_cidr(net) {
                return Err(ConfigError::invalid(
                    format!("relay.webhooks.allow_networks[{i}]"),
                    "must be a network such as 127.0.0.0/8 or ::1/128",
                ));
            }
        }
        for (i, word) in self.publisher.forbidden_words.iter().enumerate() {
            if word.trim().is_empty() || word.trim() != word || word.chars().count() > 50 {
                return Err(ConfigError::invalid(
                    format!("publisher.forbidden_words[{i}]"),
                    "1–50 characters without leading or trailing white space",
                ));
            }
        }
        let url = &self.publisher.profiler_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return invalid(
                "publisher.profiler_url",
                "an http:// or https:// URL, or empty",
            );
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
        if !(1..=10_000).contains(&self.kafka.max_in_flight) {
            return invalid("kafka.max_in_flight", "must be between 1 and 10000");
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
        self.auth
            .validate()
            .map_err(|(key, reason)| ConfigError::invalid(key, reason))?;
        self.unsubscribe
            .validate()
            .map_err(|e| ConfigError::invalid(e.key, e.reason))
    }
}

/// `addr/len` with an IP address and a prefix length that fits it.
fn is_cidr(text: &str) -> bool {
    let Some((addr, len)) = text.split_once('/') else {
        return false;
    };
    let Ok(len) = len.parse::<u8>() else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => len <= 32,
        Ok(std::net::IpAddr::V6(_)) => len <= 128,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component's own section, as the notifier's `[smtp]`.
    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Own {
        mail: Mail,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Mail {
        host: String,
    }

    impl Default for Mail {
        fn default() -> Self {
            Self {
                host: "127.0.0.1".into(),
            }
        }
    }

    impl Sections for Own {
        fn validate(&self) -> Result<(), ConfigError> {
            if self.mail.host.is_empty() {
                return Err(ConfigError::invalid("mail.host", "must be set"));
            }
            Ok(())
        }
    }

    fn load(toml: &str) -> Result<(Config, Own), ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zhida.toml");
        std::fs::write(&path, toml).expect("write");
        Config::load_with(Some(&path))
    }

    #[test]
    fn file_values_override_defaults_and_bad_values_name_their_key() {
        let err = load("[kafka]\nbrokers = \"k1:9092\"\npartitions = 0\n")
            .expect_err("partitions = 0 must be rejected");
        assert!(err.to_string().contains("kafka.partitions"), "{err}");

        let (config, _) =
            load("shutdown_grace = \"5s\"\n[kafka]\nbrokers = \"k1:9092\"\n").expect("valid");
        assert_eq!(config.kafka.brokers, "k1:9092");
        assert_eq!(config.shutdown_grace, Duration::from_secs(5));
        assert_eq!(
            config.kafka.partitions, 3,
            "defaults fill what the file leaves out"
        );
    }

    #[test]
    fn the_shared_unsubscribe_keys_load_from_the_file_and_bad_ones_name_their_key() {
        let (config, _) = load(
            "[unsubscribe]\nbase_url = \"https://zhida.example.gov.cn/u/\"\n\
             keys = [{ id = \"k2\", secret = \"0123456789abcdef0123456789abcdef\" },\
                     { id = \"k1\", secret = \"fedcba9876543210fedcba9876543210\" }]\n",
        )
        .expect("valid");
        let ring = config.unsubscribe.keyring().expect("two keys");
        assert!(format!("{ring:?}").contains("[\"k2\", \"k1\"]"), "{ring:?}");
        let err = load("[unsubscribe]\nkeys = [{ id = \"k1\", secret = \"short\" }]\n")
            .expect_err("a short secret");
        assert!(
            err.to_string().contains("unsubscribe.keys[0].secret")
                && !err.to_string().contains("short\""),
            "{err}"
        );
        let err = load("[unsubscribe]\nbase_url = \"https://x/u\"\n").expect_err("no slash");
        assert!(err.to_string().contains("unsubscribe.base_url"), "{err}");
        let (config, _) = load("").expect("no keys is a valid config");
        let err = config.unsubscribe.keyring().expect_err("but no keyring");
        assert_eq!(err.key, "unsubscribe.keys");
    }

    #[test]
    fn grpc_tls_is_off_unless_set_and_its_files_are_checked_at_load() {
        assert_eq!(load("").expect("defaults").0.grpc.tls, None);
        let err = load("[grpc.tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"k.pem\"\n")
            .expect_err("an unreadable file");
        assert!(err.to_string().contains("grpc.tls.cert_file"), "{err}");
        let err =
            load("[grpc.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\nca_file = \"x\"\n")
                .expect_err("a typo");
        assert!(err.to_string().contains("ca_file"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected_rather_than_ignored() {
        let err = load("[kafka]\nbroker = \"typo:9092\"\n").expect_err("typo must be rejected");
        assert!(err.to_string().contains("broker"), "{err}");
    }

    #[test]
    fn a_components_sections_load_beside_the_shared_ones_and_are_checked_alike() {
        let (config, own) =
            load("[mail]\nhost = \"smtp.example.cn\"\n[grpc]\nlisten = \"127.0.0.1:1\"\n")
                .expect("valid");
        assert_eq!(own.mail.host, "smtp.example.cn");
        assert_eq!(config.grpc.listen, "127.0.0.1:1");
        assert_eq!(
            load("").expect("defaults are valid").1.mail.host,
            "127.0.0.1"
        );

        let err = load("[mail]\nhots = \"typo\"\n").expect_err("typo must be rejected");
        assert!(err.to_string().contains("hots"), "{err}");
        let err = load("[mail]\nhost = \"\"\n").expect_err("empty host must be rejected");
        assert!(err.to_string().contains("mail.host"), "{err}");
        let err = load("[mali]\nhost = \"x\"\n").expect_err("unknown section must be rejected");
        assert!(
            err.to_string().contains("unknown section `mali`")
                && err.to_string().contains("zhida.toml"),
            "{err}"
        );
    }
}
