//! Hostile input at the gRPC host (`zhida_runtime::limits`): oversized requests, bursts of
//! writes, and callers that open stream after stream, against a real `zhida serve`.

use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt as _;
use zhida_proto::{
    notification::v1::StreamInboxRequest,
    profile::v1::{GetProfileRequest, UnsubscribeByTokenRequest, UpsertProfileRequest},
};

use crate::helpers::{Server, TestEnv, citizen};

#[tokio::test(flavor = "multi_thread")]
async fn a_request_over_grpc_max_request_bytes_is_resource_exhausted_and_one_under_it_reaches_the_handler()
 {
    let env = TestEnv::new("limit-size").await;
    let server = Server::start_with(
        "profiler",
        &env,
        &[("ZHIDA_GRPC__MAX_REQUEST_BYTES", "65536")],
    )
    .await;
    let mut profiles = server.profiles().await;
    let upsert = |name_bytes: usize| {
        let mut profile = citizen(&env, "big", "x", &["housing"], true);
        profile.display_name = "名".repeat(name_bytes / 3);
        UpsertProfileRequest {
            profile: Some(profile),
        }
    };

    // 10 KiB: in; the handler refuses the over-long name field by field.
    let status = profiles
        .upsert_profile(upsert(10 * 1024))
        .await
        .expect_err("a 10 KiB display name is too long");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // 100 KiB, and 3 MiB (under tonic's own 4 MiB): refused before any handler, saying why.
    for size in [100 * 1024, 3 * 1024 * 1024] {
        let status = profiles
            .upsert_profile(upsert(size))
            .await
            .expect_err("over grpc.max_request_bytes");
        assert_eq!(status.code(), Code::ResourceExhausted, "{size}: {status:?}");
        assert!(
            status.message().contains("larger than 65536 bytes"),
            "{size}: {status:?}"
        );
    }

    // The connection and the server are fine afterwards.
    profiles
        .upsert_profile(upsert(30))
        .await
        .expect("a normal profile is written");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_writes_beyond_the_callers_bucket_is_resource_exhausted_with_retry_info() {
    let env = TestEnv::new("limit-rate").await;
    let server = Server::start_with(
        "all",
        &env,
        &[
            ("ZHIDA_GRPC__WRITE_BURST", "3"),
            ("ZHIDA_GRPC__WRITE_RATE_PER_SECOND", "2"),
        ],
    )
    .await;
    let mut profiles = server.profiles().await;
    let write = || UnsubscribeByTokenRequest {
        token: "not-a-token".into(),
    };
    // The burst: each call reaches the handler (which refuses the token).
    for i in 0..3 {
        let status = profiles
            .unsubscribe_by_token(write())
            .await
            .expect_err("a forged token");
        assert_eq!(status.code(), Code::InvalidArgument, "call {i}: {status:?}");
    }
    let status = profiles
        .unsubscribe_by_token(write())
        .await
        .expect_err("the bucket is empty");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo with a delay");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_millis(500),
        "one token every 500 ms: {retry:?}"
    );

    // Reads are not writes: they still reach the handler.
    let status = profiles
        .get_profile(GetProfileRequest {
            subject_id: format!("{}-nobody", env.id),
        })
        .await
        .expect_err("no such profile");
    assert_eq!(
        status.code(),
        Code::NotFound,
        "GetProfile is a read: {status:?}"
    );

    // Waiting as told is enough.
    tokio::time::sleep(retry).await;
    let status = profiles
        .unsubscribe_by_token(write())
        .await
        .expect_err("a forged token");
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "after waiting: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_at_its_cap_of_open_inbox_streams_is_resource_exhausted_until_one_closes() {
    let env = TestEnv::new("limit-streams").await;
    let server = Server::start_with(
        "notifier",
        &env,
        &[("ZHIDA_GRPC__MAX_STREAMS_PER_CALLER", "2")],
    )
    .await;
    let mut inbox = server.inbox().await;
    let request = |n: u32| StreamInboxRequest {
        recipient_id: format!("{}-r{n}", env.id),
        after_cursor: String::new(),
    };
    let first = inbox.stream_inbox(request(1)).await.expect("first stream");
    let _second = inbox.stream_inbox(request(2)).await.expect("second stream");
    let status = inbox
        .stream_inbox(request(3))
        .await
        .expect_err("a third stream");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("2 open streams"), "{status:?}");

    // Closing one (the client goes away) gives its slot back.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match inbox.stream_inbox(request(3)).await {
            Ok(_third) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the closed stream's slot never came back"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
