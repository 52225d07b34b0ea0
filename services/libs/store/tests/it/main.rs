//! The store contract, run against the in-memory implementations and a real Redis
//! (`ZHIDA_TEST_REDIS`, started by `deploy/servers.sh`). Each Redis test uses its own key prefix.

use std::time::Duration;

use zhida_proto::events::v1::Channel;
use zhida_store::{
    DeliveryKey, DeliveryLedger, DigestKey, DigestStore, Inbox, MemoryDigests, MemoryFeed,
    MemoryFeedSignals, MemoryInbox, MemoryLedger, MemoryPolicyRecipients, MemoryReceiptIndex,
    MemoryRelayReach, MemorySubjectKeys, MemorySubscriberRegistry, MemoryWebhookOutbox,
    MemoryWriteLeases, OutboxMessage, ReachMark, RedisDigests, RedisFeed, RedisFeedSignals,
    RedisInbox, RedisLedger, RedisPolicyRecipients, RedisReceiptIndex, RedisRelayReach,
    RedisSubjectKeys, RedisSubscriberRegistry, RedisWebhookOutbox, RedisWriteLeases, RelayReach,
    WebhookOutbox, contract,
};

fn redis_client() -> redis::Client {
    let url = std::env::var("ZHIDA_TEST_REDIS")
        .expect("ZHIDA_TEST_REDIS must point at a Redis server (run the tests via deploy/test.sh)");
    redis::Client::open(url).expect("redis url")
}

async fn redis() -> (redis::aio::ConnectionManager, String) {
    let conn = redis::aio::ConnectionManager::new(redis_client())
        .await
        .expect("redis reachable");
    (conn, format!("zhida-test-{}:", uuid::Uuid::new_v4()))
}

