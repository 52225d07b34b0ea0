//! The "两页" inbox against real servers: a policy whose audience matches a citizen lands
//! once on their page (streamed live and listed newest first), reading it is reported on
//! `delivery.status` once in effect, a bad cursor is a field error, and deleting the
//! profile empties the page.

use std::time::Duration;

use prost::Message as _;
use tonic::Code;
use tonic_types::StatusExt as _;
use zhida_bus::Topic;
use zhida_proto::{
    events::v1::{Channel, DeliveryState, DeliveryStatusChanged, PolicyPublished},
    notification::v1::{ListInboxRequest, MarkReadRequest, StreamInboxRequest},
    profile::v1::{DeleteProfileRequest, UpsertProfileRequest},
};

use crate::helpers::{NewPolicy, Server, TestEnv, citizen, count_records, publish, redeliver};

fn policy(env: &TestEnv, n: u32) -> NewPolicy {
    NewPolicy {
        request_id: format!("inbox-{n}-{}", env.id),
        title: format!("五角场街道老旧小区加装电梯补贴（第{n}批）"),
        body: "符合条件的小区，按规定给予加装电梯补贴。\n申请材料：……".into(),
        tags: vec!["housing".into()],
        department: "区住房保障局".into(),
        service_url: "https://zwdt.sh.gov.cn/".into(),
        // Every citizen of the street born before 2000: the test's citizen and no one else
        // of this test (other tests' citizens are in other topic namespaces).
        audience:
            r#"{"street": ["五角场街道"], "citizen": {"birth_year": [{"numeric": ["<", 2000]}]}}"#
                .into(),
        urgent: false,
        valid_until: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_matched_policy_lands_once_on_the_citizens_page_and_reading_it_is_reported() {
    let env = TestEnv::new("inbox").await;
    let server = Server::start("all", &env).await;
    let wang = citizen(&env, "wang", "王芳", &[], true);
    let recipient = wang.subject_id.clone();
    server
        .profiles()
        .await
        .upsert_profile(UpsertProfileRequest {
            profile: Some(wang),
        })
        .await
        .expect("upsert");
    let mut inbox = server.inbox().await;

    // A live stream, opened before anything is published.
    let mut stream = inbox
        .stream_inbox(StreamInboxRequest {
            recipient_id: recipient.clone(),
            after_cursor: String::new(),
        })
        .await
        .expect("stream")
        .into_inner();
    let policy_id = publish(&server, policy(&env, 1)).await;
    let streamed = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("an item within 30 s")
        .expect("stream ok")
        .expect("an item");
    assert_eq!(streamed.policy_id, policy_id);
    assert_eq!(streamed.title, "五角场街道老旧小区加装电梯补贴（第1批）");
    assert_eq!(
        streamed.summary,
        "符合条件的小区，按规定给予加装电梯补贴。 申请材料：……"
    );
    assert_eq!(streamed.service_url, "https://zwdt.sh.gov.cn/");
    assert!(
        streamed.reason.contains("street = \"五角场街道\""),
        "{}",
        streamed.reason
    );
    assert!(!streamed.read);

    // A retried CreateDraft (same request_id) is the same, published policy; the broker
    // handing its event over again (at-least-once) adds no item either.
    let again = server
        .publisher("区住房保障局")
        .await
        .create_draft(policy(&env, 1).draft())
        .await
        .expect("a retried CreateDraft")
        .into_inner();
    assert_eq!(again.policy_id, policy_id);
    redeliver::<PolicyPublished>(&env, &policy_id, Duration::from_secs(30)).await;
    let second = publish(&server, policy(&env, 2)).await;
    let next = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("the second item within 30 s")
        .expect("stream ok")
        .expect("an item");
    assert_eq!(
        next.policy_id, second,
        "the retry and the redelivery added nothing"
    );
    drop(stream);

    let list = |before: &str| ListInboxRequest {
        recipient_id: recipient.clone(),
        before_cursor: before.into(),
        limit: 1,
    };
    let page = inbox.list_inbox(list("")).await.expect("list").into_inner();
    assert_eq!(page.unread, 2);
    assert_eq!(page.items[0].policy_id, second, "newest first");
    let older = inbox
        .list_inbox(list(&page.next_cursor))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(older.items[0].policy_id, policy_id);
    assert!(older.next_cursor.is_empty(), "the end of the inbox");

    let mark = MarkReadRequest {
        recipient_id: recipient.clone(),
        policy_id: policy_id.clone(),
    };
    let first = inbox.mark_read(mark.clone()).await.expect("marked");
    assert!(!first.into_inner().already_read);
    let again = inbox.mark_read(mark).await.expect("marked again");
    assert!(again.into_inner().already_read);
    let page = inbox.list_inbox(list("")).await.expect("list").into_inner();
    assert_eq!(page.unread, 1);
    let reads = count_records(
        &env,
        Topic::DeliveryStatus,
        1,
        Duration::from_secs(30),
        |b| {
            DeliveryStatusChanged::decode(b).is_ok_and(|s| {
                s.policy_id == policy_id
                    && s.recipient_id == recipient
                    && s.channel == Channel::Inbox as i32
                    && s.state == DeliveryState::Read as i32
            })
        },
    )
    .await;
    assert!(reads >= 1, "the read is reported on delivery.status");

    let error = inbox
        .list_inbox(list("not-a-cursor"))
        .await
        .expect_err("a cursor this inbox never returned");
    assert_eq!(error.code(), Code::InvalidArgument);
    let fields: Vec<String> = error
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["before_cursor"]);
    let missing = inbox
        .mark_read(MarkReadRequest {
            recipient_id: recipient.clone(),
            policy_id: "pol-never-sent".into(),
        })
        .await
        .expect_err("nothing to mark");
    assert_eq!(missing.code(), Code::NotFound);

    // Deleting the profile deletes its page too.
    server
        .profiles()
        .await
        .delete_profile(DeleteProfileRequest {
            subject_id: recipient.clone(),
        })
        .await
        .expect("deleted");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = inbox.list_inbox(list("")).await.expect("list").into_inner();
        if page.items.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deleted profile's inbox still holds {} items",
            page.items.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
