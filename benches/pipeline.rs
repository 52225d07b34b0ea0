//! `just bench-pipeline`: the whole pipeline, measured from outside (issue 9.3). Real
//! tansu and Redis (started by `deploy/servers.sh`), an smtp-sink of its own (the same
//! Postfix program and flags as `deploy/servers.sh` starts, on a free port, dumping into a
//! temporary directory, so its files and CPU are this bench's alone), and `zhida` processes
//! started by the bench in two layouts: `zhida serve all`, then `zhida serve all` plus a
//! second `zhida serve notifier` (the two notifiers share `delivery.requests`'
//! `kafka.partitions`, 3 by default, in one consumer group).
//!
//! Each layout, on its own topics and keys:
//!
//! 1. loads `BENCH_PIPELINE_PROFILES` citizens (default 100,000; each with an email address
//!    and a subscription to the tag `employment`) with `zhida import --file`, and waits
//!    until `PreviewAudience` counts every one of them;
//! 2. publishes one policy tagged `employment` and waits until the sink holds one file per
//!    subscriber: emails/s is the count over the span from the `Publish` call to the
//!    last file's mtime (also shown from the first file's, "sustained"); every file's
//!    `Message-ID` is read to check that there is no loss and no duplicate (a few seconds
//!    are waited past the last one for late duplicates);
//! 3. publishes `BENCH_PIPELINE_LATENCY` (default 50) policies one after another, each
//!    from a department only one subscriber's filter lets through, and times the `Publish`
//!    call to the email file's mtime (the directory is polled every 2 ms; mtimes come from
//!    the kernel's coarse clock, a few ms);
//! 4. reads utime + stime of each process (`/proc/<pid>/stat`) before and after the
//!    fan-out: CPU seconds per 1,000 emails of the `zhida` processes, tansu, redis-server,
//!    the sink and this bench (which only polls the directory's length once a second).
//!
//! Beside them, in the same run: Postfix's `smtp-source` sending as many messages of the
//! pipeline's mean size into the same sink over 8 sessions (the notifier's default
//! `smtp.max_connections`), each reusing its connection; and librdkafka's raw rate on the
//! same broker for as many `DeliveryRequested` records of the pipeline's size: produced by
//! the producer every service uses (1,000 awaited together, the default
//! `kafka.one_record_per_batch`), then consumed from the start by one consumer.
//!
//! tansu and Redis are shared with whatever else runs on the machine: their CPU figures
//! include it. Everything the bench starts is killed when it ends, also on a panic.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use rdkafka::{
    ClientConfig, Message as _,
    consumer::{Consumer, StreamConsumer},
};
use support::{cpu_seconds, free_port, number, server_pid, serving, var};
use zhida_bus::{Producer, Topic, Topics};
use zhida_proto::{
    events::v1::PolicyContent,
    events::v1::{Channel, DeliveryRequested, Profile, Subscription},
    policy::v1::{
        CreateDraftRequest, Decision, PublishRequest, ReviewRequest, SubmitForReviewRequest,
        policy_service_client::PolicyServiceClient,
    },
    profile::v1::{
        PolicyDraft, PreviewAudienceRequest, profile_service_client::ProfileServiceClient,
    },
};
use zhida_runtime::config::KafkaConfig;

mod support;

const TAG: &str = "employment";
const DEPARTMENT: &str = "区人力资源社会保障局";
const TITLE: &str = "杨浦区高校毕业生就业见习补贴";
const BODY: &str = "离校2年内未就业高校毕业生参加就业见习的，按规定给予见习补贴。\
                    见习期间，见习单位按不低于本市最低工资标准的80%支付见习人员基本生活费。";

/// The tag of the latency policies: subscriber `i` follows it only for policies of
/// [`department`]`(i)` (a subscription filter), so each of them has one recipient.
const LATENCY_TAG: &str = "housing";

fn department(i: usize) -> String {
    format!("区测试局{i:02}")
}

