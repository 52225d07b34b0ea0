//! Deleting a profile reaches every copy of its contact addresses (issue 8.6): after the
//! delete, no record of any topic of the test's namespace (profiles, delivery.requests,
//! delivery.status, policy.events and every dead-letter topic, raw bytes) and no Redis
//! key under its prefix holds the email address or the mobile number in clear, and the
//! sealed copies the topics still hold no longer open: the subject's key is gone. A
//! request the notifier receives after the delete ends FAILED, "profile deleted".

use std::time::Duration;

use prost::Message as _;
use rdkafka::{
    ClientConfig, Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use zhida_bus::{Group, Producer, Topic};
use zhida_proto::{
    events::v1::{
        Channel, Contact, DeliveryRequested, DeliveryState, Frequency, PolicyPublished,
        ProfileUpserted, Subscription,
    },
    notification::v1::GetDeliveryStatusRequest,
    profile::v1::{DeleteProfileRequest, GetProfileRequest, UpsertProfileRequest},
};
use zhida_seal::DataKey;

use crate::helpers::{
    Server, TestEnv, citizen, eventually, has_tombstone, mail_for, wait_until_consumed,
};

/// Policy `n` on `tag`, as the publisher releases it: straight onto `policy.events` (what
/// is tested here starts at the profiler).
fn policy(env: &TestEnv, n: u32, tag: &str) -> PolicyPublished {
    PolicyPublished {
        policy_id: format!("shred-{n}-{}", env.id),
        title: format!("杨浦区政策第{n}号"),
        body: "符合条件的可申请。".into(),
        tags: vec![tag.into()],
        department: "区住房保障局".into(),
        published_at: Some(zhida_proto::timestamp_now()),
        ..PolicyPublished::default()
    }
}

/// One record as the broker holds it.
struct Raw {
    topic: String,
    value: Option<Vec<u8>>,
    /// Key, value and every header, one after the other: what a reader of the topic sees.
    bytes: Vec<u8>,
}

/// Every record so far of every topic of the test's namespace.
fn every_record(env: &TestEnv) -> Vec<Raw> {
    use rdkafka::message::Headers as _;
    let timeout = Duration::from_secs(10);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.brokers)
        .set("group.id", format!("t-{}-scan", env.id))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer.fetch_metadata(None, timeout).expect("metadata");
    let mut assignment = TopicPartitionList::new();
    let mut left = Vec::new();
    for topic in metadata.topics() {
        if !topic.name().starts_with(&env.kafka.topic_prefix) {
            continue;
        }
        for partition in topic.partitions() {
            let (low, _) = consumer
                .fetch_watermarks(topic.name(), partition.id(), timeout)
                .expect("watermarks");
            let high =
                zhida_bus::log_end(&env.kafka.brokers, topic.name(), partition.id()).expect("end");
            if high > low {
                assignment
                    .add_partition_offset(topic.name(), partition.id(), Offset::Beginning)
                    .expect("assign");
                left.push((topic.name().to_string(), partition.id(), high));
            }
        }
    }
    for base in ["profiles", "delivery.requests", "delivery.requests.dlq"] {
        let name = format!("{}{base}", env.kafka.topic_prefix);
        assert!(left.iter().any(|l| l.0 == name), "{name} holds records");
    }
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !left.is_empty() {
        assert!(std::time::Instant::now() < deadline, "unread: {left:?}");
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.expect("record");
        let mut bytes = message.key().unwrap_or_default().to_vec();
        bytes.extend_from_slice(message.payload().unwrap_or_default());
        for header in message.headers().into_iter().flat_map(|h| h.iter()) {
            bytes.extend_from_slice(header.key.as_bytes());
            bytes.extend_from_slice(header.value.unwrap_or_default());
        }
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        left.retain(|(t, p, high)| !(t == topic && *p == partition && offset + 1 >= *high));
        records.push(Raw {
            topic: topic.to_string(),
            value: message.payload().map(<[u8]>::to_vec),
            bytes,
        });
    }
    records
}

