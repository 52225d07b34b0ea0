//! Test harness: per-test namespaces, `zhida` processes, and reading the SMTP server's mail.

use std::{
    net::TcpListener as StdListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::LazyLock,
    time::Duration,
};

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};
use tonic::service::interceptor::InterceptedService;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use zhida_bus::{Group, Topic, Topics};
use zhida_proto::{
    events::v1::{
        Channel, Citizen, Contact, Policy, PolicyContent, PolicyStatus, Profile, SubjectKind,
        Subscription, profile::Details,
    },
    notification::v1::{
        inbox_service_client::InboxServiceClient,
        notification_service_client::NotificationServiceClient,
    },
    policy::v1::{
        CreateDraftRequest, Decision, PublishRequest, ReviewRequest, SubmitForReviewRequest,
        policy_service_client::PolicyServiceClient,
    },
    profile::v1::profile_service_client::ProfileServiceClient,
};
use zhida_runtime::{
    auth::{self, AuthConfig, Bearer, Kind, Signer},
    config::KafkaConfig,
};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite via deploy/test.sh, which starts the servers")
    })
}

/// The one-click unsubscribe key every test server signs and checks with.
pub const UNSUBSCRIBE_KEY_ID: &str = "t1";
pub const UNSUBSCRIBE_SECRET: &str = "zhida-tests-unsubscribe-secret-0123456789";
/// Where the test servers' unsubscribe links point.
pub const UNSUBSCRIBE_BASE_URL: &str = "https://zhida.test.example.cn/u/";

/// A gRPC channel whose calls carry a bearer token.
pub type Authed = InterceptedService<tonic::transport::Channel, Bearer>;

