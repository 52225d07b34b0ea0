//! `zhida serve all`: one process, four services, health, reflection, clean errors.

use tonic::Code;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};
use tonic_types::StatusExt;
use zhida_proto::{
    events::v1::PolicyContent,
    policy::v1::{CreateDraftRequest, ListTagsRequest},
};

use crate::helpers::{Server, TestEnv, channel};

#[tokio::test(flavor = "multi_thread")]
async fn serve_all_reports_serving_lists_every_service_and_exits_cleanly_on_sigterm() {
    let env = TestEnv::new("serve").await;
    let mut server = Server::start("all", &env).await;

    let mut health = tonic_health::pb::health_client::HealthClient::new(
        channel(&server.url).await.expect("connect"),
    );
    for service in [
        "zhida.policy.v1.PolicyService",
        "zhida.notification.v1.NotificationService",
    ] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }

    let mut reflection = ServerReflectionClient::new(channel(&server.url).await.expect("connect"));
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("stream")
        .expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let mut names: Vec<String> = list
        .service
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.starts_with("zhida."))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "zhida.notification.v1.InboxService",
            "zhida.notification.v1.NotificationService",
            "zhida.policy.v1.PolicyService",
            "zhida.profile.v1.ProfileService",
            "zhida.relay.v1.RelayService",
        ]
    );

    let status = server.terminate();
    assert!(status.success(), "SIGTERM drains and exits 0, got {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_draft_is_rejected_field_by_field() {
    let env = TestEnv::new("badreq").await;
    let server = Server::start("publisher", &env).await;
    let mut publisher = server.publisher("区科委").await;
    let error = publisher
        .create_draft(CreateDraftRequest {
            request_id: "r-1".into(),
            content: Some(PolicyContent {
                title: "补贴\r\nBcc: everyone@example.cn".into(),
                body: "正文".into(),
                tags: vec!["Not A Tag".into()],
                service_url: String::new(),
                audience: r#"{"street": "五角场街道"}"#.into(),
                urgent: false,
                ..PolicyContent::default()
            }),
            faqs: Vec::new(),
            department: "区科委".into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    let fields: Vec<String> = error
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        ["content.title", "content.tags[0]", "content.audience"]
    );
    let catalogue = publisher
        .list_tags(ListTagsRequest::default())
        .await
        .expect("list tags")
        .into_inner()
        .tags;
    assert!(
        catalogue
            .iter()
            .any(|t| t.tag == "employment" && t.name == "就业创业"),
        "{catalogue:?}"
    );
}

/// The first SIGTERM drains; a second one stops at once with 130, even while the drain
/// waits for work that cannot finish (here: topics on a broker nobody answers for).
#[test]
fn a_second_signal_stops_at_once_with_exit_code_130() {
    use std::{
        io::{BufRead, BufReader},
        process::{Command, Stdio},
        time::{Duration, Instant},
    };

    let mut child = Command::new(env!("CARGO_BIN_EXE_zhida"))
        .args(["serve", "relay"])
        .env("ZHIDA_KAFKA__BROKERS", "127.0.0.1:1")
        .env("ZHIDA_AUTH__MODE", "off")
        .env("ZHIDA_GRPC__LISTEN", "127.0.0.1:0")
        .env("ZHIDA_TELEMETRY__LOG_FILTER", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("zhida starts");
    let pid = child.id().to_string();
    let terminate = || {
        let status = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(status.expect("kill runs").success());
    };
    // Until zhida catches SIGTERM (bit 15 of SigCgt), the signal would just kill it.
    let catches_sigterm = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("zhida runs")
            .lines()
            .find_map(|line| line.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << 14) != 0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !catches_sigterm() {
        assert!(Instant::now() < deadline, "zhida never caught SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    terminate();
    let mut logs = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert!(
        logs.any(|line| line.is_ok_and(|line| line.contains("shutdown requested"))),
        "the first signal starts the drain"
    );
    let second = Instant::now();
    terminate();
    let status = child.wait().expect("exit status");
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "stopped at once, not after the drain: {:?}",
        second.elapsed()
    );
}