/// Every string held under the test's Redis prefix: (key, each value of the key, whatever
/// its type).
async fn every_redis_value(env: &TestEnv) -> Vec<(String, Vec<u8>)> {
    let mut redis = env.redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", env.key_prefix()))
        .query_async(&mut redis)
        .await
        .expect("KEYS");
    let mut values = vec![];
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .expect("TYPE");
        let mut command = match kind.as_str() {
            "string" => redis::cmd("GET"),
            "hash" => redis::cmd("HGETALL"),
            "list" => redis::cmd("LRANGE"),
            "set" => redis::cmd("SMEMBERS"),
            "zset" => redis::cmd("ZRANGE"),
            "stream" => redis::cmd("XRANGE"),
            // Gone since KEYS.
            _ => continue,
        };
        command.arg(&key);
        match kind.as_str() {
            "list" | "zset" => {
                command.arg(0).arg(-1);
            }
            "stream" => {
                command.arg("-").arg("+");
            }
            _ => {}
        }
        let value: redis::Value = command.query_async(&mut redis).await.expect("read");
        let mut strings = vec![key.clone().into_bytes()];
        flatten(value, &mut strings);
        values.extend(strings.into_iter().map(|s| (key.clone(), s)));
    }
    values
}

fn flatten(value: redis::Value, out: &mut Vec<Vec<u8>>) {
    match value {
        redis::Value::BulkString(bytes) => out.push(bytes),
        redis::Value::SimpleString(text) => out.push(text.into_bytes()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            for item in items {
                flatten(item, out);
            }
        }
        redis::Value::Map(pairs) => {
            for (k, v) in pairs {
                flatten(k, out);
                flatten(v, out);
            }
        }
        _ => {}
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The sealed addresses the topics hold, with their channel: in profile records, and in
/// delivery requests and their dead letters.
fn sealed_copies(records: &[Raw], env: &TestEnv) -> Vec<(Channel, Vec<u8>)> {
    let topic = |base: &str| format!("{}{base}", env.kafka.topic_prefix);
    let channel = |c: i32| Channel::try_from(c).unwrap_or_default();
    let mut copies = Vec::new();
    for record in records {
        let Some(value) = record.value.as_deref() else {
            continue;
        };
        if record.topic == topic("profiles") {
            let profile = ProfileUpserted::decode(value)
                .expect("a profile")
                .profile
                .unwrap_or_default();
            copies.extend(
                profile
                    .contacts
                    .into_iter()
                    .map(|c| (channel(c.channel), c.sealed_address)),
            );
        } else if [topic("delivery.requests"), topic("delivery.requests.dlq")]
            .contains(&record.topic)
        {
            let request = DeliveryRequested::decode(value).expect("a request");
            if request.channel != Channel::Inbox as i32 {
                copies.push((channel(request.channel), request.sealed_address));
            }
        }
    }
    copies
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_profiles_addresses_can_no_longer_be_read_from_any_topic_or_store() {
    let env = TestEnv::new("shred").await;
    // No SMS providers: the SMS request is dead-lettered, a copy on delivery.requests.dlq.
    let server = Server::start("all", &env).await;
    let mut profiles = server.profiles().await;
    let producer = Producer::new(&env.kafka, "/test/personal-data").expect("producer");
    let mut notifications = server.notifications().await;

    let email = env.address("shred");
    let digits = u32::from_str_radix(&env.id[env.id.len() - 8..], 16).expect("hex id");
    let mobile = format!("139{:08}", digits % 100_000_000);
    let mut profile = citizen(&env, "shred", "王芳", &["housing"], true);
    let subject = profile.subject_id.clone();
    profile.contacts.push(Contact {
        channel: Channel::Sms as i32,
        address: mobile.clone(),
        consent: true,
        ..Contact::default()
    });
    profile.subscriptions[0].channels = vec![Channel::Email as i32, Channel::Sms as i32];
    profile.subscriptions.push(Subscription {
        tags: vec!["employment".into()],
        channels: vec![Channel::Email as i32],
        frequency: Frequency::DailyDigest as i32,
        ..Subscription::default()
    });
    profiles
        .upsert_profile(UpsertProfileRequest {
            profile: Some(profile),
        })
        .await
        .expect("upsert");
    let stored = profiles
        .get_profile(GetProfileRequest {
            subject_id: subject.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .profile
        .expect("profile");
    let addresses: Vec<(&str, &[u8])> = stored
        .contacts
        .iter()
        .map(|c| (c.address.as_str(), c.sealed_address.as_slice()))
        .collect();
    assert_eq!(
        addresses,
        [(email.as_str(), &[][..]), (mobile.as_str(), &[][..])],
        "GetProfile answers the addresses in clear, and only so"
    );

    // A notice sent at once by email (and dead-lettered by SMS), one held in a digest.
    for policy in [policy(&env, 1, "housing"), policy(&env, 2, "employment")] {
        producer
            .emit(&policy.policy_id, &policy)
            .await
            .expect("published");
    }
    eventually("the email notice", Duration::from_secs(30), || {
        mail_for(&email).len() == 1
    })
    .await;
    wait_until_consumed(
        &env,
        Group::Notifier,
        Topic::DeliveryRequests,
        Duration::from_secs(30),
    )
    .await;
    let digest = format!("{}digest:open:{subject}|email", env.key_prefix());
    let mut redis = env.redis().await;
    let held: bool = redis::cmd("EXISTS")
        .arg(&digest)
        .query_async(&mut redis)
        .await
        .expect("EXISTS");
    assert!(held, "the digest holds the second policy");

    // Before the delete: the copies are sealed, and open with the subject's key.
    let key_name = format!("{}subject-key:{subject}", env.key_prefix());
    let key: Vec<u8> = redis::cmd("GET")
        .arg(&key_name)
        .query_async(&mut redis)
        .await
        .expect("GET");
    let key = DataKey::from_bytes(&key).expect("the subject has a key");
    let copies = sealed_copies(&every_record(&env), &env);
    let by_channel = |channel| copies.iter().filter(|c| c.0 == channel).count();
    assert!(
        by_channel(Channel::Email) >= 2 && by_channel(Channel::Sms) >= 3,
        "sealed copies in profiles, delivery.requests and its dead letters: {} email, {} SMS",
        by_channel(Channel::Email),
        by_channel(Channel::Sms)
    );
    for (channel, sealed) in &copies {
        assert!(
            !sealed.is_empty(),
            "a {channel:?} copy without its sealed address"
        );
        let expected = if *channel == Channel::Sms {
            &mobile
        } else {
            &email
        };
        assert_eq!(
            key.open(&subject, *channel, sealed).as_ref(),
            Ok(expected),
            "{channel:?}"
        );
    }

    profiles
        .delete_profile(DeleteProfileRequest {
            subject_id: subject.clone(),
        })
        .await
        .expect("deleted");
    assert!(has_tombstone(&env, Topic::Profiles, &subject, Duration::from_secs(10)).await);
    wait_until_consumed(
        &env,
        Group::NotifierErasure,
        Topic::Profiles,
        Duration::from_secs(30),
    )
    .await;

    // A request still on its way when the profile went (here: sent again) is not sent.
    let (_, late) = copies
        .iter()
        .find(|(channel, _)| *channel == Channel::Email)
        .expect("an email copy");
    let late = DeliveryRequested {
        policy_id: format!("late-{}", env.id),
        recipient_id: subject.clone(),
        channel: Channel::Email as i32,
        sealed_address: late.clone(),
        title: "迟到的通知".into(),
        ..DeliveryRequested::default()
    };
    producer.emit(&subject, &late).await.expect("produced");
    let mut status = Default::default();
    for _ in 0..100 {
        status = notifications
            .get_delivery_status(GetDeliveryStatusRequest {
                policy_id: late.policy_id.clone(),
                recipient_id: subject.clone(),
                channel: Channel::Email as i32,
            })
            .await
            .expect("status")
            .into_inner();
        if status.state != DeliveryState::Unspecified as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status.state, DeliveryState::Failed as i32, "{status:?}");
    assert_eq!(status.detail, "profile deleted");
    assert_eq!(mail_for(&email).len(), 1, "nothing sent after the delete");

    // After the delete: nothing in clear anywhere, and nothing opens.
    let records = every_record(&env);
    for record in &records {
        for address in [&email, &mobile] {
            assert!(
                !contains(&record.bytes, address),
                "{address} in clear on {}",
                record.topic
            );
        }
    }
    let values = every_redis_value(&env).await;
    for (redis_key, value) in &values {
        for address in [&email, &mobile] {
            assert!(
                !contains(value, address),
                "{address} in clear in {redis_key}"
            );
        }
    }
    assert!(
        !values.iter().any(|(k, _)| *k == key_name || *k == digest),
        "the subject's key and digest are gone"
    );
    let keys: Vec<DataKey> = values
        .iter()
        .filter_map(|(_, v)| DataKey::from_bytes(v))
        .collect();
    let copies = sealed_copies(&records, &env);
    assert!(copies.len() >= 5, "{} sealed copies left", copies.len());
    for (channel, sealed) in &copies {
        assert!(
            !sealed.is_empty(),
            "a {channel:?} copy without its sealed address"
        );
        assert!(
            keys.iter()
                .all(|k| k.open(&subject, *channel, sealed).is_err()),
            "a sealed {channel:?} address still opens"
        );
    }
}