/// The key pair every test server verifies tokens with (made once per test process) and
/// the file its public half is in.
static AUTH: LazyLock<(Signer, PathBuf)> = LazyLock::new(|| {
    let (private, public) = zhida_runtime::auth::generate_key();
    let path = std::env::temp_dir().join(format!(
        "zhida-test-auth-{}-{}.pub.pem",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, public).expect("public key written");
    let signer = Signer::new(&AuthConfig::default(), AUTH_KEY_ID, &private).expect("signer");
    (signer, path)
});
const AUTH_KEY_ID: &str = "test";

/// A token for `kind`/`id` with `scopes` (the kind's defaults when empty), valid for an hour.
pub fn token(kind: Kind, id: &str, scopes: &[&str]) -> String {
    let scopes = scopes.iter().map(|s| s.to_string()).collect();
    AUTH.0
        .issue(kind, id, &scopes, Duration::from_secs(3600))
        .expect("token")
}

/// A token issued at `iat` and expiring at `exp` (seconds since the epoch).
pub fn token_at(kind: Kind, id: &str, iat: u64, exp: u64) -> String {
    AUTH.0
        .issue_at(kind, id, &Default::default(), iat, exp)
        .expect("token")
}

/// [`token`] as a client interceptor.
pub fn bearer(kind: Kind, id: &str, scopes: &[&str]) -> Bearer {
    Bearer::new(&token(kind, id, scopes)).expect("ASCII token")
}

/// The "两页" portal: every profile, inbox and delivery status, and audience previews.
pub fn portal() -> Bearer {
    let mut scopes: Vec<&str> = Kind::Directory.default_scopes().to_vec();
    scopes.push(auth::POLICY_REVIEW);
    bearer(Kind::Directory, "test-portal", &scopes)
}

/// What a department used to send in one `PublishPolicy` call: a policy to take through
/// the whole lifecycle with [`publish`].
#[derive(Debug, Clone, Default)]
pub struct NewPolicy {
    /// `CreateDraft`'s idempotency key.
    pub request_id: String,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    /// The owning department: the id of the department token it is drafted and published
    /// with.
    pub department: String,
    pub service_url: String,
    pub audience: String,
    pub urgent: bool,
    /// When it expires; `None`: valid until withdrawn.
    pub valid_until: Option<zhida_proto::Timestamp>,
}

impl NewPolicy {
    /// Its content as `CreateDraft` takes it.
    pub fn content(&self) -> PolicyContent {
        PolicyContent {
            title: self.title.clone(),
            body: self.body.clone(),
            tags: self.tags.clone(),
            service_url: self.service_url.clone(),
            audience: self.audience.clone(),
            urgent: self.urgent,
            valid_until: self.valid_until,
            ..PolicyContent::default()
        }
    }

    /// The `CreateDraft` request, for the department of the caller's token.
    pub fn draft(&self) -> CreateDraftRequest {
        CreateDraftRequest {
            request_id: self.request_id.clone(),
            content: Some(self.content()),
            faqs: Vec::new(),
            department: String::new(),
        }
    }
}

/// A `PolicyService` client as a district-wide reviewer (`reviewer` token, id `*`).
pub async fn reviewer(server: &Server) -> PolicyServiceClient<Authed> {
    server.publisher_as(bearer(Kind::Reviewer, "*", &[])).await
}

/// Takes `policy` through the lifecycle as its department and a district-wide reviewer:
/// `CreateDraft` → `SubmitForReview` → `Review` (approve) → `Publish` (now). The policy id.
pub async fn publish(server: &Server, policy: NewPolicy) -> String {
    let mut department = server.publisher(&policy.department).await;
    let approved = draft_and_approve(server, &mut department, &policy).await;
    publish_approved(&mut department, &approved).await.policy_id
}

/// `CreateDraft` → `SubmitForReview` as `department`, then `Review` (approve) as a
/// district-wide reviewer: the approved policy, ready for `Publish`.
pub async fn draft_and_approve(
    server: &Server,
    department: &mut PolicyServiceClient<Authed>,
    policy: &NewPolicy,
) -> Policy {
    let draft = department
        .create_draft(policy.draft())
        .await
        .expect("draft created")
        .into_inner();
    let submitted = department
        .submit_for_review(SubmitForReviewRequest {
            policy_id: draft.policy_id.clone(),
            expected_generation: draft.generation,
        })
        .await
        .expect("submitted for review")
        .into_inner();
    // These tests publish test content of their own, not a department's text: whatever
    // the review gate finds in it (personal data, forbidden words) is acknowledged
    // explicitly here, as a reviewer would accept a public hotline. The gate itself is
    // tested in the publisher's tests.
    let acknowledge_findings = submitted
        .findings
        .iter()
        .filter(|f| f.acknowledged_by.is_empty())
        .map(|f| f.finding_id.clone())
        .collect();
    let approved = reviewer(server)
        .await
        .review(ReviewRequest {
            policy_id: submitted.policy_id.clone(),
            expected_generation: submitted.generation,
            decision: Decision::Approve as i32,
            comment: String::new(),
            acknowledge_findings,
        })
        .await
        .expect("approved")
        .into_inner()
        .policy
        .expect("the reviewed policy");
    assert_eq!(
        approved.status,
        PolicyStatus::Approved as i32,
        "{approved:?}"
    );
    approved
}

/// `Publish` (now) of an `approved` policy as its `department`: the published policy.
pub async fn publish_approved(
    department: &mut PolicyServiceClient<Authed>,
    approved: &Policy,
) -> Policy {
    let published = department
        .publish(PublishRequest {
            policy_id: approved.policy_id.clone(),
            expected_generation: approved.generation,
            publish_at: None,
        })
        .await
        .expect("published")
        .into_inner();
    assert_eq!(
        (published.status, published.live_version),
        (PolicyStatus::Published as i32, 1),
        "{published:?}"
    );
    published
}

/// One test's namespace on the shared servers.
pub struct TestEnv {
    /// Short unique id, also used in recipient addresses.
    pub id: String,
    pub kafka: KafkaConfig,
    envs: Vec<(String, String)>,
}

impl TestEnv {
    pub async fn new(test: &str) -> Self {
        let id = format!("{test}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let prefix = format!("t-{id}.");
        let kafka = KafkaConfig {
            brokers: var("ZHIDA_TEST_KAFKA"),
            topic_prefix: prefix.clone(),
            group_prefix: prefix.clone(),
            ..KafkaConfig::default()
        };
        zhida_bus::ensure_topics(&kafka)
            .await
            .expect("topics created");
        let (smtp_host, smtp_port) = var("ZHIDA_TEST_SMTP")
            .rsplit_once(':')
            .map(|(h, p)| (h.to_string(), p.to_string()))
            .expect("host:port");
        let envs = vec![
            ("ZHIDA_KAFKA__BROKERS", kafka.brokers.clone()),
            ("ZHIDA_KAFKA__TOPIC_PREFIX", prefix.clone()),
            ("ZHIDA_KAFKA__GROUP_PREFIX", prefix.clone()),
            ("ZHIDA_KAFKA__MAX_RETRY_BACKOFF", "500ms".into()),
            ("ZHIDA_STORE__REDIS_URL", var("ZHIDA_TEST_REDIS")),
            ("ZHIDA_STORE__KEY_PREFIX", format!("zhida-test:{id}:")), // = key_prefix()
            ("ZHIDA_STORE__DELIVERY_LEASE", "2s".into()),
            ("ZHIDA_SMTP__HOST", smtp_host),
            ("ZHIDA_SMTP__PORT", smtp_port),
            ("ZHIDA_TELEMETRY__LOG_FILTER", "info".into()),
            (
                "ZHIDA_AUTH__KEYS",
                format!(
                    "[{{id=\"{AUTH_KEY_ID}\",public_key_file=\"{}\"}}]",
                    AUTH.1.display()
                ),
            ),
            ("ZHIDA_UNSUBSCRIBE__BASE_URL", UNSUBSCRIBE_BASE_URL.into()),
            (
                "ZHIDA_UNSUBSCRIBE__KEYS",
                format!("[{{id=\"{UNSUBSCRIBE_KEY_ID}\",secret=\"{UNSUBSCRIBE_SECRET}\"}}]"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self { id, kafka, envs }
    }

    /// The `ZHIDA_*` settings a `zhida` process of this test runs with.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// An address no other test uses.
    pub fn address(&self, name: &str) -> String {
        format!("{name}.{}@example.cn", self.id)
    }

    /// The Redis key prefix the test's servers use.
    pub fn key_prefix(&self) -> String {
        format!("zhida-test:{}:", self.id)
    }

    /// A connection to the Redis the test's servers use.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(var("ZHIDA_TEST_REDIS"))
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis reachable")
    }

    pub fn topic(&self, topic: Topic) -> String {
        Topics::new(&self.kafka).name(topic)
    }
}

/// A `zhida serve …` child process; killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    /// Starts `zhida serve <service>` and waits until gRPC health says SERVING.
    pub async fn start(service: &str, env: &TestEnv) -> Self {
        Self::start_with(service, env, &[]).await
    }

    /// Like [`Server::start`], with more `ZHIDA_*` settings.
    pub async fn start_with(service: &str, env: &TestEnv, settings: &[(&str, &str)]) -> Self {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_zhida"))
            .args(["serve", service])
            .envs(env.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(settings.iter().copied())
            .env("ZHIDA_GRPC__LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .spawn()
            .expect("zhida starts");
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        server.wait_serving().await;
        server
    }

    async fn wait_serving(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if self.serving().await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "zhida at {} never became SERVING",
                self.url
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn serving(&self) -> bool {
        let Ok(channel) = channel(&self.url).await else {
            return false;
        };
        let request = HealthCheckRequest {
            service: String::new(),
        };
        match HealthClient::new(channel).check(request).await {
            Ok(response) => response.into_inner().status == ServingStatus::Serving as i32,
            Err(_) => false,
        }
    }

    async fn channel(&self) -> tonic::transport::Channel {
        channel(&self.url).await.expect("connect")
    }

    /// A `ProfileService` client of this server, as the "两页" portal (the directory:
    /// every profile), which may also preview audiences.
    pub async fn profiles(&self) -> ProfileServiceClient<Authed> {
        ProfileServiceClient::with_interceptor(self.channel().await, portal())
    }

    /// A `ProfileService` client that calls as `bearer` (see [`bearer`]).
    pub async fn profiles_as(&self, bearer: Bearer) -> ProfileServiceClient<Authed> {
        ProfileServiceClient::with_interceptor(self.channel().await, bearer)
    }

    /// A `PolicyService` client of this server, as `department`.
    pub async fn publisher(&self, department: &str) -> PolicyServiceClient<Authed> {
        self.publisher_as(bearer(Kind::Department, department, &[]))
            .await
    }

    /// A `PolicyService` client that calls as `bearer`.
    pub async fn publisher_as(&self, bearer: Bearer) -> PolicyServiceClient<Authed> {
        PolicyServiceClient::with_interceptor(self.channel().await, bearer)
    }

    /// An `InboxService` client of this server, as the portal (every page).
    pub async fn inbox(&self) -> InboxServiceClient<Authed> {
        self.inbox_as(portal()).await
    }

    /// An `InboxService` client that calls as `bearer`.
    pub async fn inbox_as(&self, bearer: Bearer) -> InboxServiceClient<Authed> {
        InboxServiceClient::with_interceptor(self.channel().await, bearer)
    }

    /// A `NotificationService` client of this server, as the portal.
    pub async fn notifications(&self) -> NotificationServiceClient<Authed> {
        NotificationServiceClient::with_interceptor(self.channel().await, portal())
    }

    /// SIGKILL: no drain, no commit, no goodbye.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        self.child.wait().expect("exit status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message the SMTP server received.
#[derive(Debug)]
pub struct Mail {
    pub envelope_to: String,
    pub subject: String,
    pub message_id: String,
    /// The plain-text part (the whole body of a single-part message).
    pub body: String,
    /// The HTML part of a `multipart/alternative` message, or empty.
    pub html: String,
    /// The message as the server stored it (with the headers smtp-sink adds on top).
    pub raw: Vec<u8>,
}

/// All complete messages in the SMTP dump whose envelope recipient ends with `suffix`.
pub fn mail_for(suffix: &str) -> Vec<Mail> {
    let dir = PathBuf::from(var("ZHIDA_TEST_SMTP_DUMP"));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("dump dir").flatten() {
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        // Cheap filter first: the dump holds every test's mail.
        if !bytes.windows(suffix.len()).any(|w| w == suffix.as_bytes()) {
            continue;
        }
        // smtp-sink writes while receiving: a file without its body yet is skipped.
        let Ok(mail) = mailparse::parse_mail(&bytes) else {
            continue;
        };
        let header = |name: &str| {
            mail.headers
                .iter()
                .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
                .map(|h| h.get_value())
        };
        let Some(rcpt) = header("X-Rcpt-Args") else {
            continue;
        };
        let envelope_to = rcpt
            .trim()
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap_or_default()
            .to_string();
        if !envelope_to.ends_with(suffix) {
            continue;
        }
        let part = |mimetype: &str| {
            mail.subparts
                .iter()
                .find(|p| p.ctype.mimetype == mimetype)
                .and_then(|p| p.get_body().ok())
        };
        let (body, html) = if mail.ctype.mimetype == "multipart/alternative" {
            // Not yet complete without its closing boundary.
            let end = format!(
                "--{}--",
                mail.ctype
                    .params
                    .get("boundary")
                    .cloned()
                    .unwrap_or_default()
            );
            if !bytes.windows(end.len()).any(|w| w == end.as_bytes()) {
                continue;
            }
            (part("text/plain"), part("text/html").unwrap_or_default())
        } else {
            (mail.get_body().ok(), String::new())
        };
        let (Some(subject), Some(message_id), Some(body)) =
            (header("Subject"), header("Message-ID"), body)
        else {
            continue;
        };
        if body.is_empty() {
            continue;
        }
        out.push(Mail {
            envelope_to,
            subject,
            message_id,
            body,
            html,
            raw: bytes.clone(),
        });
    }
    out
}

/// Polls `check` until it returns true, at most `within`.
pub async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Counts records on `topic` (from the beginning) whose payload satisfies `matches`, until
/// `expected` were seen; returns how many were seen within `within`.
pub async fn count_records(
    env: &TestEnv,
    topic: Topic,
    expected: usize,
    within: Duration,
    matches: impl Fn(&[u8]) -> bool,
) -> usize {
    let consumer = reader(env, topic);
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = 0;
    while seen < expected {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => break,
            Ok(Ok(message)) if message.payload().is_some_and(&matches) => seen += 1,
            Ok(_) => {}
        }
    }
    seen
}

/// The headers of a record read back from the broker.
#[derive(Debug)]
pub struct ReadRecord {
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ReadRecord {
    /// The first header named `name`, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }
}

/// Reads `topic` from the beginning and returns the headers of the records whose payload
/// satisfies `matches`, once `expected` were seen or `within` has passed.
pub async fn read_records(
    env: &TestEnv,
    topic: Topic,
    expected: usize,
    within: Duration,
    matches: impl Fn(&[u8]) -> bool,
) -> Vec<ReadRecord> {
    use rdkafka::message::Headers as _;
    let consumer = reader(env, topic);
    let deadline = tokio::time::Instant::now() + within;
    let mut records = Vec::new();
    while records.len() < expected {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => break,
            Ok(Ok(message)) if message.payload().is_some_and(&matches) => {
                let headers = message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                records.push(ReadRecord { headers });
            }
            Ok(_) => {}
        }
    }
    records
}

/// Produces again, unchanged (key, value, headers), the first `E` record (its CloudEvents
/// type) with key `key`, as a broker's at-least-once redelivery would hand it over a
/// second time. Panics when no such record arrives within `within`.
pub async fn redeliver<E: zhida_bus::Event>(env: &TestEnv, key: &str, within: Duration) {
    use rdkafka::message::{Header, Headers as _, OwnedHeaders};
    let ty = E::TYPE;
    let consumer = reader(env, E::TOPIC);
    let deadline = tokio::time::Instant::now() + within;
    let message = loop {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("no {ty} record of {key} within {within:?}"))
            .expect("readable")
            .detach();
        let is_type = message.headers().is_some_and(|headers| {
            headers
                .iter()
                .any(|h| h.key == zhida_bus::header_names::TYPE && h.value == Some(ty.as_bytes()))
        });
        if is_type && message.key() == Some(key.as_bytes()) {
            break message;
        }
    };
    let mut headers = OwnedHeaders::new();
    for header in message.headers().into_iter().flat_map(|h| h.iter()) {
        headers = headers.insert(Header {
            key: header.key,
            value: header.value,
        });
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.brokers)
        .create()
        .expect("producer");
    let mut record = FutureRecord::to(message.topic())
        .key(key)
        .headers(headers)
        .partition(message.partition());
    if let Some(payload) = message.payload() {
        record = record.payload(payload);
    }
    producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("produced again");
}

/// A consumer of `topic` from its first record, in a group of its own.
fn reader(env: &TestEnv, topic: Topic) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.brokers)
        .set(
            "group.id",
            format!("t-{}-reader-{}", env.id, uuid::Uuid::new_v4()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&env.topic(topic)]).expect("subscribe");
    consumer
}

/// Whether `topic` holds a tombstone (a record without value) for `key`, read from the start.
pub async fn has_tombstone(env: &TestEnv, topic: Topic, key: &str, within: Duration) -> bool {
    let consumer = reader(env, topic);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => return false,
            Ok(Ok(message))
                if message.payload().is_none() && message.key() == Some(key.as_bytes()) =>
            {
                return true;
            }
            Ok(_) => {}
        }
    }
}

/// A gRPC channel to `url`.
pub async fn channel(url: &str) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    tonic::transport::Channel::from_shared(url.to_string())
        .expect("valid url")
        .connect()
        .await
}

