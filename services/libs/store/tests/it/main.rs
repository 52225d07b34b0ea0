//! The store contract, run against the in-memory implementations and a real Redis
//! (`ZHIDA_TEST_REDIS`, started by `deploy/servers.sh`). Each Redis test uses its own key prefix.

use std::time::Duration;

use zhida_proto::events::v1::Channel;
use zhida_store::{
    DeliveryKey, DeliveryLedger, DigestKey, DigestStore, MemoryDigests, MemoryFeed, MemoryLedger,
    MemoryWriteLeases, RedisDigests, RedisFeed, RedisLedger, RedisWriteLeases, contract,
};

async fn redis() -> (redis::aio::ConnectionManager, String) {
    let url = std::env::var("ZHIDA_TEST_REDIS")
        .expect("ZHIDA_TEST_REDIS must point at a Redis server (run the tests via deploy/test.sh)");
    let client = redis::Client::open(url).expect("redis url");
    let conn = redis::aio::ConnectionManager::new(client)
        .await
        .expect("redis reachable");
    (conn, format!("zhida-test-{}:", uuid::Uuid::new_v4()))
}

#[tokio::test]
async fn memory_ledger_gives_each_delivery_to_one_sender() {
    contract::ledger_gives_each_delivery_to_one_sender(&MemoryLedger::default()).await;
}

#[tokio::test]
async fn redis_ledger_gives_each_delivery_to_one_sender() {
    let (conn, prefix) = redis().await;
    contract::ledger_gives_each_delivery_to_one_sender(&RedisLedger::new(
        conn,
        &prefix,
        Duration::from_secs(60),
    ))
    .await;
}

#[tokio::test]
async fn memory_ledger_lease_expires() {
    contract::ledger_lease_expires(&MemoryLedger::default()).await;
}

#[tokio::test]
async fn redis_ledger_lease_expires() {
    let (conn, prefix) = redis().await;
    contract::ledger_lease_expires(&RedisLedger::new(conn, &prefix, Duration::from_secs(60))).await;
}

#[tokio::test]
async fn memory_feed_pages_by_cursor_and_ignores_duplicates() {
    contract::feed_pages_by_cursor_and_ignores_duplicates(&MemoryFeed::default()).await;
}

#[tokio::test]
async fn redis_feed_pages_by_cursor_and_ignores_duplicates() {
    let (conn, prefix) = redis().await;
    contract::feed_pages_by_cursor_and_ignores_duplicates(&RedisFeed::new(
        conn,
        &format!("{prefix}feed"),
    ))
    .await;
}

#[tokio::test]
async fn memory_digests_close_into_batches_once_per_policy() {
    contract::digests_close_into_batches_once_per_policy(&MemoryDigests::default()).await;
}

#[tokio::test]
async fn redis_digests_close_into_batches_once_per_policy() {
    let (conn, prefix) = redis().await;
    contract::digests_close_into_batches_once_per_policy(&RedisDigests::new(conn, &prefix)).await;
}

#[tokio::test]
async fn memory_leases_serialise_writers_and_hand_on_the_last_write() {
    contract::leases_serialise_writers_and_hand_on_the_last_write(&MemoryWriteLeases::default())
        .await;
}

#[tokio::test]
async fn redis_leases_serialise_writers_and_hand_on_the_last_write() {
    let (conn, prefix) = redis().await;
    contract::leases_serialise_writers_and_hand_on_the_last_write(&RedisWriteLeases::new(
        conn, &prefix,
    ))
    .await;
}

#[tokio::test]
async fn memory_write_lease_expires_and_its_late_release_records_nothing() {
    contract::write_lease_expires_and_its_late_release_records_nothing(
        &MemoryWriteLeases::default(),
    )
    .await;
}

#[tokio::test]
async fn redis_write_lease_expires_and_its_late_release_records_nothing() {
    let (conn, prefix) = redis().await;
    contract::write_lease_expires_and_its_late_release_records_nothing(&RedisWriteLeases::new(
        conn, &prefix,
    ))
    .await;
}

/// Deployed ledgers and digests hold keys spelling the channel `email`: a notifier that
/// spelled it otherwise would send every delivery they record again.
#[tokio::test]
async fn redis_keys_spell_the_channel_as_deployed_stores_hold_it() {
    let (mut conn, prefix) = redis().await;
    let ledger = RedisLedger::new(conn.clone(), &prefix, Duration::from_secs(60));
    let delivery = DeliveryKey {
        policy_id: "p-1".into(),
        recipient_id: "c-1".into(),
        channel: Channel::Email,
    };
    ledger
        .begin(&delivery, Duration::from_secs(30))
        .await
        .expect("begin");
    let digests = RedisDigests::new(conn.clone(), &prefix);
    let digest = DigestKey {
        recipient_id: "c-1".into(),
        channel: Channel::Email,
    };
    digests.add(&digest, "p-1", b"one").await.expect("add");
    for key in ["delivery:p-1|c-1|email", "digest:open:c-1|email"] {
        let exists: bool = redis::cmd("EXISTS")
            .arg(format!("{prefix}{key}"))
            .query_async(&mut conn)
            .await
            .expect("EXISTS");
        assert!(exists, "{prefix}{key} was not written");
    }
    assert_eq!(digests.close().await.expect("close"), [digest]);
}
