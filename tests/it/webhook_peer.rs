//! A Standard Webhooks endpoint for the relay's tests: `tests/peers/webhook_receiver.py`, which
//! checks each delivery's signature with the `standardwebhooks` package from PyPI (so our
//! signatures are verified by code we did not write), records it, and answers 204 (verified),
//! 401 (not verified), or, on request, 500, a timeout or a dropped connection.
//!
//! It runs under `$ZHIDA_WEBHOOK_PYTHON` (the venv `deploy/servers.sh up` makes), else
//! `python3`, serves HTTPS with a certificate for 127.0.0.1 signed by a CA made per peer
//! ([`WebhookPeer::ca_file`]) and takes the test's control calls as plain HTTP on another
//! port of 127.0.0.1. It exits when the test drops it, or when the test process dies (its
//! stdin closes).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde::Deserialize;
use tempfile::TempDir;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};

const RECEIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/peers/webhook_receiver.py"
);

/// How the next deliveries fail (`WebhookPeer::fail_next`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Answer 500.
    Status500,
    /// Read the delivery, answer nothing for 30 s (longer than the sender waits), then close.
    Timeout,
    /// Read the delivery, then reset the connection without an answer.
    Drop,
}

impl FailMode {
    fn wire(self) -> &'static str {
        match self {
            Self::Status500 => "500",
            Self::Timeout => "timeout",
            Self::Drop => "drop",
        }
    }
}

/// What the peer did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub enum Answered {
    Status(u16),
    Timeout,
    Drop,
}

impl TryFrom<serde_json::Value> for Answered {
    type Error = String;

    fn try_from(value: serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::String(s) if s == "timeout" => Ok(Self::Timeout),
            serde_json::Value::String(s) if s == "drop" => Ok(Self::Drop),
            serde_json::Value::Number(n) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .map(Self::Status)
                .ok_or_else(|| format!("not a status: {n}")),
            other => Err(format!("not an answer: {other}")),
        }
    }
}

/// One request the peer received on `/hooks/…`, as it saw it.
#[derive(Debug, Clone, Deserialize)]
pub struct Delivery {
    /// The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers, if sent.
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    pub signature: Option<String>,
    /// Whether `standardwebhooks` verified it with one of the secrets set at the time.
    pub verified: bool,
    /// Why not (the library's errors, one per secret).
    pub error: Option<String>,
    pub answered: Answered,
    /// The body as JSON, or as a JSON string if it is not JSON.
    pub body: serde_json::Value,
    /// The request path, `/hooks/<name>`.
    pub path: String,
}

/// A running receiver, killed when dropped.
pub struct WebhookPeer {
    /// `https://127.0.0.1:<port>/hooks/<name>`.
    pub url: String,
    /// The CA certificate (PEM) that signed the peer's certificate: the sender must trust it.
    pub ca_file: PathBuf,
    control: SocketAddr,
    python: String,
    /// Holds the receiver's stdin open: it exits when that closes.
    _child: Child,
    _dir: TempDir,
}

impl WebhookPeer {
    /// Starts a receiver whose URL ends in `/hooks/<name>`; it has no secrets (so verifies
    /// nothing) until `set_secrets`.
    pub async fn start(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, cert, key) = certificates();
        let ca_file = write(dir.path(), "ca.pem", &ca);
        let cert_file = write(dir.path(), "cert.pem", &cert);
        let key_file = write(dir.path(), "key.pem", &key);
        let python = std::env::var("ZHIDA_WEBHOOK_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(&python)
            .arg(RECEIVER)
            .arg("--cert")
            .arg(&cert_file)
            .arg("--key")
            .arg(&key_file)
            .args(["--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{python} {RECEIVER}: {e}"));
        let stdout = child.stdout.take().expect("stdout piped");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(15),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("the webhook receiver starts within 15 s")
        .expect("the webhook receiver's stdout");
        // `listening <port> control <port>`
        let ports: Vec<u16> = match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["listening", port, "control", control] => [port, control]
                .iter()
                .map(|p| p.parse().expect("a port"))
                .collect(),
            _ => panic!(
                "the webhook receiver did not start (got {line:?}; it needs the standardwebhooks \
                 package: run `deploy/servers.sh up` and `eval \"$(deploy/servers.sh env)\"`, \
                 which set ZHIDA_WEBHOOK_PYTHON)"
            ),
        };
        Self {
            url: format!("https://127.0.0.1:{}/hooks/{name}", ports[0]),
            ca_file,
            control: SocketAddr::from(([127, 0, 0, 1], ports[1])),
            python,
            _child: child,
            _dir: dir,
        }
    }

    /// Deliveries are verified against these from now on (verified if any of them passes).
    pub async fn set_secrets(&self, secrets: &[String]) {
        self.configure(serde_json::json!({ "secrets": secrets }))
            .await;
    }

    /// The next `n` deliveries fail as `mode` (after being recorded), whatever their signature.
    pub async fn fail_next(&self, n: u32, mode: FailMode) {
        self.configure(serde_json::json!({ "fail": n, "mode": mode.wire() }))
            .await;
    }

    /// Every delivery so far, in arrival order.
    pub async fn deliveries(&self) -> Vec<Delivery> {
        let (status, body) = self.request("GET", "/_deliveries", "").await;
        assert_eq!(status, 200, "GET /_deliveries: {body}");
        serde_json::from_str(&body).expect("deliveries")
    }

    async fn configure(&self, plan: serde_json::Value) {
        let (status, body) = self.request("POST", "/_control", &plan.to_string()).await;
        assert_eq!(status, 204, "POST /_control {plan}: {body}");
    }

    /// One HTTP/1.1 exchange with the control port: (status, body).
    async fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.control)
            .await
            .expect("the webhook receiver's control port");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.control,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("request sent");
        let mut response = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            stream.read_to_string(&mut response),
        )
        .await
        .expect("the webhook receiver answers within 10 s")
        .expect("response read");
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("an HTTP response: {response:?}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {head:?}"));
        (status, body.to_string())
    }
}