/// An inbox under a key prefix of its own, which the test can inspect with the connection.
async fn redis_inbox() -> (RedisInbox, redis::aio::ConnectionManager, String) {
    let (conn, prefix) = redis().await;
    (
        RedisInbox::new(redis_client(), conn.clone(), &prefix),
        conn,
        prefix,
    )
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
async fn memory_feed_states_change_in_place() {
    contract::feed_states_change_in_place(&MemoryFeed::default()).await;
}

#[tokio::test]
async fn redis_feed_states_change_in_place() {
    let (conn, prefix) = redis().await;
    contract::feed_states_change_in_place(&RedisFeed::new(conn, &format!("{prefix}feed"))).await;
}

#[tokio::test]
async fn memory_feed_clear_deletes_the_whole_feed() {
    contract::feed_clear_deletes_the_whole_feed(&MemoryFeed::default(), &MemoryFeed::default())
        .await;
}

#[tokio::test]
async fn redis_feed_clear_deletes_the_whole_feed() {
    let (conn, prefix) = redis().await;
    contract::feed_clear_deletes_the_whole_feed(
        &RedisFeed::new(conn.clone(), &format!("{prefix}feed:a")),
        &RedisFeed::new(conn, &format!("{prefix}feed:b")),
    )
    .await;
}

#[tokio::test]
async fn memory_recipients_are_recorded_once_and_erased_with_their_profile() {
    contract::recipients_are_recorded_once_and_erased_with_their_profile(
        &MemoryPolicyRecipients::default(),
    )
    .await;
}

#[tokio::test]
async fn redis_recipients_are_recorded_once_and_erased_with_their_profile() {
    let (conn, prefix) = redis().await;
    contract::recipients_are_recorded_once_and_erased_with_their_profile(
        &RedisPolicyRecipients::new(conn, &prefix),
    )
    .await;
}

#[tokio::test]
async fn memory_withdrawn_policies_stay_withdrawn() {
    contract::withdrawn_policies_stay_withdrawn(&MemoryPolicyRecipients::default()).await;
}

#[tokio::test]
async fn redis_withdrawn_policies_stay_withdrawn() {
    let (conn, prefix) = redis().await;
    contract::withdrawn_policies_stay_withdrawn(&RedisPolicyRecipients::new(conn, &prefix)).await;
}

#[tokio::test]
async fn memory_the_latest_revision_is_kept() {
    contract::the_latest_revision_is_kept(&MemoryPolicyRecipients::default()).await;
}

#[tokio::test]
async fn redis_the_latest_revision_is_kept() {
    let (conn, prefix) = redis().await;
    contract::the_latest_revision_is_kept(&RedisPolicyRecipients::new(conn, &prefix)).await;
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

#[tokio::test]
async fn memory_inbox_adds_each_item_once() {
    contract::inbox_adds_each_item_once(&MemoryInbox::default()).await;
}

#[tokio::test]
async fn redis_inbox_adds_each_item_once() {
    contract::inbox_adds_each_item_once(&redis_inbox().await.0).await;
}

#[tokio::test]
async fn memory_inbox_pages_newest_first_and_refuses_cursors_it_did_not_issue() {
    contract::inbox_pages_newest_first_and_refuses_cursors_it_did_not_issue(&MemoryInbox::default()).await;
}

#[tokio::test]
async fn redis_inbox_pages_newest_first_and_refuses_cursors_it_did_not_issue() {
    contract::inbox_pages_newest_first_and_refuses_cursors_it_did_not_issue(&redis_inbox().await.0)
        .await;
}

#[tokio::test]
async fn memory_inbox_trims_its_oldest_items_beyond_its_bound() {
    contract::inbox_trims_its_oldest_items_beyond_its_bound(&MemoryInbox::default()).await;
}

#[tokio::test]
async fn redis_inbox_trims_its_oldest_items_beyond_its_bound() {
    contract::inbox_trims_its_oldest_items_beyond_its_bound(&redis_inbox().await.0).await;
}

#[tokio::test]
async fn memory_inbox_counts_unread_items_and_marks_each_one_read_once() {
    contract::inbox_counts_unread_items_and_marks_each_one_read_once(&MemoryInbox::default()).await;
}

#[tokio::test]
async fn redis_inbox_counts_unread_items_and_marks_each_one_read_once() {
    contract::inbox_counts_unread_items_and_marks_each_one_read_once(&redis_inbox().await.0).await;
}

#[tokio::test]
async fn memory_inbox_gives_the_first_mark_to_exactly_one_of_concurrent_callers() {
    contract::inbox_gives_the_first_mark_to_exactly_one_of_concurrent_callers(
        &MemoryInbox::default(),
    )
    .await;
}

#[tokio::test]
async fn redis_inbox_gives_the_first_mark_to_exactly_one_of_concurrent_callers() {
    contract::inbox_gives_the_first_mark_to_exactly_one_of_concurrent_callers(
        &redis_inbox().await.0,
    )
    .await;
}

#[tokio::test]
async fn memory_inbox_wait_returns_new_items_as_they_arrive_and_nothing_after_its_timeout() {
    contract::inbox_wait_returns_new_items_as_they_arrive_and_nothing_after_its_timeout(
        &MemoryInbox::default(),
    )
    .await;
}

#[tokio::test]
async fn redis_inbox_wait_returns_new_items_as_they_arrive_and_nothing_after_its_timeout() {
    contract::inbox_wait_returns_new_items_as_they_arrive_and_nothing_after_its_timeout(
        &redis_inbox().await.0,
    )
    .await;
}

#[tokio::test]
async fn memory_inbox_remove_recipient_deletes_the_whole_inbox() {
    contract::inbox_remove_recipient_deletes_the_whole_inbox(&MemoryInbox::default()).await;
}

#[tokio::test]
async fn redis_inbox_remove_recipient_deletes_the_whole_inbox() {
    contract::inbox_remove_recipient_deletes_the_whole_inbox(&redis_inbox().await.0).await;
}

/// A deleted profile's inbox leaves nothing behind in Redis: no items, ids or read marks.
#[tokio::test]
async fn redis_inbox_of_a_removed_recipient_leaves_no_key_behind() {
    let (inbox, mut conn, prefix) = redis_inbox().await;
    for i in 0..3 {
        inbox
            .add("c-1", &format!("p-{i}"), b"n", 2)
            .await
            .expect("add");
    }
    inbox.mark_read("c-1", "p-2").await.expect("mark");
    let keys = |mut conn: redis::aio::ConnectionManager| {
        let pattern = format!("{prefix}*");
        async move {
            let mut keys: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query_async(&mut conn)
                .await
                .expect("KEYS");
            keys.sort();
            keys
        }
    };
    assert_eq!(
        keys(conn.clone()).await,
        [
            format!("{prefix}inbox-ids:c-1"),
            format!("{prefix}inbox-read:c-1"),
            format!("{prefix}inbox:c-1"),
        ]
    );
    let len: usize = redis::cmd("XLEN")
        .arg(format!("{prefix}inbox:c-1"))
        .query_async(&mut conn)
        .await
        .expect("XLEN");
    assert_eq!(len, 2, "trimmed to the bound");
    inbox.remove_recipient("c-1").await.expect("remove");
    assert!(keys(conn).await.is_empty());
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

#[tokio::test]
async fn memory_digests_of_a_removed_recipient_are_forgotten() {
    contract::digests_of_a_removed_recipient_are_forgotten(&MemoryDigests::default()).await;
}

#[tokio::test]
async fn redis_digests_of_a_removed_recipient_are_forgotten() {
    let (conn, prefix) = redis().await;
    contract::digests_of_a_removed_recipient_are_forgotten(&RedisDigests::new(conn, &prefix)).await;
}

#[tokio::test]
async fn memory_receipts_are_taken_once_per_provider() {
    contract::receipts_are_taken_once_per_provider(&MemoryReceiptIndex::default()).await;
}

#[tokio::test]
async fn redis_receipts_are_taken_once_per_provider() {
    let (conn, prefix) = redis().await;
    contract::receipts_are_taken_once_per_provider(&RedisReceiptIndex::new(conn, &prefix)).await;
}

#[tokio::test]
async fn memory_receipt_entries_expire() {
    contract::receipt_entries_expire(&MemoryReceiptIndex::default()).await;
}

#[tokio::test]
async fn redis_receipt_entries_expire() {
    let (conn, prefix) = redis().await;
    contract::receipt_entries_expire(&RedisReceiptIndex::new(conn, &prefix)).await;
}

#[tokio::test]
async fn memory_subject_keys_are_created_once_and_destroyed() {
    contract::subject_keys_are_created_once_and_destroyed(&MemorySubjectKeys::default()).await;
}

#[tokio::test]
async fn redis_subject_keys_are_created_once_and_destroyed() {
    let (conn, prefix) = redis().await;
    contract::subject_keys_are_created_once_and_destroyed(&RedisSubjectKeys::new(conn, &prefix))
        .await;
}

#[tokio::test]
async fn memory_racing_replicas_create_one_subject_key() {
    let keys = MemorySubjectKeys::shared("zhida-test-race:");
    contract::racing_replicas_create_one_subject_key(
        &*keys,
        &*MemorySubjectKeys::shared("zhida-test-race:"),
    )
    .await;
}

/// Two replicas: two connections to one Redis.
#[tokio::test]
async fn redis_racing_replicas_create_one_subject_key() {
    let (conn, prefix) = redis().await;
    let (other, _) = redis().await;
    contract::racing_replicas_create_one_subject_key(
        &RedisSubjectKeys::new(conn, &prefix),
        &RedisSubjectKeys::new(other, &prefix),
    )
    .await;
}

#[tokio::test]
async fn memory_leases_in_batches_behave_as_one_by_one() {
    contract::leases_in_batches_behave_as_one_by_one(&MemoryWriteLeases::default()).await;
}

#[tokio::test]
async fn redis_leases_in_batches_behave_as_one_by_one() {
    let (conn, prefix) = redis().await;
    contract::leases_in_batches_behave_as_one_by_one(&RedisWriteLeases::new(conn, &prefix)).await;
}

#[tokio::test]
async fn memory_registry_keeps_records_by_id_and_moves_its_generation() {
    contract::registry_keeps_records_by_id_and_moves_its_generation(
        &MemorySubscriberRegistry::default(),
    )
    .await;
}

#[tokio::test]
async fn redis_registry_keeps_records_by_id_and_moves_its_generation() {
    let (conn, prefix) = redis().await;
    contract::registry_keeps_records_by_id_and_moves_its_generation(&RedisSubscriberRegistry::new(
        conn, &prefix,
    ))
    .await;
}

/// Runs each `case` of the contract as `<module>::<case>::memory`, against `$memory`, and
/// `…::redis`, against `$redis(conn, prefix)` under a key prefix of its own.
macro_rules! against_both {
    ($module:ident, $memory:expr, $redis:path, [$($case:ident),* $(,)?]) => {
        mod $module {
            use super::*;
            $(
                mod $case {
                    use super::*;

                    #[tokio::test]
                    async fn memory() {
                        contract::$case(&$memory).await;
                    }

                    #[tokio::test]
                    async fn redis() {
                        let (conn, prefix) = super::redis().await;
                        contract::$case(&$redis(conn, &prefix)).await;
                    }
                }
            )*
        }
    };
}

against_both!(
    outbox,
    MemoryWebhookOutbox::default(),
    RedisWebhookOutbox::new,
    [
        outbox_queues_in_order_once_per_id,
        outbox_refuses_beyond_its_capacity_and_counts_the_overflow,
        outbox_claims_due_endpoints_once_per_lease,
        outbox_pops_and_retries_only_the_head,
        outbox_paused_endpoints_queue_but_are_not_claimed,
        outbox_clear_forgets_the_endpoint,
    ]
);

against_both!(
    reach,
    MemoryRelayReach::default(),
    RedisRelayReach::new,
    [
        reach_marks_are_idempotent_and_the_first_reach_stays,
        reach_member_states_go_to_forwarders_only,
        reach_of_a_removed_subscriber_is_not_listed,
    ]
);

#[tokio::test]
async fn memory_feed_signals_reach_every_subscriber() {
    let prefix = format!("zhida-test-{}:", uuid::Uuid::new_v4());
    contract::feed_signals_reach_every_subscriber(
        &*MemoryFeedSignals::shared(&prefix),
        &*MemoryFeedSignals::shared(&prefix),
    )
    .await;
}

/// Two replicas: two handles, each with its own pub/sub connection, on one channel.
#[tokio::test]
async fn redis_feed_signals_reach_every_subscriber() {
    let (conn, prefix) = redis().await;
    let channel = format!("{prefix}feed-signals");
    contract::feed_signals_reach_every_subscriber(
        &RedisFeedSignals::new(redis_client(), conn.clone(), &channel),
        &RedisFeedSignals::new(redis_client(), conn, &channel),
    )
    .await;
}

/// A removed subscriber's reach and a cleared endpoint's queue leave no key behind in Redis.
#[tokio::test]
async fn redis_relay_stores_leave_no_key_of_what_they_forgot() {
    let (mut conn, prefix) = redis().await;
    let reach = RedisRelayReach::new(conn.clone(), &prefix);
    let policies = ["p-1".to_string(), "p-2".to_string()];
    let reached = ReachMark::Reached { tier: 1, by: 1 };
    reach.mark("s-1", &policies, reached).await.expect("mark");
    reach
        .forwarded("p-1", "s-1", &["c-1".to_string()])
        .await
        .expect("forwarded");
    let outbox = RedisWebhookOutbox::new(conn.clone(), &prefix);
    for id in ["m-1", "m-2"] {
        let message = OutboxMessage {
            id: id.into(),
            payload: b"{}".to_vec(),
        };
        outbox.enqueue("s-1", &message, 1).await.expect("enqueue");
    }
    outbox.pause("s-1").await.expect("pause");

    reach.remove_subscriber("s-1").await.expect("remove");
    assert_eq!(outbox.clear("s-1").await.expect("clear"), 1);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(keys.is_empty(), "left behind: {keys:?}");
}
