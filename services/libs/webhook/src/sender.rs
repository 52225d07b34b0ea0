//! One delivery attempt: an HTTPS POST of a signed message to an endpoint, and what came of
//! it. Retrying, disabling an endpoint and recording attempts are the relay's business; this
//! module only makes the request safely and says how it went.
//!
//! Safely means the [`Guard`] decides where the request goes:
//! - the URL is checked on every attempt ([`Guard::check_url`]); an IP-address host is
//!   judged there, since the HTTP client connects to such hosts without resolving them;
//! - a host name is resolved by the guard itself, plugged in as the client's resolver, so
//!   the addresses are judged when the connection is made, not when the endpoint was
//!   registered (DNS rebinding);
//! - redirects are not followed (a 3xx is a failed attempt): a redirect to
//!   `http://169.254.169.254/` would otherwise walk around both checks;
//! - no proxy from the environment is used (the guard judges the endpoint, not a proxy).
//!
//! TLS is rustls with ring and the Mozilla roots (webpki-roots): the relay's container
//! image needs no CA bundle, and no OpenSSL is linked. Tests add their own CA
//! ([`SenderConfig::extra_root_certs_pem`]).
//!
//! Errors are kept short (a status code, an error kind and its innermost cause) and never
//! carry the URL: endpoint URLs may hold tokens in their query.

use std::{sync::Arc, time::Duration};

use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    header::{CONTENT_TYPE, HeaderValue},
    redirect,
};

use crate::{Guard, GuardError, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// The `user-agent` of deliveries.
pub const USER_AGENT: &str = "zhida-relay";
/// How long an attempt may take, connecting included, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longer failure details are cut.
const MAX_DETAIL: usize = 200;

/// How a [`Sender`] is made.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// How long an attempt may take in all (connect, TLS, request, response head).
    pub timeout: Duration,
    /// PEM certificates (each entry may hold several) trusted besides the Mozilla roots:
    /// for tests, a CA of their own.
    pub extra_root_certs_pem: Vec<Vec<u8>>,
    /// Where deliveries may go.
    pub guard: Guard,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            extra_root_certs_pem: Vec::new(),
            guard: Guard::default(),
        }
    }
}

/// Why a [`Sender`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("extra root certificate {index} is not PEM: {source}")]
    RootCert {
        index: usize,
        #[source]
        source: reqwest::Error,
    },
    #[error("extra root certificate {index} holds no certificate")]
    EmptyRootCert { index: usize },
    #[error("cannot build the HTTPS client: {0}")]
    Client(#[source] reqwest::Error),
}

/// What came of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The endpoint answered 2xx.
    Delivered { status: u16 },
    /// Another status (`HTTP 500`, `HTTP 302`: redirects are not followed), a timeout, or a
    /// connection or TLS error: worth retrying.
    Failed { detail: String },
    /// The guard refused the URL or an address of its host: not sent, and retrying will not
    /// help unless the endpoint's DNS changes.
    Refused { reason: String },
}

/// Makes delivery attempts; cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: Guard,
}

/// The client's resolver: the guard's.
struct GuardedResolver(Guard);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            // The client sets the port itself.
            let addrs = guard.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

impl Sender {
    pub fn new(config: SenderConfig) -> Result<Self, SenderError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .redirect(redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(GuardedResolver(config.guard.clone())));
        for (index, pem) in config.extra_root_certs_pem.iter().enumerate() {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|source| SenderError::RootCert { index, source })?;
            if certs.is_empty() {
                return Err(SenderError::EmptyRootCert { index });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(SenderError::Client)?;
        Ok(Self {
            client,
            guard: config.guard,
        })
    }

    /// POSTs `body` (JSON) to `url` with the Standard Webhooks headers: `msg_id`,
    /// `timestamp` (Unix seconds) and `signature` as [`crate::sign()`] made it over them.
    pub async fn send(
        &self,
        url: &str,
        msg_id: &str,
        timestamp: i64,
        signature: &str,
        body: Vec<u8>,
    ) -> Attempt {
        let endpoint = match self.guard.check_url(url) {
            Ok(endpoint) => endpoint,
            Err(e) => {
                return Attempt::Refused {
                    reason: e.to_string(),
                };
            }
        };
        let result = self
            .client
            .post(endpoint.url().clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(HEADER_ID, msg_id)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body)
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => Attempt::Delivered {
                status: response.status().as_u16(),
            },
            Ok(response) => Attempt::Failed {
                detail: format!("HTTP {}", response.status().as_u16()),
            },
            Err(e) => outcome_of(e.without_url()),
        }
    }
}

