//! `just bench-relay`: the "政府+" relay measured from outside (issue #11). Real tansu and
//! Redis (`deploy/servers.sh`), one `zhida serve relay` started by the bench (auth off,
//! webhooks allowed to loopback and trusting the bench's own CA), and, in the bench:
//!
//! 1. **webhooks**: `BENCH_RELAY_SUBSCRIBERS` (1,000) subscribers each with a webhook to one
//!    HTTPS receiver on 127.0.0.1 (keep-alive, verifies every signature, counts each
//!    `webhook-id` once and a repeat as a duplicate); the bench produces
//!    `BENCH_RELAY_POLICIES` (20) `PolicyPublished` straight onto `policy.events` and times
//!    the first produce to the last verified delivery: policies/s and deliveries/s, signing
//!    included, and the longest pause between two deliveries. Baseline, same run: as many
//!    signed POSTs of the relay's own body sent by `zhida_webhook::Sender` straight to the
//!    same receiver at the relay's concurrency (no broker, no Redis). CPU seconds per 1,000
//!    deliveries of the relay, tansu, Redis, the receiver (on a runtime of its own, its
//!    threads counted apart) and the rest of the bench, for both (`/proc/<pid>/stat`).
//! 2. **streams**: `BENCH_RELAY_STREAMS` (1,000) `StreamFeed` clients on one subscriber
//!    (64 HTTP/2 connections), then `BENCH_RELAY_ROUNDS` (5) policies one at a time, of a
//!    tag only the stream subscribers' scope names (no webhook sends meanwhile): the latency
//!    from each produce to each client's receipt (p50/p99/max) and to the last client's;
//!    baseline: the same with one client on a subscriber of its own.
//! 3. **memory per idle stream**: the relay's RSS (`/proc/<pid>/status`) before and after
//!    the streams opened and idle, over their count; and this bench's (the client side).
//!
//! Everything the bench starts is stopped when it ends.

mod support;

use std::{
    collections::HashSet,
    process::{Child, Command},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use support::{cpu_seconds, free_port, number, rss_kib, server_pid, serving, var};
use tokio::{io::AsyncWriteExt, net::TcpListener, sync::Mutex};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};
use zhida_bus::Producer;
use zhida_proto::{
    events::v1::{PolicyPublished, RelaySubscriberKind},
    relay::v1::{
        PullFeedRequest, PutSubscriberRequest, StreamFeedRequest, Subscriber, Webhook,
        relay_service_client::RelayServiceClient,
    },
};
use zhida_webhook::{Attempt, Guard, Secret, Sender, SenderConfig, receiver::read_request};

/// Endpoints one relay (and the baseline) sends to at once.
const CONCURRENCY: usize = 256;
/// The tag of the webhook part's policies, which every webhook subscriber's scope names.
const WEBHOOK_TAG: &str = "digital-economy";
/// The tag of the stream part's policies: only the two stream subscribers' scope names it
/// (no webhook sends compete with the streams).
const STREAM_TAG: &str = "bench-stream";
/// HTTP/2 connections the stream clients share.
const STREAM_CONNECTIONS: usize = 64;
/// The name of the receiver's threads (at most 15 bytes: `/proc/…/task/…/comm`).
const RECEIVER_THREADS: &str = "bench-receiver";

/// The bench's HTTPS receiver: counts requests whose signature verifies.
struct Receiver {
    url: String,
    ca_pem: String,
    secrets: Arc<Mutex<Vec<Secret>>>,
    tally: Arc<std::sync::Mutex<Tally>>,
}

/// What the receiver saw: verified requests by `webhook-id` (the relay's are at least
/// once: an attempt it gave up on after the receiver got it is sent again).
#[derive(Default)]
struct Tally {
    ids: HashSet<String>,
    /// Distinct ids verified: the relay's, the baseline's (`msg_baseline_…`).
    relayed: usize,
    baseline: usize,
    /// Verified again under an id already counted.
    duplicates: usize,
    /// Signatures that did not verify.
    refused: usize,
    /// TLS connections accepted.
    connections: usize,
    /// The body of the first relayed delivery (the baseline sends the same).
    sample: Vec<u8>,
}