/// A CA (PEM) and a certificate for 127.0.0.1 it signed, with its key (PEM).
fn certificates() -> (String, String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "zhida test webhook CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca).expect("certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("written");
    path
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use base64::{Engine as _, engine::general_purpose::STANDARD};
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha256;

    use super::*;

    /// POSTs `body` to the peer over HTTPS (Python's urllib, trusting the peer's CA, giving
    /// up after 2 s): the status, or why there is none.
    const POST: &str = r#"
import json, ssl, sys, urllib.error, urllib.request
url, cafile, headers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
request = urllib.request.Request(url, sys.stdin.buffer.read(), headers, method="POST")
try:
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=cafile), timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception as e:
    print(f"{type(e).__name__}: {e}")
"#;

    async fn post(peer: &WebhookPeer, headers: &[(&str, &str)], body: &str) -> Result<u16, String> {
        let headers: serde_json::Map<_, _> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        let mut child = Command::new(&peer.python)
            .args(["-c", POST, &peer.url])
            .arg(&peer.ca_file)
            .arg(serde_json::Value::Object(headers).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python");
        let mut stdin = child.stdin.take().expect("stdin piped");
        stdin.write_all(body.as_bytes()).await.expect("body");
        drop(stdin);
        let out = child.wait_with_output().await.expect("python's output");
        let out = String::from_utf8_lossy(&out.stdout).trim().to_string();
        out.parse().map_err(|_| out)
    }

    fn secret() -> String {
        format!("whsec_{}", STANDARD.encode(rand::random::<[u8; 32]>()))
    }

    /// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the secret's decoded bytes.
    fn sign(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
            .expect("base64 secret");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key length");
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    #[tokio::test]
    async fn the_webhook_peer_verifies_with_standardwebhooks_and_fails_on_request() {
        let peer = WebhookPeer::start("selftest").await;
        assert!(peer.url.ends_with("/hooks/selftest"), "{}", peer.url);
        let (secret, old, other) = (secret(), secret(), secret());
        peer.set_secrets(&[old, secret.clone()]).await;

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            .to_string();
        let body = r#"{"type":"policy.published","n":1}"#;
        let good = sign(&secret, "msg_1", &now, body);
        let bad = sign(&other, "msg_1", &now, body);
        let send = |signature: String| {
            let now = now.clone();
            let peer = &peer;
            async move {
                let headers = [
                    ("content-type", "application/json"),
                    ("webhook-id", "msg_1"),
                    ("webhook-timestamp", now.as_str()),
                    ("webhook-signature", signature.as_str()),
                ];
                post(peer, &headers, body).await
            }
        };

        assert_eq!(send(good.clone()).await, Ok(204));
        assert_eq!(send(bad.clone()).await, Ok(401));
        // A rotation's two signatures, one of them good.
        assert_eq!(send(format!("{bad} {good}")).await, Ok(204));

        peer.fail_next(2, FailMode::Status500).await;
        assert_eq!(send(good.clone()).await, Ok(500));
        assert_eq!(send(good.clone()).await, Ok(500));
        assert_eq!(send(good.clone()).await, Ok(204));
        peer.fail_next(1, FailMode::Timeout).await;
        let timeout = send(good.clone()).await.expect_err("no answer");
        assert!(timeout.contains("timed out"), "{timeout}");
        peer.fail_next(1, FailMode::Drop).await;
        send(good.clone()).await.expect_err("no answer");
        assert_eq!(send(good.clone()).await, Ok(204));

        let deliveries = peer.deliveries().await;
        let first = &deliveries[0];
        assert_eq!(first.webhook_id.as_deref(), Some("msg_1"));
        assert_eq!(first.webhook_timestamp.as_deref(), Some(now.as_str()));
        assert_eq!(first.signature.as_deref(), Some(good.as_str()));
        assert_eq!(first.error, None);
        assert_eq!(
            first.body,
            serde_json::json!({ "type": "policy.published", "n": 1 })
        );
        assert_eq!(first.path, "/hooks/selftest");
        let error = deliveries[1].error.as_deref().expect("why not verified");
        assert!(error.contains("No matching signature"), "{error}");
        let seen: Vec<(bool, Answered)> = deliveries
            .iter()
            .map(|d| (d.verified, d.answered))
            .collect();
        assert_eq!(
            seen,
            [
                (true, Answered::Status(204)),
                (false, Answered::Status(401)),
                (true, Answered::Status(204)),
                (true, Answered::Status(500)),
                (true, Answered::Status(500)),
                (true, Answered::Status(204)),
                (true, Answered::Timeout),
                (true, Answered::Drop),
                (true, Answered::Status(204)),
            ]
        );
    }
}
