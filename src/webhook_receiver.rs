//! The webhook receiver `zhida demo` starts for its association: an HTTPS endpoint on
//! 127.0.0.1 with a certificate from a CA made for the run (the relay is told to trust it,
//! and to allow loopback, which its SSRF guard refuses otherwise). Each POST is checked as
//! any association's receiver would check it: the Standard Webhooks signature over
//! `id.timestamp.body` with the secret the registration returned, and the timestamp within
//! five minutes; then answered 204 (401 when it does not verify).

use std::{
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};
use zhida_webhook::Secret;

/// Largest request read; a delivery is a few KiB.
const MAX_REQUEST: usize = 1 << 20;

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub verified: bool,
    pub body: serde_json::Value,
}

pub struct Receiver {
    /// `https://127.0.0.1:<port>/hooks/<name>`.
    pub url: String,
    /// The CA that signed its certificate, in PEM.
    pub ca_pem: String,
    secret: Arc<Mutex<Option<Secret>>>,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "zhida demo webhook CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()])?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let tls = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )?;
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let secret: Arc<Mutex<Option<Secret>>> = Arc::default();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (key, log) = (secret.clone(), received.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, key, log) = (acceptor.clone(), key.clone(), log.clone());
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let answer = match read_request(&mut tls).await {
                            Ok((headers, body)) => {
                                let delivery = check(&key, &headers, &body);
                                let verified = delivery.verified;
                                log.lock().unwrap_or_else(|e| e.into_inner()).push(delivery);
                                if verified {
                                    "204 No Content"
                                } else {
                                    "401 Unauthorized"
                                }
                            }
                            Err(_) => "400 Bad Request",
                        };
                        let response = format!(
                            "HTTP/1.1 {answer}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                        let _ = tls.write_all(response.as_bytes()).await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Ok(Self {
            url: format!("https://127.0.0.1:{port}/hooks/{name}"),
            ca_pem: ca.pem(),
            secret,
            received,
            task,
        })
    }

    /// The secret to verify with (what PutSubscriber returned).
    pub fn set_secret(&self, secret: &str) -> anyhow::Result<()> {
        let secret = Secret::parse(secret).context("the webhook secret")?;
        *self.secret.lock().unwrap_or_else(|e| e.into_inner()) = Some(secret);
        Ok(())
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Reads one HTTP/1.1 request: lower-cased headers, and the body by content-length.
async fn read_request(
    stream: &mut (impl AsyncReadExt + Unpin),
) -> anyhow::Result<(Vec<(String, String)>, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        anyhow::ensure!(buffer.len() < MAX_REQUEST, "request head too large");
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buffer[..head_end])?;
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    anyhow::ensure!(length <= MAX_REQUEST, "body too large");
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed");
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok((headers, body))
}

/// The delivery in `headers` and `body`, verified against the secret.
fn check(secret: &Mutex<Option<Secret>>, headers: &[(String, String)], body: &[u8]) -> Received {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let secrets: Vec<Secret> = secret
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    let verified = zhida_webhook::verify(
        &secrets,
        header(zhida_webhook::HEADER_ID),
        header(zhida_webhook::HEADER_TIMESTAMP),
        header(zhida_webhook::HEADER_SIGNATURE),
        body,
        now,
        zhida_webhook::DEFAULT_TOLERANCE_SECS,
    )
    .is_ok();
    Received {
        webhook_id: header(zhida_webhook::HEADER_ID).to_string(),
        verified,
        body: serde_json::from_slice(body).unwrap_or_default(),
    }
}