/// Citizen `i` of a run ([`support::citizen`]: subscribed to [`TAG`] by email); the first
/// `latency` also follow [`LATENCY_TAG`] from their own [`department`].
fn citizen(run: &str, i: usize, latency: usize) -> Profile {
    let mut profile = support::citizen(run, i);
    if i < latency {
        profile.subscriptions.push(Subscription {
            tags: vec![LATENCY_TAG.into()],
            channels: vec![Channel::Email as i32],
            filter: format!(r#"{{"department": ["{}"]}}"#, department(i)),
            ..Subscription::default()
        });
    }
    profile
}

/// A child process killed (and reaped) when dropped, whatever ends the bench.
struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    fn spawn(name: &str, command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        Self {
            name: name.into(),
            child,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This bench's smtp-sink: the flags of `deploy/servers.sh`, its own port and directory.
struct Sink {
    process: Proc,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut command = Command::new("/usr/sbin/smtp-sink");
        if is_root() {
            command.args(["-u", "root"]); // smtp-sink insists on -u when run as root
        }
        command
            .args(["-m", "1024", "-d"])
            .arg(format!("{}/%Y%m%d-%H%M%S.", dir.path().display()))
            .arg(format!("127.0.0.1:{port}"))
            .arg("1024")
            .stdout(Stdio::null());
        let process = Proc::spawn("smtp-sink", &mut command);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "smtp-sink never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { process, port, dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.path())
            .expect("dump dir")
            .flatten()
            .map(|e| e.path())
            .collect()
    }

    fn count(&self) -> usize {
        std::fs::read_dir(self.path()).expect("dump dir").count()
    }

    fn clear(&self) {
        for file in self.files() {
            let _ = std::fs::remove_file(file);
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// What the sink's files say: one entry per file.
struct Dump {
    files: usize,
    message_ids: HashMap<String, usize>,
    first: SystemTime,
    last: SystemTime,
    bytes: u64,
}

impl Dump {
    fn read(paths: &[PathBuf]) -> Self {
        let mut dump = Dump {
            files: 0,
            message_ids: HashMap::new(),
            first: SystemTime::now() + Duration::from_secs(86_400),
            last: SystemTime::UNIX_EPOCH,
            bytes: 0,
        };
        for path in paths {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            let text = std::fs::read(path).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            dump.files += 1;
            dump.bytes += meta.len();
            let modified = meta.modified().expect("mtime");
            dump.first = dump.first.min(modified);
            dump.last = dump.last.max(modified);
            let id = text
                .lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| {
                    l.get(..11)
                        .filter(|k| k.eq_ignore_ascii_case("message-id:"))
                        .map(|_| l[11..].trim().to_string())
                })
                .unwrap_or_default();
            *dump.message_ids.entry(id).or_default() += 1;
        }
        dump
    }

    fn duplicates(&self) -> usize {
        self.message_ids.values().map(|n| n - 1).sum()
    }
}

/// The processes whose CPU is accounted, by label.
struct Cpu {
    pids: Vec<(String, u32)>,
}

impl Cpu {
    fn snapshot(&self) -> Vec<f64> {
        self.pids
            .iter()
            .map(|(_, pid)| cpu_seconds(*pid, None))
            .collect()
    }
}

/// What one layout measured.
struct Outcome {
    layout: String,
    expected: usize,
    dump: Dump,
    late: usize,
    publish_to_last: f64,
    publish_to_first: f64,
    cpu: Vec<(String, f64)>,
    latencies: Vec<f64>,
    import_per_second: f64,
    mean_size: u64,
}

impl Outcome {
    fn emails_per_second(&self) -> f64 {
        self.dump.message_ids.len() as f64 / self.publish_to_last.max(1e-3)
    }

    fn sustained(&self) -> f64 {
        self.dump.message_ids.len() as f64
            / (self.publish_to_last - self.publish_to_first).max(1e-3)
    }
}

/// One layout's namespace on the shared servers, its settings and processes.
struct Run {
    id: String,
    envs: Vec<(String, String)>,
    processes: Vec<Proc>,
    url: String,
}

impl Drop for Run {
    /// Stops its processes, then deletes its keys.
    fn drop(&mut self) {
        self.processes.clear();
        support::forget_keys(&format!("bench:{}:", self.id));
    }
}

impl Run {
    async fn new(name: &str, sink: &Sink) -> Self {
        let (id, kafka) =
            support::namespace(name, KafkaConfig::default().one_record_per_batch).await;
        let prefix = kafka.topic_prefix.clone();
        let envs = [
            ("ZHIDA_KAFKA__BROKERS", kafka.brokers.clone()),
            ("ZHIDA_KAFKA__TOPIC_PREFIX", prefix.clone()),
            ("ZHIDA_KAFKA__GROUP_PREFIX", prefix),
            ("ZHIDA_STORE__REDIS_URL", var("ZHIDA_TEST_REDIS")),
            ("ZHIDA_STORE__KEY_PREFIX", format!("bench:{id}:")),
            ("ZHIDA_SMTP__HOST", "127.0.0.1".into()),
            ("ZHIDA_SMTP__PORT", sink.port.to_string()),
            ("ZHIDA_GRPC__WRITE_RATE_PER_SECOND", "0".into()),
            ("ZHIDA_AUTH__MODE", "off".into()),
            ("ZHIDA_TELEMETRY__LOG_FILTER", "warn".into()),
            (
                "ZHIDA_UNSUBSCRIBE__BASE_URL",
                "https://zhida.bench.example.cn/u/".into(),
            ),
            (
                "ZHIDA_UNSUBSCRIBE__KEYS",
                r#"[{id="bench",secret="zhida-bench-unsubscribe-secret-0123456789"}]"#.into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self {
            id,
            envs,
            processes: Vec::new(),
            url: String::new(),
        }
    }

    /// Starts `zhida serve <service>` and waits until it is SERVING; the first one's
    /// address is the run's.
    async fn serve(&mut self, service: &str) {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let mut process = Proc::spawn(
            &format!("zhida serve {service}"),
            Command::new(env!("CARGO_BIN_EXE_zhida"))
                .args(["serve", service])
                .envs(self.envs.iter().map(|(k, v)| (k, v)))
                .env("ZHIDA_GRPC__LISTEN", format!("127.0.0.1:{port}")),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while !serving(&url).await {
            process.check_alive();
            assert!(Instant::now() < deadline, "{url} never became SERVING");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if self.url.is_empty() {
            self.url = url;
        }
        self.processes.push(process);
    }

    async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    /// `zhida import --file` of `count` citizens: profiles/s, start to exit.
    fn import(&self, count: usize, latency: usize) -> f64 {
        support::import(&self.url, (0..count).map(|i| citizen(&self.id, i, latency)))
    }

    /// Deliveries `PreviewAudience` counts for a policy of `department` tagged `tag`.
    async fn audience(&self, tag: &str, department: &str) -> u64 {
        ProfileServiceClient::new(self.channel().await)
            .preview_audience(PreviewAudienceRequest {
                sample_size: 1,
                policy: Some(PolicyDraft {
                    tags: vec![tag.into()],
                    department: department.into(),
                    title: TITLE.into(),
                    ..PolicyDraft::default()
                }),
            })
            .await
            .map(|r| r.into_inner().deliveries)
            .unwrap_or(0)
    }

    /// Publishes a policy of `department` tagged `tag` through its lifecycle (draft,
    /// submission, approval, publication); the time `Publish` was called. The clock starts
    /// there: drafting and review are people's work, not the pipeline's; and not at its
    /// return, which waits for the publisher's own fold of the event, while the pipeline
    /// is already under way (emails arrive before it).
    async fn publish(&self, tag: &str, department: &str, n: usize) -> SystemTime {
        // `auth.mode = "off"`: every caller is the anonymous operator, who names the
        // department and may both submit and approve.
        let mut client = PolicyServiceClient::new(self.channel().await);
        let draft = client
            .create_draft(CreateDraftRequest {
                request_id: format!("{}-{tag}-{n}", self.id),
                content: Some(PolicyContent {
                    title: TITLE.into(),
                    body: BODY.into(),
                    tags: vec![tag.into()],
                    service_url: "https://zwdt.sh.gov.cn/".into(),
                    ..PolicyContent::default()
                }),
                faqs: Vec::new(),
                department: department.into(),
            })
            .await
            .expect("drafted")
            .into_inner();
        let submitted = client
            .submit_for_review(SubmitForReviewRequest {
                policy_id: draft.policy_id,
                expected_generation: draft.generation,
            })
            .await
            .expect("submitted")
            .into_inner();
        // The bench's own text has nothing for the review gate to find; acknowledging
        // whatever it might find keeps the bench measuring delivery, not review.
        let approved = client
            .review(ReviewRequest {
                policy_id: submitted.policy_id.clone(),
                expected_generation: submitted.generation,
                decision: Decision::Approve as i32,
                comment: String::new(),
                acknowledge_findings: submitted
                    .findings
                    .iter()
                    .map(|f| f.finding_id.clone())
                    .collect(),
            })
            .await
            .expect("approved")
            .into_inner()
            .policy
            .expect("the approved policy");
        let called = SystemTime::now();
        client
            .publish(PublishRequest {
                policy_id: approved.policy_id,
                expected_generation: approved.generation,
                publish_at: None,
            })
            .await
            .expect("published");
        called
    }

    fn check_alive(&mut self) {
        for process in &mut self.processes {
            process.check_alive();
        }
    }
}

fn since(earlier: SystemTime, later: SystemTime) -> f64 {
    match later.duration_since(earlier) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// One layout: `notifiers` extra `zhida serve notifier` processes beside `serve all`.
async fn layout(
    name: &str,
    extra_notifiers: usize,
    count: usize,
    latency: usize,
    sink: &Sink,
) -> Outcome {
    // Subject ids take A-Z a-z 0-9 _ . : - only.
    let mut run = Run::new(&name.replace('+', "-"), sink).await;
    run.serve("all").await;
    for _ in 0..extra_notifiers {
        run.serve("notifier").await;
    }
    eprintln!("[{}] importing {count} profiles", run.id);
    let import_per_second = run.import(count, latency);
    let deadline = Instant::now() + Duration::from_secs(600);
    while run.audience(TAG, DEPARTMENT).await < count as u64 {
        run.check_alive();
        assert!(Instant::now() < deadline, "the profiler never indexed them");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut pids: Vec<(String, u32)> = run
        .processes
        .iter()
        .map(|p| (p.name.clone(), p.pid()))
        .collect();
    for server in ["tansu", "redis-server"] {
        if let Some(pid) = server_pid(server) {
            pids.push((server.into(), pid));
        }
    }
    pids.push(("smtp-sink".into(), sink.process.pid()));
    pids.push(("this bench".into(), std::process::id()));
    let cpu = Cpu { pids };

    sink.clear();
    eprintln!("[{}] fan-out to {count}", run.id);
    let before = cpu.snapshot();
    let published = run.publish(TAG, DEPARTMENT, 0).await;
    let (mut seen, mut progress) = (0, Instant::now());
    while seen < count {
        tokio::time::sleep(Duration::from_secs(1)).await;
        run.check_alive();
        let now = sink.count();
        if now > seen {
            progress = Instant::now();
        }
        seen = now;
        if progress.elapsed() > Duration::from_secs(60) {
            eprintln!("[{}] stalled at {seen} of {count} emails", run.id);
            break;
        }
    }
    let after = cpu.snapshot();
    // Late duplicates would arrive now.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let files = sink.files();
    let late = files.len().saturating_sub(seen);
    let dump = Dump::read(&files);
    let mean_size = dump.bytes / dump.files.max(1) as u64;
    let outcome_cpu = cpu
        .pids
        .iter()
        .zip(before.iter().zip(&after))
        .map(|((label, _), (b, a))| (label.clone(), a - b))
        .collect();
    sink.clear();

    eprintln!("[{}] {latency} single-recipient policies", run.id);
    let mut latencies = Vec::new();
    for i in 0..latency {
        let department = department(i);
        assert_eq!(
            run.audience(LATENCY_TAG, &department).await,
            1,
            "one recipient of {department}"
        );
        let published = run.publish(LATENCY_TAG, &department, i + 1).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let file = loop {
            if let Some(file) = sink.files().pop() {
                break file;
            }
            run.check_alive();
            assert!(Instant::now() < deadline, "policy {i}'s email never came");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        // smtp-sink writes as it receives: the last write is the message complete.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let modified = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .expect("mtime");
        latencies.push(since(published, modified));
        sink.clear();
    }
    Outcome {
        layout: name.into(),
        expected: count,
        publish_to_first: since(published, dump.first),
        publish_to_last: since(published, dump.last),
        dump,
        late,
        cpu: outcome_cpu,
        latencies,
        import_per_second,
        mean_size,
    }
}

/// `smtp-source` of `count` messages of `size` bytes over `sessions` sessions into the
/// sink: messages/s start to exit, and the sink's CPU seconds per 1,000.
fn smtp_source(sink: &Sink, count: usize, size: u64, sessions: usize) -> (f64, usize, f64) {
    sink.clear();
    let before = cpu_seconds(sink.process.pid(), None);
    let started = Instant::now();
    let output = Command::new("/usr/sbin/smtp-source")
        .args(["-d", "-s", &sessions.to_string(), "-m", &count.to_string()])
        .args(["-l", &size.to_string()])
        .args(["-f", "bench@example.cn", "-t", "sink@example.cn"])
        .arg(format!("127.0.0.1:{}", sink.port))
        .output()
        .expect("smtp-source");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "smtp-source failed: {output:?}");
    let sink_cpu = cpu_seconds(sink.process.pid(), None) - before;
    // smtp-sink may still be writing the last files.
    std::thread::sleep(Duration::from_millis(500));
    let received = sink.count();
    sink.clear();
    (
        count as f64 / elapsed,
        received,
        1_000.0 * sink_cpu / count as f64,
    )
}

/// Raw records/s of `count` `DeliveryRequested` records like `request` on the broker:
/// (produce, consume, both one after the other).
async fn raw_kafka(count: usize, request: &DeliveryRequested) -> (f64, f64, f64) {
    let (id, kafka) = support::namespace("raw", KafkaConfig::default().one_record_per_batch).await;
    let prefix = kafka.topic_prefix.clone();
    let producer = Producer::new(&kafka, "/bench").expect("producer");
    let requests: Vec<DeliveryRequested> = (0..count)
        .map(|i| DeliveryRequested {
            recipient_id: format!("{id}-c{i:07}"),
            address: format!("c{i:07}.{id}@example.cn"),
            ..request.clone()
        })
        .collect();
    let started = Instant::now();
    for chunk in requests.chunks(1_000) {
        let sends = chunk.iter().map(|r| producer.emit(&r.recipient_id, r));
        for result in futures::future::join_all(sends).await {
            result.expect("produced");
        }
    }
    let produce = started.elapsed().as_secs_f64();

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", format!("{prefix}reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&[&Topics::new(&kafka).name(Topic::DeliveryRequests)])
        .expect("subscribe");
    let started = Instant::now();
    let mut seen = 0;
    while seen < count {
        match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
            Ok(Ok(message)) if message.payload().is_some() => seen += 1,
            Ok(_) => {}
            Err(_) => panic!("consumed {seen} of {count} records"),
        }
    }
    let consume = started.elapsed().as_secs_f64();
    (
        count as f64 / produce,
        count as f64 / consume,
        count as f64 / (produce + consume),
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let count = number("BENCH_PIPELINE_PROFILES", 100_000);
    let latency = number("BENCH_PIPELINE_LATENCY", 50).min(count);
    let sessions = 8;
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    println!(
        "Pipeline on this host (tansu, Redis, smtp-sink, zhida): {count} email subscribers of \
         one tag, one policy; {latency} single-recipient policies; kafka.one_record_per_batch = \
         {}; commit {}{}",
        KafkaConfig::default().one_record_per_batch,
        commit(),
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        }
    );
    println!(
        "load average before: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let sink = Sink::start();
    let all = layout("all", 0, count, latency, &sink).await;
    let (source, received, source_sink_cpu) = smtp_source(&sink, count, all.mean_size, sessions);
    let request = DeliveryRequested {
        policy_id: "pol-0123456789abcdef".into(),
        channel: Channel::Email as i32,
        recipient_name: "王芳".into(),
        title: TITLE.into(),
        body: BODY.into(),
        department: DEPARTMENT.into(),
        service_url: "https://zwdt.sh.gov.cn/".into(),
        reason: format!("您订阅了政策标签“{TAG}”"),
        language: "zh".into(),
        subscription_id: "sub-0123456789abcdef".into(),
        ..DeliveryRequested::default()
    };
    let (produce, consume, kafka) = raw_kafka(count, &request).await;
    let split = layout("all+notifier", 1, count, latency, &sink).await;

    println!();
    println!(
        "Raw baselines: smtp-source -d -s {sessions} of {count} messages of {} bytes: {source:.0}/s \
         ({received} received; sink {source_sink_cpu:.3} CPU s per 1,000); librdkafka, \
         {count} DeliveryRequested of {} bytes: produce {produce:.0}/s, consume {consume:.0}/s, \
         produce+consume {kafka:.0}/s",
        all.mean_size,
        prost::Message::encoded_len(&request) + 40,
    );
    println!();
    let outcomes = [&all, &split];
    let row = |label: &str, values: Vec<String>| {
        print!("{label:<42}");
        for v in values {
            print!(" {v:>20}");
        }
        println!();
    };
    row(
        "",
        outcomes
            .iter()
            .map(|o| format!("serve {}", o.layout))
            .collect(),
    );
    let each = |f: &dyn Fn(&Outcome) -> String| outcomes.iter().map(|o| f(o)).collect();
    row(
        "import profiles/s",
        each(&|o| format!("{:.0}", o.import_per_second)),
    );
    row(
        "emails (distinct Message-IDs / files)",
        each(&|o| format!("{} / {}", o.dump.message_ids.len(), o.dump.files)),
    );
    row(
        "lost / duplicated / after the count",
        each(&|o| {
            format!(
                "{} / {} / {}",
                o.expected.saturating_sub(o.dump.message_ids.len()),
                o.dump.duplicates(),
                o.late
            )
        }),
    );
    row(
        "emails/s, publish → last",
        each(&|o| format!("{:.0}", o.emails_per_second())),
    );
    row(
        "emails/s, first → last (sustained)",
        each(&|o| format!("{:.0}", o.sustained())),
    );
    row(
        "  share of smtp-source",
        each(&|o| format!("{:.1}%", 100.0 * o.emails_per_second() / source)),
    );
    row(
        "  share of raw produce+consume",
        each(&|o| format!("{:.1}%", 100.0 * o.emails_per_second() / kafka)),
    );
    row(
        "fan-out: publish → first email, s",
        each(&|o| format!("{:.3}", o.publish_to_first)),
    );
    row(
        "fan-out: publish → last email, s",
        each(&|o| format!("{:.3}", o.publish_to_last)),
    );
    let latency_of = |o: &Outcome, p: f64| {
        let mut sorted = o.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        format!("{:.0}", 1_000.0 * percentile(&sorted, p))
    };
    row(
        "1 recipient: publish → email p50, ms",
        each(&|o| latency_of(o, 50.0)),
    );
    row(
        "1 recipient: publish → email p99, ms",
        each(&|o| latency_of(o, 99.0)),
    );
    row("1 recipient: max, ms", each(&|o| latency_of(o, 100.0)));
    println!("CPU seconds per 1,000 emails during the fan-out:");
    let mut labels: Vec<String> = Vec::new();
    for o in &outcomes {
        for (label, _) in &o.cpu {
            if !labels.contains(label) {
                labels.push(label.clone());
            }
        }
    }
    for label in labels {
        row(
            &format!("  {label}"),
            each(&|o| {
                let emails = o.dump.message_ids.len().max(1) as f64;
                let seconds: f64 = o
                    .cpu
                    .iter()
                    .filter(|(l, _)| *l == label)
                    .map(|(_, s)| s)
                    .sum();
                if o.cpu.iter().any(|(l, _)| *l == label) {
                    format!("{:.3}", 1_000.0 * seconds / emails)
                } else {
                    "-".into()
                }
            }),
        );
    }
    row(
        "  all of them, per 1,000 (2 cores = 2 s/s)",
        each(&|o| {
            let emails = o.dump.message_ids.len().max(1) as f64;
            let total: f64 = o.cpu.iter().map(|(_, s)| s).sum();
            format!("{:.3}", 1_000.0 * total / emails)
        }),
    );
}