/// How many records of `topic` group `group` has not committed yet (blocking calls).
fn group_lag(brokers: &str, group: &str, topic: &str) -> Result<i64, rdkafka::error::KafkaError> {
    let timeout = Duration::from_secs(5);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut partitions = TopicPartitionList::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        partitions.add_partition(topic, p.id());
    }
    let mut lag = 0;
    for element in consumer.committed_offsets(partitions, timeout)?.elements() {
        let high = zhida_bus::log_end(brokers, topic, element.partition())?;
        let done = match element.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        };
        lag += high - done;
    }
    Ok(lag)
}

/// Polls until consumer group `group` (before the test's prefix) has committed every record
/// of `topic`, i.e. its committed offsets equal the partitions' ends.
pub async fn wait_until_consumed(env: &TestEnv, group: Group, topic: Topic, within: Duration) {
    let topics = Topics::new(&env.kafka);
    let (group, topic) = (topics.group(group), topics.name(topic));
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (brokers, g, t) = (env.kafka.brokers.clone(), group.clone(), topic.clone());
        // librdkafka's lookups block: keep them off the async workers.
        let lag = tokio::task::spawn_blocking(move || group_lag(&brokers, &g, &t))
            .await
            .expect("lag lookup did not panic");
        if lag.as_ref().is_ok_and(|lag| *lag == 0) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "group {group} still lags on {topic} after {within:?}: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A citizen of 五角场街道 born 1990, reachable by email at `env.address(id)` (with or
/// without consent), subscribed to `tags` (no subscription when empty).
pub fn citizen(env: &TestEnv, id: &str, name: &str, tags: &[&str], consent: bool) -> Profile {
    Profile {
        details: Some(Details::Citizen(Citizen {
            birth_year: 1990,
            ..Citizen::default()
        })),
        subject_id: format!("{id}-{}", env.id),
        kind: SubjectKind::Citizen as i32,
        display_name: name.into(),
        street: "五角场街道".into(),
        contacts: vec![Contact {
            channel: Channel::Email as i32,
            address: env.address(id),
            consent,
            ..Contact::default()
        }],
        subscriptions: if tags.is_empty() {
            vec![]
        } else {
            vec![Subscription {
                tags: tags.iter().map(|t| t.to_string()).collect(),
                channels: vec![Channel::Email as i32],
                ..Subscription::default()
            }]
        },
    }
}

/// Of `recipients`, those whose delivery of `policy_id` on `channel` the test's ledger
/// (Redis) holds as done.
pub async fn recorded_deliveries(
    env: &TestEnv,
    policy_id: &str,
    recipients: impl Iterator<Item = String>,
    channel: zhida_proto::events::v1::Channel,
) -> std::collections::HashSet<String> {
    let ledger = zhida_store::Stores::open(&zhida_runtime::config::StoreConfig {
        redis_url: var("ZHIDA_TEST_REDIS"),
        key_prefix: env.key_prefix(),
        ..zhida_runtime::config::StoreConfig::default()
    })
    .await
    .expect("redis")
    .ledger();
    let mut recorded = std::collections::HashSet::new();
    for recipient_id in recipients {
        let key = zhida_store::DeliveryKey {
            policy_id: policy_id.into(),
            recipient_id,
            channel,
        };
        if let Some(zhida_store::Status::Done(_)) =
            ledger.status(&key).await.expect("ledger readable")
        {
            recorded.insert(key.recipient_id);
        }
    }
    recorded
}
