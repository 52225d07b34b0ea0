//! Mutual TLS on the gRPC listener against a real `zhida serve relay` (`[grpc.tls]` with
//! `client_ca_file`): a client that trusts the server's CA and presents a certificate the
//! client CA signed gets through (health, and `PullFeed` with a subscriber's token); a
//! plaintext client, a TLS client without a certificate, and one whose certificate another
//! CA signed do not.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use zhida_proto::relay::v1::{PullFeedRequest, relay_service_client::RelayServiceClient};
use zhida_runtime::auth::Kind;

use crate::helpers::{TestEnv, bearer};

/// A CA that signs certificates for tests.
struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        Self(CertifiedIssuer::self_signed(params, key).expect("CA certificate"))
    }

    fn pem(&self) -> String {
        self.0.pem()
    }

    /// A certificate for `names` and `usage` signed by this CA, and its key (PEM).
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.0).expect("certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// `zhida serve`, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TLS client configuration that trusts `server_ca`, presenting `client` if given.
fn tls(server_ca: &str, client: Option<&(String, String)>) -> ClientTlsConfig {
    let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(server_ca));
    match client {
        Some((cert, key)) => config.identity(Identity::from_pem(cert, key)),
        None => config,
    }
}

async fn connect(url: &str, tls: Option<ClientTlsConfig>) -> Result<Channel, String> {
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .expect("valid url")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| format!("{e:?}"))?;
    }
    endpoint.connect().await.map_err(|e| format!("{e:?}"))
}

/// The server's health as this client sees it, or why it could not ask.
async fn health(url: &str, tls: Option<ClientTlsConfig>) -> Result<i32, String> {
    let channel = connect(url, tls).await?;
    let request = HealthCheckRequest {
        service: String::new(),
    };
    HealthClient::new(channel)
        .check(request)
        .await
        .map(|response| response.into_inner().status)
        .map_err(|status| format!("{status:?}"))
}

fn write(dir: &Path, name: &str, pem: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("written");
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_client_ca_only_clients_holding_a_certificate_it_signed_get_through() {
    let env = TestEnv::new("mtls").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server_ca = Ca::new("Zhida test server CA");
    let client_ca = Ca::new("Zhida test client CA");
    let other_ca = Ca::new("Someone else's CA");
    let (server_cert, server_key) = server_ca.issue(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = client_ca.issue(
        &["assoc-yangpu-software"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let stranger = other_ca.issue(
        &["assoc-yangpu-software"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut server = Process(
        Command::new(env!("CARGO_BIN_EXE_zhida"))
            .args(["serve", "relay"])
            .envs(env.vars())
            .env("ZHIDA_GRPC__LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "ZHIDA_GRPC__TLS__CERT_FILE",
                write(dir.path(), "server.pem", &server_cert),
            )
            .env(
                "ZHIDA_GRPC__TLS__KEY_FILE",
                write(dir.path(), "server.key", &server_key),
            )
            .env(
                "ZHIDA_GRPC__TLS__CLIENT_CA_FILE",
                write(dir.path(), "client-ca.pem", &client_ca.pem()),
            )
            .stdin(Stdio::null())
            .spawn()
            .expect("zhida starts"),
    );
    let url = format!("https://127.0.0.1:{port}");
    let trusted = || tls(&server_ca.pem(), Some(&client));

    // Started once a client with a certificate sees SERVING.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match health(&url, Some(trusted())).await {
            Ok(status) if status == ServingStatus::Serving as i32 => break,
            outcome => {
                assert!(
                    server.0.try_wait().expect("status").is_none(),
                    "zhida exited: {outcome:?}"
                );
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never SERVING over mutual TLS: {outcome:?}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Its calls still need a token, and with one they are answered.
    let mut relay = RelayServiceClient::with_interceptor(
        connect(&url, Some(trusted())).await.expect("connect"),
        bearer(Kind::Subscriber, "assoc-yangpu-software", &[]),
    );
    // Answered past authentication: this subscriber is not registered.
    let answered = relay
        .pull_feed(PullFeedRequest::default())
        .await
        .expect_err("an unregistered subscriber");
    assert_eq!(answered.code(), tonic::Code::NotFound, "{answered:?}");

    let plaintext = health(&format!("http://127.0.0.1:{port}"), None).await;
    assert!(plaintext.is_err(), "a plaintext client: {plaintext:?}");
    let anonymous = health(&url, Some(tls(&server_ca.pem(), None))).await;
    assert!(anonymous.is_err(), "no client certificate: {anonymous:?}");
    let foreign = health(&url, Some(tls(&server_ca.pem(), Some(&stranger)))).await;
    assert!(foreign.is_err(), "another CA's certificate: {foreign:?}");
    // The refusals did not hurt the server.
    assert_eq!(
        health(&url, Some(trusted())).await,
        Ok(ServingStatus::Serving as i32)
    );
}
