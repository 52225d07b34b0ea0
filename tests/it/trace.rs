//! One trace follows a policy through the bus whatever the log level: its `policy.events`
//! record, each `delivery.requests` record and each `delivery.status` record carry a W3C
//! `traceparent` with the trace id of the `Publish` call, read back from the broker.

use std::time::Duration;

use prost::Message as _;
use zhida_bus::Topic;
use zhida_proto::{
    events::v1::{DeliveryRequested, DeliveryStatusChanged, PolicyPublished},
    profile::v1::UpsertProfileRequest,
};

use crate::helpers::{NewPolicy, ReadRecord, Server, TestEnv, citizen, publish, read_records};

/// The trace id (the 32 hex digits after the version) of a valid `traceparent`.
fn trace_id(traceparent: &str) -> Option<&str> {
    let mut fields = traceparent.split('-');
    let (Some("00"), Some(trace_id), Some(span_id), Some(_flags), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return None;
    };
    let hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    (hex(trace_id, 32) && !zero(trace_id) && hex(span_id, 16) && !zero(span_id)).then_some(trace_id)
}

/// The trace id of each record, or a failure naming the topic and the headers it had.
fn trace_ids<'r>(topic: &str, records: &'r [ReadRecord]) -> Vec<&'r str> {
    records
        .iter()
        .map(|record| {
            let keys: Vec<&str> = record.headers.iter().map(|(k, _)| k.as_str()).collect();
            let traceparent = record.header("traceparent").unwrap_or_else(|| {
                panic!("a {topic} record has no traceparent header; its headers: {keys:?}")
            });
            trace_id(traceparent).unwrap_or_else(|| {
                panic!("a {topic} record has an invalid traceparent {traceparent:?}")
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_context_reaches_every_record_even_when_logs_are_quiet() {
    let env = TestEnv::new("trace").await;
    let server = Server::start_with("all", &env, &[("ZHIDA_TELEMETRY__LOG_FILTER", "error")]).await;
    let mut profiles = server.profiles().await;
    for profile in [
        citizen(&env, "wang", "王芳", &["employment"], true),
        citizen(&env, "zhang", "张伟", &["employment"], true),
    ] {
        profiles
            .upsert_profile(UpsertProfileRequest {
                profile: Some(profile),
            })
            .await
            .expect("upsert");
    }
    let policy_id = publish(
        &server,
        NewPolicy {
            request_id: format!("rsj-{}", env.id),
            title: "杨浦区就业见习补贴".into(),
            body: "参加就业见习的，按规定给予见习补贴。".into(),
            tags: vec!["employment".into()],
            department: "区人力资源社会保障局".into(),
            service_url: "https://zwdt.sh.gov.cn/".into(),
            audience: String::new(),
            urgent: false,
            valid_until: None,
        },
    )
    .await;

    let within = Duration::from_secs(30);
    let policy = read_records(&env, Topic::PolicyEvents, 1, within, |bytes| {
        PolicyPublished::decode(bytes).is_ok_and(|p| p.policy_id == policy_id)
    })
    .await;
    assert_eq!(policy.len(), 1, "the policy's event is on policy.events");
    // policy.events also holds the publisher's own records of the draft and its review:
    // this one must be the publication.
    assert_eq!(
        policy[0].header("ce_type"),
        Some("zhida.events.v1.PolicyPublished"),
        "{:?}",
        policy[0]
    );
    let requests = read_records(&env, Topic::DeliveryRequests, 2, within, |bytes| {
        DeliveryRequested::decode(bytes).is_ok_and(|r| r.policy_id == policy_id)
    })
    .await;
    assert_eq!(requests.len(), 2, "one delivery request per subscriber");
    let statuses = read_records(&env, Topic::DeliveryStatus, 2, within, |bytes| {
        DeliveryStatusChanged::decode(bytes).is_ok_and(|s| s.policy_id == policy_id)
    })
    .await;
    assert_eq!(statuses.len(), 2, "one delivery status per subscriber");

    let published = trace_ids("policy.events", &policy)[0];
    for (topic, records) in [
        ("delivery.requests", &requests),
        ("delivery.status", &statuses),
    ] {
        for id in trace_ids(topic, records) {
            assert_eq!(
                id, published,
                "a {topic} record belongs to another trace than its policy's"
            );
        }
    }
}
