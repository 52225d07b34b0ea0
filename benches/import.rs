//! `just bench-import`: profiles per second a directory's bulk load puts into one running
//! `zhida serve profiler` (real tansu and Redis, started by `deploy/servers.sh`): `zhida
//! import --file` of `BENCH_IMPORT` citizens (default 50,000, each with an email address
//! and a subscription; validated, sealed, written to `profiles`, indexed), from the
//! command's start to its exit. Beside it, in the same run and on the same broker:
//!
//! - the same kind of profiles through `UpsertProfile`, one call each, with
//!   `BENCH_IMPORT_CALLERS` (default 64) concurrent callers, `BENCH_IMPORT_UPSERTS` of them
//!   (default 10,000): the path there was before the import;
//! - the raw produce rate of the same records (encoded `ProfileUpserted` events, keyed by
//!   subject) with the producer every service uses, 1,000 awaited together at a time: the
//!   broker's ceiling for what an import appends.
//!
//! Each is measured with the producer's default `kafka.one_record_per_batch = true` (the
//! tansu 0.6 workaround: one record per produce batch) and with it off, each run on its
//! own topics and keys. The server runs with `auth.mode = off` and no write rate limit, so
//! the upserts measure the path, not the limiter.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use support::{citizen, free_port, number, serving, var};
use zhida_bus::Producer;
use zhida_proto::{
    events::v1::ProfileUpserted,
    profile::v1::{UpsertProfileRequest, profile_service_client::ProfileServiceClient},
};
use zhida_runtime::config::KafkaConfig;

mod support;

/// One run's namespace on the shared servers and its settings.
struct Run {
    id: String,
    kafka: KafkaConfig,
}

impl Run {
    async fn new(name: &str, one_record_per_batch: bool) -> Self {
        let (id, kafka) = support::namespace(name, one_record_per_batch).await;
        Self { id, kafka }
    }

    /// `zhida serve profiler` on this run's topics, once it is SERVING.
    async fn profiler(&self) -> (Child, String) {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_zhida"))
            .args(["serve", "profiler"])
            .env("ZHIDA_KAFKA__BROKERS", &self.kafka.brokers)
            .env("ZHIDA_KAFKA__TOPIC_PREFIX", &self.kafka.topic_prefix)
            .env("ZHIDA_KAFKA__GROUP_PREFIX", &self.kafka.group_prefix)
            .env(
                "ZHIDA_KAFKA__ONE_RECORD_PER_BATCH",
                self.kafka.one_record_per_batch.to_string(),
            )
            .env("ZHIDA_STORE__REDIS_URL", var("ZHIDA_TEST_REDIS"))
            .env("ZHIDA_STORE__KEY_PREFIX", format!("bench:{}:", self.id))
            .env("ZHIDA_GRPC__LISTEN", format!("127.0.0.1:{port}"))
            .env("ZHIDA_GRPC__WRITE_RATE_PER_SECOND", "0")
            .env("ZHIDA_AUTH__MODE", "off")
            // The profiler checks one-click unsubscribe links: it needs a key to start.
            .env(
                "ZHIDA_UNSUBSCRIBE__KEYS",
                r#"[{id="bench",secret="zhida-bench-unsubscribe-secret-0123456789"}]"#,
            )
            .env("ZHIDA_TELEMETRY__LOG_FILTER", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("zhida serve profiler");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if serving(&url).await {
                return (child, url);
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("zhida serve profiler exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the profiler never became SERVING"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        support::forget_keys(&format!("bench:{}:", self.id));
    }
}

/// Profiles/s of `zhida import --file` of `count` citizens, start to exit.
async fn import(run: &Run, count: usize) -> f64 {
    let (mut server, url) = run.profiler().await;
    let rate = support::import(&url, (0..count).map(|i| citizen(&run.id, i)));
    let _ = server.kill();
    let _ = server.wait();
    rate
}

/// Profiles/s through `UpsertProfile`, `callers` calls at a time.
async fn upserts(run: &Run, count: usize, callers: usize) -> f64 {
    let (mut server, url) = run.profiler().await;
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..callers {
        let mut client = ProfileServiceClient::new(channel.clone());
        let run_id = run.id.clone();
        workers.spawn(async move {
            for i in (w..count).step_by(callers) {
                client
                    .upsert_profile(UpsertProfileRequest {
                        profile: Some(citizen(&run_id, i)),
                    })
                    .await
                    .expect("upserted");
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("caller");
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let _ = server.kill();
    let _ = server.wait();
    rate
}

/// Records/s of `count` `ProfileUpserted` events produced 1,000 at a time, awaited together.
async fn raw_produce(run: &Run, count: usize) -> f64 {
    let producer = Producer::new(&run.kafka, "/bench").expect("producer");
    let events: Vec<ProfileUpserted> = (0..count)
        .map(|i| ProfileUpserted {
            profile: Some(citizen(&run.id, i)),
        })
        .collect();
    let started = Instant::now();
    for chunk in events.chunks(1_000) {
        let sends = chunk.iter().map(|event| {
            let key = &event.profile.as_ref().expect("profile").subject_id;
            producer.emit(key, event)
        });
        for result in futures::future::join_all(sends).await {
            result.expect("produced");
        }
    }
    count as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let count = number("BENCH_IMPORT", 50_000);
    let upsert_count = number("BENCH_IMPORT_UPSERTS", 10_000);
    let callers = number("BENCH_IMPORT_CALLERS", 64);
    println!(
        "Profiles into one `zhida serve profiler` (tansu + Redis on this host): import of \
         {count}, UpsertProfile x{upsert_count} by {callers} callers, raw produce of {count}"
    );
    println!(
        "{:<34} {:>14} {:>14} {:>16} {:>12}",
        "one_record_per_batch", "import/s", "upserts/s", "raw produce/s", "import/raw"
    );
    for one_record_per_batch in [true, false] {
        let name = if one_record_per_batch { "on" } else { "off" };
        let raw = raw_produce(&Run::new("raw", one_record_per_batch).await, count).await;
        let upsert = upserts(
            &Run::new("upsert", one_record_per_batch).await,
            upsert_count,
            callers,
        )
        .await;
        let imported = import(&Run::new("import", one_record_per_batch).await, count).await;
        println!(
            "{:<34} {imported:>14.0} {upsert:>14.0} {raw:>16.0} {:>11.0}%",
            format!(
                "{name}{}",
                if one_record_per_batch == KafkaConfig::default().one_record_per_batch {
                    " (default)"
                } else {
                    ""
                }
            ),
            100.0 * imported / raw
        );
    }
}