impl Receiver {
    fn tally<T>(&self, read: impl FnOnce(&Tally) -> T) -> T {
        read(&self.tally.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Receiver {
    /// Serves on a runtime of its own, whose threads are named [`RECEIVER_THREADS`], so
    /// that its CPU can be told apart from the rest of the bench (the baseline's sender).
    fn start() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "zhida bench CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &ca).expect("certificate");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let tls = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("TLS config");
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("address").port();
        let secrets: Arc<Mutex<Vec<Secret>>> = Arc::default();
        let tally: Arc<std::sync::Mutex<Tally>> = Arc::default();
        let (keys, seen) = (secrets.clone(), tally.clone());
        std::thread::Builder::new()
            .name(RECEIVER_THREADS.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .thread_name(RECEIVER_THREADS)
                    .enable_all()
                    .build()
                    .expect("the receiver's runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("listener");
                    while let Ok((tcp, _)) = listener.accept().await {
                        let (acceptor, keys, seen) = (acceptor.clone(), keys.clone(), seen.clone());
                        tokio::spawn(serve_connection(acceptor, tcp, keys, seen));
                    }
                });
            })
            .expect("the receiver's thread");
        Self {
            url: format!("https://127.0.0.1:{port}/hooks"),
            ca_pem: ca.pem(),
            secrets,
            tally,
        }
    }
}

/// Answers the requests of one connection one after another (keep-alive): 204 when the
/// signature verifies, 401 when not.
async fn serve_connection(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    keys: Arc<Mutex<Vec<Secret>>>,
    tally: Arc<std::sync::Mutex<Tally>>,
) {
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    tally.lock().unwrap_or_else(|e| e.into_inner()).connections += 1;
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut tls, &mut buffer).await {
        let good = request.verify(&keys.lock().await, unix_seconds()).is_ok();
        let (id, body) = (request.webhook_id().to_string(), request.body);
        let status = {
            let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
            if !good {
                tally.refused += 1;
                "401 Unauthorized"
            } else {
                let baseline = id.starts_with("msg_baseline_");
                if !tally.ids.insert(id) {
                    tally.duplicates += 1;
                } else if baseline {
                    tally.baseline += 1;
                } else {
                    tally.relayed += 1;
                    if tally.sample.is_empty() {
                        tally.sample = body;
                    }
                }
                "204 No Content"
            }
        };
        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        if tls.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn unix_seconds() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
    )
    .unwrap_or(i64::MAX)
}

/// The CPU seconds the bench accounts, by label: the relay, tansu, Redis, the receiver's
/// threads and the rest of this bench (the sender in the baseline).
struct Cpu {
    relay: u32,
    servers: Vec<(&'static str, u32)>,
}

impl Cpu {
    const LABELS: [&'static str; 5] = [
        "zhida serve relay",
        "tansu",
        "redis-server",
        "the receiver (bench threads)",
        "rest of the bench (the Sender)",
    ];

    fn new(relay: u32) -> Self {
        Self {
            relay,
            servers: ["tansu", "redis-server"]
                .into_iter()
                .filter_map(|name| server_pid(name).map(|pid| (name, pid)))
                .collect(),
        }
    }

    /// Seconds so far, in the order of [`Self::LABELS`] (NaN for a server not found).
    fn snapshot(&self) -> [f64; 5] {
        let server = |name: &str| {
            self.servers
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(f64::NAN, |(_, pid)| cpu_seconds(*pid, None))
        };
        let me = std::process::id();
        let receiver = cpu_seconds(me, Some(RECEIVER_THREADS));
        [
            cpu_seconds(self.relay, None),
            server("tansu"),
            server("redis-server"),
            receiver,
            cpu_seconds(me, None) - receiver,
        ]
    }
}

struct Relay {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
    prefix: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        support::forget_keys(&self.prefix);
    }
}

