//! `just bench-ledger`: the delivery ledger's cost per delivery on the real Redis
//! (`ZHIDA_TEST_REDIS`, started by `deploy/servers.sh`), as the notifier uses it: one
//! `begin` (take the lease) and one `finish` (record the outcome) per delivery.
//!
//! Side by side in one run: deliveries one after another (the notifier before its consumer
//! loop ran records concurrently: two round trips each), and 8, 64 and 256 deliveries at
//! once over the one shared connection, which writes whatever commands are queued in one
//! go, so concurrent deliveries share round trips. Redis's own counters tell how many
//! commands each socket read carried (`total_commands_processed` / `total_reads_processed`
//! from `INFO stats`; a Lua call counts with the commands it runs, and other clients of the
//! same Redis count too): the batching as Redis sees it. `BENCH_LEDGER` (default 20,000)
//! deliveries per case.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use zhida_proto::events::v1::Channel;
use zhida_runtime::config::StoreConfig;
use zhida_store::{Begin, DeliveryKey, DeliveryLedger, Outcome, OutcomeState, Stores};

/// Commands processed and socket reads done by the Redis server so far.
async fn counters(conn: &mut redis::aio::MultiplexedConnection) -> (u64, u64) {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .expect("INFO stats");
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("total_commands_processed"),
        field("total_reads_processed"),
    )
}

async fn deliver(ledger: &dyn DeliveryLedger, run: &str, i: usize) {
    let key = DeliveryKey {
        policy_id: format!("bench-{run}"),
        recipient_id: format!("r{i}"),
        channel: Channel::Email,
    };
    match ledger
        .begin(&key, Duration::from_secs(30))
        .await
        .expect("begin")
    {
        Begin::Acquired(_) => {}
        other => panic!("fresh delivery {i} was {other:?}"),
    }
    let outcome = Outcome {
        state: OutcomeState::Sent,
        detail: "250 2.0.0 Ok: queued".into(),
    };
    ledger.finish(&key, &outcome).await.expect("finish");
}

#[tokio::main]
async fn main() {
    let url = std::env::var("ZHIDA_TEST_REDIS")
        .expect("ZHIDA_TEST_REDIS is not set: run `just bench-ledger` (it starts the servers)");
    let n: usize = std::env::var("BENCH_LEDGER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let prefix = format!("zhida-bench:{}:", uuid::Uuid::new_v4().simple());
    let config = StoreConfig {
        redis_url: url.clone(),
        key_prefix: prefix.clone(),
        dedup_ttl: Duration::from_secs(600),
        ..StoreConfig::default()
    };
    let ledger: Arc<dyn DeliveryLedger> = Stores::open(&config).await.expect("redis").ledger();
    let mut admin = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis reachable");

    println!("delivery ledger on Redis: {n} deliveries per case, begin + finish each");
    println!(
        "{:<28} {:>14} {:>10} {:>16}",
        "case", "deliveries/s", "× 1-by-1", "commands/read"
    );
    let mut baseline = None;
    for (name, at_once) in [
        ("one after another", 1),
        ("8 at once", 8),
        ("64 at once", 64),
        ("256 at once", 256),
    ] {
        let run = format!("{at_once}");
        let (commands, reads) = counters(&mut admin).await;
        let started = Instant::now();
        futures::stream::iter(0..n)
            .for_each_concurrent(at_once, |i| {
                let (ledger, run) = (ledger.clone(), run.clone());
                async move { deliver(&*ledger, &run, i).await }
            })
            .await;
        let rate = n as f64 / started.elapsed().as_secs_f64();
        let (commands_after, reads_after) = counters(&mut admin).await;
        // The INFO call itself is one command in one read on each side.
        let per_read =
            (commands_after - commands - 1) as f64 / (reads_after - reads - 1).max(1) as f64;
        let baseline = *baseline.get_or_insert(rate);
        println!(
            "{name:<28} {rate:>14.0} {:>10.1} {per_read:>16.1}",
            rate / baseline
        );
    }
    // Leave nothing behind.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut admin)
        .await
        .unwrap_or_default();
    for chunk in keys.chunks(1000) {
        let _: () = redis::cmd("DEL")
            .arg(chunk)
            .query_async(&mut admin)
            .await
            .unwrap_or_default();
    }
}
