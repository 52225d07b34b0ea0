//! The webhook receiver `zhida demo` starts for its association: an HTTPS endpoint on
//! 127.0.0.1 with a certificate from a CA made for the run (the relay is told to trust it,
//! and to allow loopback, which its SSRF guard refuses otherwise). Each POST is checked as
//! any association's receiver would check it: the Standard Webhooks signature over
//! `id.timestamp.body` with the secret the registration returned, and the timestamp within
//! five minutes; then answered 204 (401 when it does not verify), keeping the connection.

use std::{
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::{io::AsyncWriteExt, net::TcpListener};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};
use zhida_webhook::{
    Secret,
    receiver::{Request, read_request},
};

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
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // Requests one after another on the connection (keep-alive).
                    let mut buffer = Vec::new();
                    while let Some(request) = read_request(&mut tls, &mut buffer).await {
                        let delivery = check(&key, &request);
                        let answer = if delivery.verified {
                            "204 No Content"
                        } else {
                            "401 Unauthorized"
                        };
                        log.lock().unwrap_or_else(|e| e.into_inner()).push(delivery);
                        let response = format!("HTTP/1.1 {answer}\r\ncontent-length: 0\r\n\r\n");
                        if tls.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
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

/// The delivery `request` as received, verified against the secret.
fn check(secret: &Mutex<Option<Secret>>, request: &Request) -> Received {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let secrets: Vec<Secret> = secret
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    Received {
        webhook_id: request.webhook_id().to_string(),
        verified: request.verify(&secrets, now).is_ok(),
        body: serde_json::from_slice(&request.body).unwrap_or_default(),
    }
}
