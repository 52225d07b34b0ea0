//! What the root crate's benchmarks share: their settings from the environment, free
//! ports, a `zhida` server's health, and the citizens they load.

#![allow(dead_code)] // each bench uses its own part

use std::{
    net::TcpListener,
    process::Command,
    time::{Duration, Instant},
};

use redis::Commands as _;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use zhida_proto::events::v1::{
    Channel, Citizen, Contact, Profile, SubjectKind, Subscription, profile::Details,
};

/// A setting `deploy/servers.sh env` exports; the bench's `just` recipe starts the servers.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the bench by its `just bench-…` recipe (it starts the servers)"
        )
    })
}

/// A count from the environment, or `default`.
pub fn number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Whether the `zhida` at `url` answers gRPC health with SERVING.
pub async fn serving(url: &str) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(url.to_string()) else {
        return false;
    };
    let Ok(channel) = endpoint
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
    else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
}

const STREETS: [&str; 4] = ["五角场街道", "殷行街道", "长白新村街道", "新江湾城街道"];

/// Citizen `i` of a run, as a directory would send it: an email address with consent and
/// a subscription to `employment` by email.
pub fn citizen(run: &str, i: usize) -> Profile {
    Profile {
        subject_id: format!("{run}-c{i:07}"),
        kind: SubjectKind::Citizen as i32,
        display_name: "王芳".into(),
        street: STREETS[i % STREETS.len()].into(),
        contacts: vec![Contact {
            channel: Channel::Email as i32,
            address: format!("c{i:07}.{run}@example.cn"),
            consent: true,
            ..Contact::default()
        }],
        subscriptions: vec![Subscription {
            tags: vec!["employment".into()],
            channels: vec![Channel::Email as i32],
            ..Subscription::default()
        }],
        details: Some(Details::Citizen(Citizen {
            birth_year: 1960 + (i % 45) as u32,
            ..Citizen::default()
        })),
    }
}

/// `zhida import --file` of `profiles` (written as JSON lines first) into the profiler at
/// `url`: profiles/s from the command's start to its exit, which must be a success.
pub fn import(url: &str, profiles: impl ExactSizeIterator<Item = Profile>) -> f64 {
    let count = profiles.len();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("profiles.jsonl");
    let mut text = String::with_capacity(count * 400);
    for profile in profiles {
        let line = zhida_proto::json::to_value("zhida.events.v1.Profile", &profile).expect("json");
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(&file, text).expect("file");
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_zhida"))
        .args(["import", "--file"])
        .arg(&file)
        .args(["--target", url])
        .output()
        .expect("zhida import");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "zhida import failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    count as f64 / elapsed
}

/// Deletes every key under `prefix` in the test Redis, so a bench's hundreds of thousands
/// of keys (profiles' data keys, leases, the ledger) do not stay behind in the Redis the
/// tests share (their `KEYS` scans time out once millions pile up). Best effort: a bench
/// that cannot reach Redis here has nothing more to lose.
pub fn forget_keys(prefix: &str) {
    let Ok(mut redis) =
        redis::Client::open(var("ZHIDA_TEST_REDIS")).and_then(|c| c.get_connection())
    else {
        return;
    };
    let keys: Vec<String> = match redis.scan_match::<_, String>(format!("{prefix}*")) {
        Ok(keys) => keys.filter_map(Result::ok).collect(),
        Err(_) => return,
    };
    for chunk in keys.chunks(1000) {
        let _: redis::RedisResult<()> = redis::cmd("UNLINK").arg(chunk).query(&mut redis);
    }
}

/// A fresh id, and topic and group prefixes of its own on the shared broker, its topics
/// created.
pub async fn namespace(
    name: &str,
    one_record_per_batch: bool,
) -> (String, zhida_runtime::config::KafkaConfig) {
    let id = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let prefix = format!("bench-{id}.");
    let kafka = zhida_runtime::config::KafkaConfig {
        brokers: var("ZHIDA_TEST_KAFKA"),
        topic_prefix: prefix.clone(),
        group_prefix: prefix,
        one_record_per_batch,
        ..zhida_runtime::config::KafkaConfig::default()
    };
    zhida_bus::ensure_topics(&kafka).await.expect("topics");
    (id, kafka)
}

/// utime + stime, in clock ticks, from a `/proc/…/stat` line.
fn stat_ticks(stat: &str) -> u64 {
    // Fields after the command's closing parenthesis: state is 3rd, utime 14th, stime 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 where it cannot be asked).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    });
    *TICKS
}

/// utime + stime, in seconds, of process `pid`, or of those of its threads named `thread`.
pub fn cpu_seconds(pid: u32, thread: Option<&str>) -> f64 {
    let ticks: u64 = match thread {
        None => {
            stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
        }
        Some(name) => std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .map(|task| {
                stat_ticks(&std::fs::read_to_string(task.path().join("stat")).unwrap_or_default())
            })
            .sum(),
    };
    ticks as f64 / clock_ticks()
}

/// A server process of `deploy/servers.sh`: from its pid file, else the oldest by name.
pub fn server_pid(name: &str) -> Option<u32> {
    let run_dir = std::env::var("ZHIDA_RUN_DIR").unwrap_or_else(|_| "/tmp/zhida-servers".into());
    std::fs::read_to_string(format!("{run_dir}/{name}.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        .or_else(|| {
            Command::new("pgrep")
                .args(["-o", "-x", name])
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.trim().parse().ok())
        })
}

/// VmRSS of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