impl Relay {
    async fn start(kafka: &zhida_runtime::config::KafkaConfig, id: &str, ca_pem: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem).expect("CA written");
        let port = free_port();
        let prefix = format!("bench:{id}:");
        let child = Command::new(env!("CARGO_BIN_EXE_zhida"))
            .args(["serve", "relay"])
            .env("ZHIDA_KAFKA__BROKERS", &kafka.brokers)
            .env("ZHIDA_KAFKA__TOPIC_PREFIX", &kafka.topic_prefix)
            .env("ZHIDA_KAFKA__GROUP_PREFIX", &kafka.group_prefix)
            .env("ZHIDA_STORE__REDIS_URL", var("ZHIDA_TEST_REDIS"))
            .env("ZHIDA_STORE__KEY_PREFIX", &prefix)
            .env("ZHIDA_AUTH__MODE", "off")
            .env("ZHIDA_GRPC__WRITE_RATE_PER_SECOND", "0")
            .env("ZHIDA_GRPC__MAX_STREAMS_PER_CALLER", "100000")
            .env("ZHIDA_GRPC__LISTEN", format!("127.0.0.1:{port}"))
            .env("ZHIDA_TELEMETRY__LOG_FILTER", "warn")
            .env(
                "ZHIDA_RELAY__WEBHOOKS__ALLOW_NETWORKS",
                r#"["127.0.0.0/8"]"#,
            )
            .env(
                "ZHIDA_RELAY__WEBHOOKS__EXTRA_ROOT_CERTS",
                format!("[\"{}\"]", ca.display()),
            )
            .env("ZHIDA_RELAY__WEBHOOKS__MAX_PER_SECOND", "10000")
            .env(
                "ZHIDA_RELAY__WEBHOOKS__CONCURRENCY",
                CONCURRENCY.to_string(),
            )
            .spawn()
            .expect("zhida serve relay");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !serving(&url).await {
            assert!(Instant::now() < deadline, "the relay never became SERVING");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            child,
            url,
            _dir: dir,
            prefix,
        }
    }

    async fn client(&self) -> RelayServiceClient<tonic::transport::Channel> {
        RelayServiceClient::connect(self.url.clone())
            .await
            .expect("connect")
    }

    fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

