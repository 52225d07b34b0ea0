//! `just bench-relay`: the "政府+" relay measured from outside (issue #11). Real tansu and
//! Redis (`deploy/servers.sh`), one `zhida serve relay` started by the bench (auth off,
//! webhooks allowed to loopback and trusting the bench's own CA), and, in the bench:
//!
//! 1. **webhooks**: `BENCH_RELAY_SUBSCRIBERS` (1,000) subscribers each with a webhook to one
//!    HTTPS receiver on 127.0.0.1 (keep-alive, verifies every signature); the bench produces
//!    `BENCH_RELAY_POLICIES` (10) `PolicyPublished` straight onto `policy.events` and times
//!    the first produce to the last verified delivery: policies/s and deliveries/s, signing
//!    included. Baseline, same run: as many signed POSTs sent by `zhida_webhook::Sender`
//!    straight to the same receiver at the relay's concurrency (no broker, no Redis).
//! 2. **streams**: `BENCH_RELAY_STREAMS` (1,000) `StreamFeed` clients on one subscriber
//!    (64 HTTP/2 connections), then one policy: the latency from its produce to each
//!    client's receipt (p50/p99/max); baseline: the same with one client.
//! 3. **memory per idle stream**: the relay's RSS (`/proc/<pid>/status`) before and after
//!    the streams opened and idle, over their count.
//!
//! Everything the bench starts is stopped when it ends.

mod support;

use std::{
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
use support::{free_port, number, serving, var};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::Mutex,
};
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
use zhida_webhook::{Attempt, Guard, Secret, Sender, SenderConfig};

/// Endpoints one relay (and the baseline) sends to at once.
const CONCURRENCY: usize = 256;
/// HTTP/2 connections the stream clients share.
const STREAM_CONNECTIONS: usize = 64;

