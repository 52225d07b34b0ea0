//! `zhida serve all`: one process, four services, health, reflection, clean errors.

use tonic::Code;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};
use tonic_types::StatusExt;
use zhida_proto::policy::v1::{
    ListTagsRequest, PublishPolicyRequest, policy_service_client::PolicyServiceClient,
};

use crate::helpers::{Server, TestEnv, channel};

#[tokio::test(flavor = "multi_thread")]
async fn serve_all_reports_serving_lists_four_services_and_exits_cleanly_on_sigterm() {
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
async fn a_bad_publish_request_is_rejected_field_by_field() {
    let env = TestEnv::new("badreq").await;
    let server = Server::start("publisher", &env).await;
    let mut publisher = PolicyServiceClient::connect(server.url.clone())
        .await
        .expect("connect");
    let error = publisher
        .publish_policy(PublishPolicyRequest {
            request_id: "r-1".into(),
            title: "补贴\r\nBcc: everyone@example.cn".into(),
            body: "正文".into(),
            tags: vec!["Not A Tag".into()],
            department: "区科委".into(),
            service_url: String::new(),
            audience: r#"{"street": "五角场街道"}"#.into(),
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
    assert_eq!(fields, ["title", "tags[0]", "audience"]);
    let catalogue = publisher
        .list_tags(ListTagsRequest {})
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