/// A failed request as an attempt: refused if the guard refused an address, else failed
/// with the error's kind and innermost cause.
fn outcome_of(err: reqwest::Error) -> Attempt {
    let mut cause: &(dyn std::error::Error + 'static) = &err;
    loop {
        if let Some(refused) = cause.downcast_ref::<GuardError>() {
            return Attempt::Refused {
                reason: refused.to_string(),
            };
        }
        match cause.source() {
            Some(next) => cause = next,
            None => break,
        }
    }
    if err.is_timeout() {
        return Attempt::Failed {
            detail: "timeout".into(),
        };
    }
    let kind = if err.is_connect() {
        "connect"
    } else if err.is_request() {
        "request"
    } else if err.is_body() {
        "body"
    } else {
        "error"
    };
    let mut detail = format!("{kind}: {cause}");
    if detail.len() > MAX_DETAIL {
        let mut end = MAX_DETAIL;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
    Attempt::Failed { detail }
}

#[cfg(test)]
mod tests {
    use std::{
        net::SocketAddr,
        sync::atomic::{AtomicUsize, Ordering},
        time::Instant,
    };

    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
        sync::mpsc,
    };
    use tokio_rustls::{
        TlsAcceptor,
        rustls::{
            self, ServerConfig,
            pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
        },
    };

    use super::*;
    use crate::{DEFAULT_TOLERANCE_SECS, Secret, sign, verify};

    /// What the test server answers.
    #[derive(Clone, Copy)]
    enum Reply {
        Status(u16),
        /// A 302 to another path of the same server.
        Redirect,
        /// Reads the request, then says nothing and keeps the connection open.
        Silent,
    }

    /// A request as the server read it.
    struct Received {
        head: String,
        body: Vec<u8>,
    }

    impl Received {
        fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim())
            })
        }
    }

    /// An HTTPS server on 127.0.0.1 with a certificate (for 127.0.0.1 and localhost) from
    /// a CA of its own.
    struct Server {
        addr: SocketAddr,
        ca_pem: String,
        connections: Arc<AtomicUsize>,
        requests: mpsc::UnboundedReceiver<Received>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Server {
        async fn start(reply: Reply) -> Self {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params
                .distinguished_name
                .push(DnType::CommonName, "test CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
            let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
                .expect("CA certificate");
            let params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
                .expect("params");
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, &ca).expect("certificate");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let tls = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
                )
                .expect("server TLS config");
            let acceptor = TlsAcceptor::from(Arc::new(tls));
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address");
            let connections = Arc::new(AtomicUsize::new(0));
            let (tx, requests) = mpsc::unbounded_channel();
            let counter = connections.clone();
            let task = tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let Some(received) = read_request(&mut tls).await else {
                            return;
                        };
                        let _ = tx.send(received);
                        let answer = match reply {
                            Reply::Status(code) => format!(
                                "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            ),
                            Reply::Redirect => format!(
                                "HTTP/1.1 302 Found\r\nlocation: https://{addr}/elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            ),
                            Reply::Silent => {
                                std::future::pending::<()>().await;
                                return;
                            }
                        };
                        let _ = tls.write_all(answer.as_bytes()).await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
            Self {
                addr,
                ca_pem: ca.pem(),
                connections,
                requests,
                task,
            }
        }

        fn sender(&self, guard: Guard, timeout: Duration) -> Sender {
            Sender::new(SenderConfig {
                timeout,
                extra_root_certs_pem: vec![self.ca_pem.clone().into_bytes()],
                guard,
            })
            .expect("sender")
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    /// Reads one HTTP/1.1 request with a content-length body.
    async fn read_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<Received> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
        let mut received = Received {
            head,
            body: buf[head_end..].to_vec(),
        };
        let len: usize = received.header("content-length")?.parse().ok()?;
        while received.body.len() < len {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            received.body.extend_from_slice(&chunk[..n]);
        }
        Some(received)
    }

    fn allow_loopback() -> Guard {
        Guard::from_config(&["127.0.0.0/8".to_owned(), "::1/128".to_owned()]).expect("guard")
    }

    const BODY: &[u8] = br#"{"policy":"p-1"}"#;

    /// An attempt whose signature does not matter.
    async fn post(sender: &Sender, url: &str) -> Attempt {
        sender.send(url, "m", 1, "v1,x", BODY.to_vec()).await
    }

    #[tokio::test]
    async fn delivers_signed_and_reports_2xx() {
        let mut server = Server::start(Reply::Status(204)).await;
        let sender = server.sender(allow_loopback(), DEFAULT_TIMEOUT);
        let secret = Secret::generate();
        let now = 1_764_000_000;
        let signature = sign(std::slice::from_ref(&secret), "msg_1", now, BODY);
        let url = format!("https://{}/hook?token=t", server.addr);
        let attempt = sender
            .send(&url, "msg_1", now, &signature, BODY.to_vec())
            .await;
        assert_eq!(attempt, Attempt::Delivered { status: 204 });

        let got = server.requests.recv().await.expect("a request");
        assert!(
            got.head.starts_with("POST /hook?token=t HTTP/1.1\r\n"),
            "{}",
            got.head
        );
        assert_eq!(got.header("webhook-id"), Some("msg_1"));
        assert_eq!(got.header("webhook-timestamp"), Some("1764000000"));
        assert_eq!(got.header("webhook-signature"), Some(signature.as_str()));
        assert_eq!(got.header("content-type"), Some("application/json"));
        assert_eq!(got.header("user-agent"), Some(USER_AGENT));
        assert_eq!(got.body, BODY);
        // What a receiver does with it.
        assert_eq!(
            verify(
                &[secret],
                got.header("webhook-id").expect("id"),
                got.header("webhook-timestamp").expect("timestamp"),
                got.header("webhook-signature").expect("signature"),
                &got.body,
                now + 1,
                DEFAULT_TOLERANCE_SECS,
            ),
            Ok(())
        );

        // A name goes through the guard's resolver.
        let url = format!("https://localhost:{}/hook", server.addr.port());
        let attempt = sender
            .send(&url, "msg_2", now, &signature, BODY.to_vec())
            .await;
        assert_eq!(attempt, Attempt::Delivered { status: 204 });
        let got = server.requests.recv().await.expect("a request");
        assert_eq!(got.header("webhook-id"), Some("msg_2"));
    }

    #[tokio::test]
    async fn other_statuses_fail_and_redirects_are_not_followed() {
        for (reply, status) in [(Reply::Status(500), 500), (Reply::Redirect, 302)] {
            let mut server = Server::start(reply).await;
            let sender = server.sender(allow_loopback(), DEFAULT_TIMEOUT);
            let attempt = post(&sender, &format!("https://{}/", server.addr)).await;
            let detail = format!("HTTP {status}");
            assert_eq!(attempt, Attempt::Failed { detail });
            let first = server.requests.recv().await.expect("the request");
            assert!(first.head.starts_with("POST / "), "{}", first.head);
            // A followed redirect would be a second request.
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(server.requests.try_recv().is_err(), "{status} was followed");
        }
    }

    #[tokio::test]
    async fn a_silent_endpoint_times_out() {
        let server = Server::start(Reply::Silent).await;
        let sender = server.sender(allow_loopback(), Duration::from_secs(1));
        let url = format!("https://{}/", server.addr);
        let started = Instant::now();
        let attempt = post(&sender, &url).await;
        assert_eq!(
            attempt,
            Attempt::Failed {
                detail: "timeout".into()
            }
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn connection_and_tls_errors_fail() {
        let server = Server::start(Reply::Status(200)).await;
        // No extra root: the server's CA is unknown.
        let sender = Sender::new(SenderConfig {
            guard: allow_loopback(),
            ..SenderConfig::default()
        })
        .expect("sender");
        let url = format!("https://{}/?token=secret", server.addr);
        let attempt = post(&sender, &url).await;
        let Attempt::Failed { detail } = attempt else {
            panic!("not failed: {attempt:?}");
        };
        assert!(detail.starts_with("connect: "), "{detail}");
        assert!(detail.to_lowercase().contains("certificate"), "{detail}");
        assert!(!detail.contains("secret"), "{detail}");

        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = closed.local_addr().expect("address").port();
        drop(closed);
        let attempt = post(&sender, &format!("https://127.0.0.1:{port}/")).await;
        let Attempt::Failed { detail } = attempt else {
            panic!("not failed: {attempt:?}");
        };
        assert!(detail.starts_with("connect: "), "{detail}");
        assert!(detail.to_lowercase().contains("refused"), "{detail}");
    }

    #[tokio::test]
    async fn the_guard_refuses_before_connecting() {
        let server = Server::start(Reply::Status(200)).await;
        let sender = server.sender(Guard::default(), DEFAULT_TIMEOUT);
        let port = server.addr.port();

        // An address is judged from the URL, a name by what it resolves to when connecting.
        for (url, says) in [
            (
                format!("https://127.0.0.1:{port}/"),
                "address 127.0.0.1 is not",
            ),
            (
                format!("https://localhost:{port}/"),
                "localhost resolves to",
            ),
        ] {
            let attempt = post(&sender, &url).await;
            let Attempt::Refused { reason } = attempt else {
                panic!("{url} not refused: {attempt:?}");
            };
            assert!(
                reason.contains(says) && reason.contains("(loopback)"),
                "{reason}"
            );
        }
        let attempt = post(&sender, &format!("http://localhost:{port}/")).await;
        assert!(matches!(attempt, Attempt::Refused { .. }), "{attempt:?}");
        assert_eq!(server.connections(), 0);
    }

    #[test]
    fn bad_root_certificates_are_refused() {
        let config = |pem: &[u8]| SenderConfig {
            extra_root_certs_pem: vec![pem.to_vec()],
            ..SenderConfig::default()
        };
        assert!(matches!(
            Sender::new(config(b"not a certificate")),
            Err(SenderError::EmptyRootCert { index: 0 })
        ));
        assert!(Sender::new(SenderConfig::default()).is_ok());
    }
}