/// The bench's HTTPS receiver: counts requests whose signature verifies.
struct Receiver {
    url: String,
    ca_pem: String,
    secrets: Arc<Mutex<Vec<Secret>>>,
    verified: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> Self {
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
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let secrets: Arc<Mutex<Vec<Secret>>> = Arc::default();
        let (verified, refused) = (Arc::<AtomicUsize>::default(), Arc::<AtomicUsize>::default());
        let (keys, ok, bad) = (secrets.clone(), verified.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, keys, ok, bad) =
                    (acceptor.clone(), keys.clone(), ok.clone(), bad.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // Requests one after another on the connection (keep-alive).
                    let mut buffer = Vec::new();
                    while let Some((headers, body)) = read_request(&mut tls, &mut buffer).await {
                        let header = |name: &str| {
                            headers
                                .iter()
                                .find(|(k, _)| k == name)
                                .map_or(String::new(), |(_, v)| v.clone())
                        };
                        let now = i64::try_from(
                            SystemTime::now()
                                .duration_since(UNIX_EPOCH)
                                .unwrap_or_default()
                                .as_secs(),
                        )
                        .unwrap_or(i64::MAX);
                        let good = zhida_webhook::verify(
                            &keys.lock().await,
                            &header("webhook-id"),
                            &header("webhook-timestamp"),
                            &header("webhook-signature"),
                            &body,
                            now,
                            300,
                        )
                        .is_ok();
                        let status = if good {
                            ok.fetch_add(1, Ordering::Relaxed);
                            "204 No Content"
                        } else {
                            bad.fetch_add(1, Ordering::Relaxed);
                            "401 Unauthorized"
                        };
                        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                        if tls.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            url: format!("https://127.0.0.1:{port}/hooks"),
            ca_pem: ca.pem(),
            secrets,
            verified,
            refused,
        }
    }

    fn reset(&self) {
        self.verified.store(0, Ordering::Relaxed);
        self.refused.store(0, Ordering::Relaxed);
    }
}

/// One request off `stream` (what is left of the last read stays in `buffer`).
async fn read_request(
    stream: &mut (impl AsyncReadExt + Unpin),
    buffer: &mut Vec<u8>,
) -> Option<(Vec<(String, String)>, Vec<u8>)> {
    let mut chunk = [0u8; 16384];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = buffer[end..end + length].to_vec();
    buffer.drain(..end + length);
    Some((headers, body))
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
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

fn policy(run: &str, i: usize) -> PolicyPublished {
    PolicyPublished {
        policy_id: format!("pol-{run}-{i}"),
        title: format!("杨浦区数字经济企业扶持政策（第{i}号）"),
        summary: "对符合条件的软件和信息服务业企业给予研发投入补贴。".into(),
        tags: vec!["digital-economy".into()],
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
    let policies = number("BENCH_RELAY_POLICIES", 10);
    let streams = number("BENCH_RELAY_STREAMS", 1_000);
    let (id, kafka) = support::namespace("relay", false).await;
    let receiver = Receiver::start().await;
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
                    scope: r#"{"tags": ["digital-economy"]}"#.into(),
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
    println!(
        "relay bench: {subscribers} subscribers with webhooks registered in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let expected = subscribers * policies;
    receiver.reset();
    let started = Instant::now();
    for i in 0..policies {
        let p = policy(&id, i);
        producer.emit(&p.policy_id, &p).await.expect("produced");
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while receiver.verified.load(Ordering::Relaxed) < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} deliveries in 10 min",
            receiver.verified.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let relayed = started.elapsed();
    assert_eq!(
        receiver.refused.load(Ordering::Relaxed),
        0,
        "every signature verifies"
    );

    // Baseline: as many signed POSTs straight from the sender.
    receiver.reset();
    let sender = Sender::new(SenderConfig {
        timeout: Duration::from_secs(15),
        extra_root_certs_pem: vec![receiver.ca_pem.clone().into_bytes()],
        guard: Guard::from_config(&["127.0.0.0/8".to_string()]).expect("guard"),
    })
    .expect("sender");
    let body = br#"{"type":"policy.relayed","data":{"policyId":"pol-baseline"}}"#.to_vec();
    let next = Arc::new(AtomicUsize::new(0));
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
                    let ts = i64::try_from(
                        SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default()
                            .as_secs(),
                    )
                    .unwrap_or(0);
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
        "   relay / baseline: {:.2}  (same concurrency {CONCURRENCY}, same receiver, keep-alive)",
        direct.as_secs_f64() / relayed.as_secs_f64()
    );

    // 2. and 3. Streams on one subscriber.
    let rss_before = relay.rss_kib();
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
        let subscriber = if count == 1 { "park-0000" } else { "park-0001" };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
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
                let _ = stream.message().await.expect("ok").expect("live entry");
                let _ = tx.send((c, Instant::now()));
            }));
        }
        drop(tx);
        while opened.load(Ordering::Relaxed) < count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle_rss = relay.rss_kib();
        let p = policy(&id, 1_000_000 + count);
        let sent = Instant::now();
        producer.emit(&p.policy_id, &p).await.expect("produced");
        let mut latencies = Vec::with_capacity(count);
        while let Some((_, at)) = rx.recv().await {
            latencies.push(at - sent);
        }
        for h in handles {
            h.await.expect("client");
        }
        latencies.sort();
        results.push((label, count, latencies, idle_rss));
    }
    println!("\n2. StreamFeed fan-out of one new policy (produce → each client's receipt)");
    println!("   {:<22} {:>10} {:>10} {:>10}", "", "p50", "p99", "max");
    for (label, _, latencies, _) in &results {
        println!(
            "   {:<22} {:>10} {:>10} {:>10}",
            label,
            ms(percentile(latencies, 0.5)),
            ms(percentile(latencies, 0.99)),
            ms(*latencies.last().unwrap_or(&Duration::ZERO))
        );
    }
    let (_, count, _, idle_rss) = &results[1];
    println!(
        "\n3. memory: relay RSS {} KiB before, {} KiB with {count} idle streams open: {:.1} KiB per idle stream",
        rss_before,
        idle_rss,
        (*idle_rss as f64 - rss_before as f64) / *count as f64
    );
}