/// Policy `i` of the run, tagged `tag`.
fn policy(run: &str, i: usize, tag: &str) -> PolicyPublished {
    PolicyPublished {
        policy_id: format!("pol-{run}-{i}"),
        title: format!("杨浦区数字经济企业扶持政策（第{i}号）"),
        summary: "对符合条件的软件和信息服务业企业给予研发投入补贴。".into(),
        tags: vec![tag.into()],
        department: "区科委".into(),
        service_url: "https://zwdt.sh.gov.cn/".into(),
        version: 1,
        published_at: Some(zhida_proto::timestamp_now()),
        ..PolicyPublished::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let subscribers = number("BENCH_RELAY_SUBSCRIBERS", 1_000);
    let policies = number("BENCH_RELAY_POLICIES", 20);
    let rounds = number("BENCH_RELAY_ROUNDS", 5).max(1);
    let streams = number("BENCH_RELAY_STREAMS", 1_000);
    let (id, kafka) = support::namespace("relay", false).await;
    let receiver = Receiver::start();
    let relay = Relay::start(&kafka, &id, &receiver.ca_pem).await;
    let mut client = relay.client().await;
    let producer = Producer::new(&kafka, "/bench/relay").expect("producer");

    // 1. Webhooks to every subscriber.
    let started = Instant::now();
    let mut secrets = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        let answer = client
            .put_subscriber(PutSubscriberRequest {
                subscriber: Some(Subscriber {
                    id: format!("park-{i:04}"),
                    kind: RelaySubscriberKind::Park as i32,
                    display_name: format!("园区 {i}"),
                    scope: format!(r#"{{"tags": ["{WEBHOOK_TAG}"]}}"#),
                    webhook: Some(Webhook {
                        url: format!("{}/{i}", receiver.url),
                        ..Webhook::default()
                    }),
                    ..Subscriber::default()
                }),
            })
            .await
            .expect("registered")
            .into_inner();
        secrets.push(Secret::parse(&answer.webhook_secret).expect("secret"));
    }
    *receiver.secrets.lock().await = secrets.clone();
    for name in ["stream-one", "stream-many"] {
        client
            .put_subscriber(PutSubscriberRequest {
                subscriber: Some(Subscriber {
                    id: name.into(),
                    kind: RelaySubscriberKind::Association as i32,
                    display_name: format!("协会 {name}"),
                    scope: format!(r#"{{"tags": ["{STREAM_TAG}"]}}"#),
                    ..Subscriber::default()
                }),
            })
            .await
            .expect("registered");
    }
    println!(
        "relay bench: {subscribers} subscribers with webhooks registered in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let expected = subscribers * policies;
    let cpu = Cpu::new(relay.child.id());
    let before = cpu.snapshot();
    let started = Instant::now();
    for i in 0..policies {
        let p = policy(&id, i, WEBHOOK_TAG);
        producer.emit(&p.policy_id, &p).await.expect("produced");
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    // The longest time no new delivery arrived (the relay stalled), after the first.
    let (mut seen, mut progress, mut longest_pause) = (0, Instant::now(), Duration::ZERO);
    while seen < expected {
        assert!(
            Instant::now() < deadline,
            "only {seen} of {expected} deliveries in 10 min"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = receiver.tally(|t| t.relayed);
        if now > seen {
            if seen > 0 {
                longest_pause = longest_pause.max(progress.elapsed());
            }
            (seen, progress) = (now, Instant::now());
        }
    }
    let relayed = started.elapsed();
    let relay_cpu = since(cpu.snapshot(), before);
    let (relay_duplicates, relay_connections) = receiver.tally(|t| (t.duplicates, t.connections));
    assert_eq!(receiver.tally(|t| t.refused), 0, "every signature verifies");

    // Baseline: as many signed POSTs straight from the sender.
    let sender = Sender::new(SenderConfig {
        timeout: Duration::from_secs(15),
        extra_root_certs_pem: vec![receiver.ca_pem.clone().into_bytes()],
        guard: Guard::from_config(&["127.0.0.0/8".to_string()]).expect("guard"),
    })
    .expect("sender");
    let body = receiver.tally(|t| t.sample.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let before = cpu.snapshot();
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (sender, next, secrets, body, url) = (
                sender.clone(),
                next.clone(),
                secrets.clone(),
                body.clone(),
                receiver.url.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= expected {
                        return;
                    }
                    let ts = unix_seconds();
                    let secret = &secrets[n % secrets.len()];
                    let msg_id = format!("msg_baseline_{n}");
                    let signature =
                        zhida_webhook::sign(std::slice::from_ref(secret), &msg_id, ts, &body);
                    let attempt = sender
                        .send(
                            &format!("{url}/{}", n % secrets.len()),
                            &msg_id,
                            ts,
                            &signature,
                            body.clone(),
                        )
                        .await;
                    assert!(matches!(attempt, Attempt::Delivered { .. }), "{attempt:?}");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    let direct = started.elapsed();
    let direct_cpu = since(cpu.snapshot(), before);
    let (baseline, duplicates, refused, connections) =
        receiver.tally(|t| (t.baseline, t.duplicates, t.refused, t.connections));
    assert_eq!(
        (baseline, refused),
        (expected, 0),
        "every baseline request verified"
    );
    let rate = |d: Duration| expected as f64 / d.as_secs_f64();
    println!(
        "\n1. webhooks, {policies} policies × {subscribers} subscribers = {expected} signed deliveries, all verified"
    );
    println!("   {:<48} {:>12} {:>14}", "", "deliveries/s", "policies/s");
    println!(
        "   {:<48} {:>12.0} {:>14.2}",
        "relay (policy.events → feeds → queues → HTTPS)",
        rate(relayed),
        policies as f64 / relayed.as_secs_f64()
    );
    println!(
        "   {:<48} {:>12.0} {:>14.2}",
        "baseline: Sender straight to the receiver",
        rate(direct),
        policies as f64 / direct.as_secs_f64()
    );
    println!(
        "   relay / baseline: {:.2}  (same concurrency {CONCURRENCY}, same receiver, same \
         body of {} bytes, keep-alive: {relay_connections} TLS connections for the relay, {})",
        direct.as_secs_f64() / relayed.as_secs_f64(),
        body.len(),
        connections - relay_connections
    );
    println!(
        "   longest pause between two relayed deliveries: {}",
        ms(longest_pause)
    );
    println!(
        "   the relay sent {relay_duplicates} verified deliveries again by the last one's \
         arrival, {} by the baseline's end (webhooks are at least once; the receiver counts \
         each webhook-id once)",
        duplicates
    );
    println!(
        "\n   CPU seconds per 1,000 deliveries {:>13} {:>10}",
        "relay run", "baseline"
    );
    let per_thousand = |s: f64| {
        if s.is_nan() {
            "-".to_string()
        } else {
            format!("{:.3}", 1_000.0 * s / expected as f64)
        }
    };
    for (n, label) in Cpu::LABELS.iter().enumerate() {
        println!(
            "     {label:<32} {:>10} {:>10}",
            per_thousand(relay_cpu[n]),
            per_thousand(direct_cpu[n])
        );
    }
    let all = |c: &[f64; 5]| c.iter().filter(|s| !s.is_nan()).sum::<f64>();
    println!(
        "     {:<32} {:>10} {:>10}",
        "all of them (2 cores = 2 s/s)",
        per_thousand(all(&relay_cpu)),
        per_thousand(all(&direct_cpu))
    );
    println!(
        "     (tansu and Redis: whatever else ran on them meanwhile too; the relay run's bench \
         part produces and polls the count)"
    );

    // 2. and 3. Streams on one subscriber.
    let rss_before = relay.rss_kib();
    let bench_rss_before = rss_kib(std::process::id());
    let mut channels = Vec::new();
    for _ in 0..STREAM_CONNECTIONS.min(streams.max(1)) {
        channels.push(
            tonic::transport::Endpoint::from_shared(relay.url.clone())
                .expect("url")
                .connect()
                .await
                .expect("connect"),
        );
    }
    let mut results = Vec::new();
    let many = format!("{streams} clients");
    for (label, count) in [("baseline: 1 client", 1), (many.as_str(), streams)] {
        let subscriber = if count == 1 {
            "stream-one"
        } else {
            "stream-many"
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
        let opened = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        // Each client first drains what is in the feed (the policies above), then waits.
        let backlog = client
            .pull_feed(PullFeedRequest {
                subscriber_id: subscriber.into(),
                limit: 500,
                ..PullFeedRequest::default()
            })
            .await
            .expect("feed")
            .into_inner()
            .items
            .len();
        for c in 0..count {
            let mut client = RelayServiceClient::new(channels[c % channels.len()].clone());
            let (tx, opened) = (tx.clone(), opened.clone());
            let subscriber = subscriber.to_string();
            handles.push(tokio::spawn(async move {
                let mut stream = client
                    .stream_feed(StreamFeedRequest {
                        subscriber_id: subscriber,
                        ..StreamFeedRequest::default()
                    })
                    .await
                    .expect("stream")
                    .into_inner();
                for _ in 0..backlog {
                    stream.message().await.expect("ok").expect("backlog entry");
                }
                opened.fetch_add(1, Ordering::Relaxed);
                for _ in 0..rounds {
                    let item = stream.message().await.expect("ok").expect("live entry");
                    let _ = tx.send((item.policy_id, Instant::now()));
                }
            }));
        }
        drop(tx);
        while opened.load(Ordering::Relaxed) < count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle_rss = (relay.rss_kib(), rss_kib(std::process::id()));
        // One policy at a time, the next once every client has the last.
        let (mut latencies, mut fan_outs) = (Vec::with_capacity(count * rounds), Vec::new());
        for round in 0..rounds {
            let p = policy(&id, 1_000_000 + count * 100 + round, STREAM_TAG);
            let sent = Instant::now();
            producer.emit(&p.policy_id, &p).await.expect("produced");
            let mut last = sent;
            for _ in 0..count {
                let (policy_id, at) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
                    .await
                    .expect("every client gets the policy within a minute")
                    .expect("clients live");
                assert_eq!(policy_id, p.policy_id, "the entries come in order");
                latencies.push(at - sent);
                last = last.max(at);
            }
            fan_outs.push(last - sent);
            // Rounds apart: the relay idle again before the next.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        for h in handles {
            h.await.expect("client");
        }
        latencies.sort();
        fan_outs.sort();
        results.push((label, count, latencies, fan_outs, idle_rss));
    }
    println!(
        "\n2. StreamFeed fan-out of a new policy, {rounds} policies one after another \
         (produce → each client's receipt)"
    );
    println!(
        "   {:<22} {:>10} {:>10} {:>10} {:>22}",
        "", "p50", "p99", "max", "all clients (median)"
    );
    for (label, _, latencies, fan_outs, _) in &results {
        println!(
            "   {:<22} {:>10} {:>10} {:>10} {:>22}",
            label,
            ms(percentile(latencies, 0.5)),
            ms(percentile(latencies, 0.99)),
            ms(*latencies.last().unwrap_or(&Duration::ZERO)),
            ms(percentile(fan_outs, 0.5)),
        );
    }
    let (_, count, _, _, (idle_rss, bench_idle_rss)) = &results[1];
    let per_stream = |after: u64, before: u64| (after as f64 - before as f64) / *count as f64;
    println!(
        "\n3. memory: relay RSS {rss_before} KiB before, {idle_rss} KiB with {count} idle streams \
         open: {:.1} KiB per idle stream",
        per_stream(*idle_rss, rss_before)
    );
    println!(
        "   client side (this bench, tonic, {} HTTP/2 connections): {bench_rss_before} KiB → \
         {bench_idle_rss} KiB, {:.1} KiB per stream",
        channels.len(),
        per_stream(*bench_idle_rss, bench_rss_before)
    );
}

/// What each process spent between two CPU snapshots.
fn since(after: [f64; 5], before: [f64; 5]) -> [f64; 5] {
    let mut spent = after;
    for (s, b) in spent.iter_mut().zip(before) {
        *s -= b;
    }
    spent
}
