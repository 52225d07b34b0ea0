//! The SMTP client behind `smtp.mode = "smtp"`: a pool of at most `smtp.max_connections`
//! connections to the one configured server, each reused for up to
//! `smtp.max_messages_per_connection` messages, speaking the part of SMTP a notifier
//! needs (EHLO/HELO, AUTH PLAIN or LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and
//! PIPELINING (RFC 2920) when the server offers it.
//!
//! Why not lettre's transport: it sends MAIL, RCPT, DATA and the message as four round
//! trips, its pool opens as many connections as there are concurrent senders, and it
//! writes the end-of-data marker apart from the message (with Nagle and the server's
//! delayed ACK every message then waited ~40 ms for its `250`). Here every socket has
//! `TCP_NODELAY` and a transaction is two writes:
//! 1. `MAIL FROM`, `RCPT TO` and `DATA` together, their replies read in order (without
//!    PIPELINING: one command, one reply, at a time). With several recipients `DATA`
//!    waits for their replies, so that a refused one stops the message for all;
//! 2. the dot-stuffed message with the end-of-data marker, then the final reply.
//!
//! A refused command (4xx: transient, 5xx: permanent) ends the transaction with `RSET`,
//! after which the connection serves the next message (it is dropped if `RSET` fails).
//!
//! Exactly once: the server has the message when it has read the end-of-data marker; the
//! client learns it one round trip later, and a crash in that window sends it again
//! (README, "Known limits"). Before the marker nothing is delivered, so a reused
//! connection found dead before it (closed, reset, `421`) is replaced and the message
//! tried once more on a new connection; once the marker is written a lost connection is
//! a transient error, never a silent retry.

use std::{
    fmt,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use lettre::{Message, address::Envelope};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
    sync::Semaphore,
};

use super::mailer::{MailError, redact};

/// A reply line longer than this is not SMTP (RFC 5321 allows 512 octets).
const MAX_LINE: u64 = 4096;
/// Lines of one multi-line reply (an EHLO answer has a dozen).
const MAX_LINES: usize = 100;

/// Where the pool's server is and how the pool uses it.
pub(crate) struct Settings {
    pub host: String,
    pub port: u16,
    /// For connecting (greeting, EHLO, AUTH included) and for each transaction.
    pub timeout: Duration,
    /// SMTP AUTH user and password.
    pub credentials: Option<(String, SecretString)>,
    /// The name this client gives in EHLO.
    pub hello: String,
    pub max_connections: usize,
    pub max_messages_per_connection: usize,
    /// Use PIPELINING when the server offers it.
    pub pipelining: bool,
    /// A connection idle longer than this answers a NOOP before it is reused.
    pub idle_check: Duration,
}

/// At most `max_connections` connections to one server; a sender waits for one rather
/// than opening more. A connection is either held by the sender that holds a permit or
/// idle in `idle`, and one is opened only when none is idle, so open ≤ permits.
pub(crate) struct Pool {
    settings: Settings,
    permits: Semaphore,
    /// Most recently used last: busy periods reuse the warm ones.
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            permits: Semaphore::new(settings.max_connections),
            settings,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Hands `message` to the server: its reply (`250 …`) or why not.
    pub(crate) async fn send(&self, message: &Message) -> Result<String, MailError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let envelope = message.envelope();
        let data = message.formatted();
        let mut retried = false;
        loop {
            let (mut connection, reused) = self.checkout().await?;
            let pipelining = self.settings.pipelining && connection.pipelining;
            let outcome = tokio::time::timeout(
                self.settings.timeout,
                connection.transaction(envelope, &data, pipelining),
            )
            .await;
            connection.messages += 1;
            let failure = match outcome {
                Ok(Ok(reply)) => {
                    self.checkin(connection).await;
                    // Recorded in the ledger and status events: masked like refusals.
                    return Ok(redact(&reply.to_string()));
                }
                Err(_) => {
                    return Err(MailError::Transient(format!(
                        "no answer within {:?}",
                        self.settings.timeout
                    )));
                }
                Ok(Err(failure)) => failure,
            };
            match failure {
                Failure::Refused(reply) => {
                    if tokio::time::timeout(self.settings.timeout, connection.reset())
                        .await
                        .is_ok_and(|reset| reset.is_ok())
                    {
                        self.checkin(connection).await;
                    }
                    return Err(reply.error());
                }
                Failure::Unsupported(what) => {
                    self.checkin(connection).await;
                    return Err(MailError::Transient(what.into()));
                }
                // Nothing delivered yet: the server closed a connection it had kept idle.
                Failure::Broken(_) if reused && !connection.data_sent && !retried => {
                    retried = true;
                }
                Failure::Broken(error) => {
                    return Err(MailError::Transient(format!(
                        "connection to {}:{} lost: {error}",
                        self.settings.host, self.settings.port
                    )));
                }
            }
        }
    }

    /// An idle connection (one idle for long answers a NOOP first), or a new one; `true`
    /// when reused.
    async fn checkout(&self) -> Result<(Connection, bool), MailError> {
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(mut connection) = idle else {
                return Ok((Connection::open(&self.settings).await?, false));
            };
            if connection.last_used.elapsed() < self.settings.idle_check
                || tokio::time::timeout(self.settings.timeout, connection.noop())
                    .await
                    .is_ok_and(|noop| noop.is_ok())
            {
                return Ok((connection, true));
            }
        }
    }

    /// Back to the idle ones, or QUIT after its last message.
    async fn checkin(&self, mut connection: Connection) {
        if connection.messages >= self.settings.max_messages_per_connection {
            let _ = tokio::time::timeout(self.settings.timeout, connection.quit()).await;
            return;
        }
        connection.last_used = Instant::now();
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection);
    }
}

/// A server reply: its code and its lines' text (without the code).
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// A refusal as the notifier records it, addresses masked (replies quote them).
    fn error(&self) -> MailError {
        let text = redact(&self.to_string());
        match self.code {
            500..=599 => MailError::Permanent(text),
            400..=499 => MailError::Transient(text),
            _ => MailError::Transient(format!("unexpected reply: {text}")),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" "))
    }
}

/// Why a command or transaction did not succeed.
#[derive(Debug)]
enum Failure {
    /// The server refused: `RSET` before the connection is reused.
    Refused(Reply),
    /// The server cannot take this message (nothing was sent).
    Unsupported(&'static str),
    /// The connection is unusable: I/O error, closed, `421`, not SMTP.
    Broken(String),
}

fn broken(error: impl fmt::Display) -> Failure {
    Failure::Broken(redact(&error.to_string()))
}

struct Connection {
    stream: BufReader<TcpStream>,
    /// What EHLO advertised.
    pipelining: bool,
    eight_bit_mime: bool,
    smtp_utf8: bool,
    /// The SASL mechanisms of its `AUTH` line, upper case.
    auth_mechanisms: Vec<String>,
    /// Transactions so far, failed ones included.
    messages: usize,
    last_used: Instant,
    /// The current transaction's end-of-data marker is written: from here on the server
    /// may have the message.
    data_sent: bool,
}

impl Connection {
    /// Connects, reads the greeting, says EHLO (HELO to a server that refuses it) and
    /// authenticates. Any failure is transient: it says nothing about a recipient.
    async fn open(settings: &Settings) -> Result<Self, MailError> {
        let opened = tokio::time::timeout(settings.timeout, async {
            let stream = TcpStream::connect((settings.host.as_str(), settings.port))
                .await
                .map_err(broken)?;
            stream.set_nodelay(true).map_err(broken)?;
            let mut connection = Self {
                stream: BufReader::new(stream),
                pipelining: false,
                eight_bit_mime: false,
                smtp_utf8: false,
                auth_mechanisms: Vec::new(),
                messages: 0,
                last_used: Instant::now(),
                data_sent: false,
            };
            connection.expect(220).await?;
            connection.hello(&settings.hello).await?;
            if let Some((user, password)) = &settings.credentials {
                connection.authenticate(user, password).await?;
            }
            Ok::<_, Failure>(connection)
        })
        .await;
        let failure = match opened {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(Failure::Refused(reply))) => reply.to_string(),
            Ok(Err(Failure::Unsupported(what))) => what.to_string(),
            Ok(Err(Failure::Broken(error))) => error,
            Err(_) => format!("no answer within {:?}", settings.timeout),
        };
        Err(MailError::Transient(format!(
            "connecting to {}:{}: {}",
            settings.host,
            settings.port,
            redact(&failure)
        )))
    }

    async fn hello(&mut self, name: &str) -> Result<(), Failure> {
        self.write(format!("EHLO {name}\r\n").as_bytes()).await?;
        let reply = self.reply().await?;
        if !reply.positive() {
            // A server without ESMTP: no extensions.
            return self.command(&format!("HELO {name}\r\n"), 250).await;
        }
        let mut auth = Vec::new();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split([' ', '=']).filter(|w| !w.is_empty());
            match words.next().map(str::to_ascii_uppercase).as_deref() {
                Some("PIPELINING") => self.pipelining = true,
                Some("8BITMIME") => self.eight_bit_mime = true,
                Some("SMTPUTF8") => self.smtp_utf8 = true,
                Some("AUTH") => auth.extend(words.map(str::to_ascii_uppercase)),
                _ => {}
            }
        }
        self.auth_mechanisms = auth;
        Ok(())
    }

    /// AUTH PLAIN if offered, else AUTH LOGIN (RFC 4616, draft-murchison-sasl-login).
    async fn authenticate(&mut self, user: &str, password: &SecretString) -> Result<(), Failure> {
        let password = password.expose_secret();
        if self.auth_mechanisms.iter().any(|m| m == "PLAIN") {
            let token = BASE64.encode(format!("\0{user}\0{password}"));
            self.command(&format!("AUTH PLAIN {token}\r\n"), 235).await
        } else if self.auth_mechanisms.iter().any(|m| m == "LOGIN") {
            self.command("AUTH LOGIN\r\n", 334).await?;
            self.command(&format!("{}\r\n", BASE64.encode(user)), 334)
                .await?;
            self.command(&format!("{}\r\n", BASE64.encode(password)), 235)
                .await
        } else {
            Err(Failure::Unsupported(
                "the server offers neither AUTH PLAIN nor AUTH LOGIN",
            ))
        }
    }

    /// One mail transaction; the final reply when the server took the message.
    async fn transaction(
        &mut self,
        envelope: &Envelope,
        data: &[u8],
        pipelining: bool,
    ) -> Result<Reply, Failure> {
        self.data_sent = false;
        let mut parameters = String::new();
        if !envelope
            .to()
            .iter()
            .chain(envelope.from())
            .all(|a| a.to_string().is_ascii())
        {
            if !self.smtp_utf8 {
                return Err(Failure::Unsupported(
                    "an address is not ASCII and the server does not offer SMTPUTF8",
                ));
            }
            parameters.push_str(" SMTPUTF8");
        }
        if !data.is_ascii() {
            if !self.eight_bit_mime {
                return Err(Failure::Unsupported(
                    "the message is not ASCII and the server does not offer 8BITMIME",
                ));
            }
            parameters.push_str(" BODY=8BITMIME");
        }
        let from = envelope.from().map(ToString::to_string).unwrap_or_default();
        let mut commands = vec![format!("MAIL FROM:<{from}>{parameters}\r\n")];
        commands.extend(envelope.to().iter().map(|to| format!("RCPT TO:<{to}>\r\n")));

        if pipelining {
            // One recipient: a refused RCPT makes the server refuse DATA (RFC 2920 §3.1).
            let data_too = envelope.to().len() == 1;
            let mut group = commands.concat();
            if data_too {
                group.push_str("DATA\r\n");
            }
            self.write(group.as_bytes()).await?;
            let mut refused = None;
            for _ in &commands {
                let reply = self.reply().await?;
                if !reply.positive() && refused.is_none() {
                    refused = Some(reply);
                }
            }
            if data_too {
                let reply = self.reply().await?;
                if reply.code == 354 && refused.is_some() {
                    // A server that starts DATA without a valid recipient: an empty
                    // message to no one ends it.
                    self.write(b".\r\n").await?;
                    self.reply().await?;
                }
                match refused {
                    Some(reply) => return Err(Failure::Refused(reply)),
                    None if reply.code != 354 => return Err(Failure::Refused(reply)),
                    None => {}
                }
            } else {
                if let Some(reply) = refused {
                    return Err(Failure::Refused(reply));
                }
                self.command("DATA\r\n", 354).await?;
            }
        } else {
            for command in &commands {
                self.command(command, 250).await?;
            }
            self.command("DATA\r\n", 354).await?;
        }

        self.write(&dot_stuffed(data)).await?;
        self.data_sent = true;
        let reply = self.reply().await?;
        if reply.positive() {
            Ok(reply)
        } else {
            Err(Failure::Refused(reply))
        }
    }

    async fn reset(&mut self) -> Result<(), Failure> {
        self.command("RSET\r\n", 250).await
    }

    async fn noop(&mut self) -> Result<(), Failure> {
        self.command("NOOP\r\n", 250).await
    }

    async fn quit(&mut self) -> Result<(), Failure> {
        self.command("QUIT\r\n", 221).await
    }

    /// Sends `line`; the reply must have code `expected` (any 2xx for 250).
    async fn command(&mut self, line: &str, expected: u16) -> Result<(), Failure> {
        self.write(line.as_bytes()).await?;
        self.expect(expected).await
    }

    async fn expect(&mut self, expected: u16) -> Result<(), Failure> {
        let reply = self.reply().await?;
        if reply.code == expected || (expected == 250 && reply.positive()) {
            Ok(())
        } else {
            Err(Failure::Refused(reply))
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream.get_mut().write_all(bytes).await.map_err(broken)
    }

    /// The next reply, multi-line ones (`250-…`, `250 …`) whole. `421` (the server is
    /// closing the connection) is a broken connection.
    async fn reply(&mut self) -> Result<Reply, Failure> {
        let mut lines = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = (&mut self.stream)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .await
                .map_err(broken)?;
            if read == 0 {
                return Err(broken("closed by the server"));
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let code = text
                .get(..3)
                .and_then(|code| code.parse::<u16>().ok())
                .filter(|code| (200..600).contains(code))
                .ok_or_else(|| broken(format!("not an SMTP reply: {text}")))?;
            lines.push(text.get(4..).unwrap_or_default().to_string());
            if lines.len() > MAX_LINES {
                return Err(broken("a reply of too many lines"));
            }
            if text.as_bytes().get(3) != Some(&b'-') {
                let reply = Reply { code, lines };
                return if code == 421 {
                    Err(broken(reply))
                } else {
                    Ok(reply)
                };
            }
        }
    }
}

/// `data` as DATA carries it (RFC 5321 §4.5.2): a `.` that starts a line doubled, a
/// final CRLF if missing, then the end-of-data marker `.` CRLF.
fn dot_stuffed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 128 + 5);
    let mut line_start = true;
    for &byte in data {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        line_start = byte == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
    use lettre::Message;
    use secrecy::SecretString;
    use tokio::{
        io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
        net::{TcpListener, TcpStream},
    };

    use super::{Pool, Settings, dot_stuffed};
    use crate::channel::email::mailer::MailError;

    /// How the fake server behaves.
    #[derive(Clone, Default)]
    struct Script {
        /// Advertise PIPELINING; then MAIL and RCPT are answered only once DATA has
        /// arrived, so a client that waits for each reply never gets one.
        pipelining: bool,
        /// The reply to `RCPT TO:<bad…>`.
        refuse_rcpt: Option<&'static str>,
        /// Close a connection the client leaves silent this long after a message.
        idle_close: Option<Duration>,
        /// Before the reply to end-of-data, so that concurrent senders pile up.
        data_delay: Duration,
        /// The mechanisms of its AUTH line; then MAIL needs `user`/`secret` first.
        auth: Option<&'static str>,
        /// Stores the message with this number, then closes without a reply.
        vanish_after: Option<usize>,
    }

    /// What the fake server saw.
    #[derive(Debug, Default)]
    struct Seen {
        connections: usize,
        open: usize,
        max_open: usize,
        /// Messages as stored (dot-stuffing undone), and how many each connection took.
        messages: Vec<Vec<u8>>,
        per_connection: Vec<usize>,
        commands: Vec<String>,
        /// Commands after which more input was already there before the reply (only
        /// looked for without PIPELINING).
        early: Vec<String>,
    }

    struct Fake {
        port: u16,
        seen: Arc<Mutex<Seen>>,
    }

    impl Fake {
        async fn start(script: Script) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let port = listener.local_addr().expect("address").port();
            let seen = Arc::new(Mutex::new(Seen::default()));
            let shared = seen.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let (script, seen) = (script.clone(), shared.clone());
                    tokio::spawn(async move {
                        let id = {
                            let mut seen = seen.lock().expect("seen");
                            seen.connections += 1;
                            seen.open += 1;
                            seen.max_open = seen.max_open.max(seen.open);
                            seen.per_connection.push(0);
                            seen.per_connection.len() - 1
                        };
                        let _ = session(socket, &script, &seen, id).await;
                        seen.lock().expect("seen").open -= 1;
                    });
                }
            });
            Self { port, seen }
        }

        fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
            f(&self.seen.lock().expect("seen"))
        }
    }

    async fn session(
        socket: TcpStream,
        script: &Script,
        seen: &Mutex<Seen>,
        id: usize,
    ) -> std::io::Result<()> {
        let (read, mut write) = socket.into_split();
        let mut reader = BufReader::new(read);
        write.write_all(b"220 fake ESMTP\r\n").await?;
        let mut pending = String::new();
        let (mut valid_rcpt, mut authenticated, mut after_message) = (false, false, false);
        loop {
            let mut line = String::new();
            let read = match (script.idle_close, after_message) {
                (Some(idle), true) => {
                    match tokio::time::timeout(idle, reader.read_line(&mut line)).await {
                        Ok(read) => read?,
                        Err(_) => return Ok(()),
                    }
                }
                _ => reader.read_line(&mut line).await?,
            };
            if read == 0 {
                return Ok(());
            }
            after_message = false;
            let command = line.trim_end().to_string();
            if !script.pipelining {
                let more = !reader.buffer().is_empty()
                    || tokio::time::timeout(Duration::from_millis(20), reader.fill_buf())
                        .await
                        .is_ok_and(|buffer| buffer.is_ok_and(|b| !b.is_empty()));
                if more {
                    seen.lock().expect("seen").early.push(command.clone());
                }
            }
            seen.lock().expect("seen").commands.push(command.clone());
            let verb = command
                .split([' ', ':'])
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" => {
                    let mut reply = "250-fake\r\n250-8BITMIME\r\n".to_string();
                    if script.pipelining {
                        reply.push_str("250-PIPELINING\r\n");
                    }
                    if let Some(auth) = script.auth {
                        reply.push_str(&format!("250-AUTH {auth}\r\n"));
                    }
                    reply + "250 SIZE 10240000"
                }
                "AUTH" if command.starts_with("AUTH PLAIN ") => {
                    let token = BASE64.decode(&command[11..]).unwrap_or_default();
                    authenticated = token == b"\0user\0secret";
                    (if authenticated {
                        "235 2.7.0 ok"
                    } else {
                        "535 5.7.8 no"
                    })
                    .into()
                }
                "AUTH" => {
                    let mut answers = Vec::new();
                    for prompt in ["334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n"] {
                        write.write_all(prompt.as_bytes()).await?;
                        let mut answer = String::new();
                        reader.read_line(&mut answer).await?;
                        answers.push(BASE64.decode(answer.trim_end()).unwrap_or_default());
                    }
                    authenticated = answers == [b"user".to_vec(), b"secret".to_vec()];
                    (if authenticated {
                        "235 2.7.0 ok"
                    } else {
                        "535 5.7.8 no"
                    })
                    .into()
                }
                "MAIL" if script.auth.is_some() && !authenticated => {
                    "530 5.7.0 Authentication required".into()
                }
                "MAIL" => {
                    valid_rcpt = false;
                    "250 2.1.0 Ok".into()
                }
                "RCPT" => match script.refuse_rcpt {
                    Some(refusal) if command.contains("<bad") => refusal.into(),
                    _ => {
                        valid_rcpt = true;
                        "250 2.1.5 Ok".into()
                    }
                },
                "DATA" if valid_rcpt => "354 End data with <CR><LF>.<CR><LF>".into(),
                "DATA" => "554 5.5.1 Error: no valid recipients".into(),
                "RSET" | "NOOP" => "250 2.0.0 Ok".into(),
                "QUIT" => {
                    write.write_all(b"221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                _ => "502 5.5.2 Error: command not recognized".into(),
            };
            pending.push_str(&reply);
            pending.push_str("\r\n");
            if script.pipelining && (verb == "MAIL" || verb == "RCPT") {
                continue;
            }
            write.write_all(pending.as_bytes()).await?;
            pending.clear();
            if reply.starts_with("354") {
                let mut message = Vec::new();
                loop {
                    let mut line = Vec::new();
                    if reader.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    let line = line.strip_prefix(b".").unwrap_or(&line);
                    message.extend_from_slice(line);
                }
                tokio::time::sleep(script.data_delay).await;
                let queued = {
                    let mut seen = seen.lock().expect("seen");
                    seen.messages.push(message);
                    seen.per_connection[id] += 1;
                    seen.messages.len()
                };
                if script.vanish_after == Some(queued) {
                    return Ok(());
                }
                write
                    .write_all(format!("250 2.0.0 Ok: queued as Q{queued}\r\n").as_bytes())
                    .await?;
                after_message = true;
            }
        }
    }

    fn pool(port: u16, settings: impl FnOnce(&mut Settings)) -> Pool {
        let mut defaults = Settings {
            host: "127.0.0.1".into(),
            port,
            timeout: Duration::from_secs(2),
            credentials: None,
            hello: "test.example".into(),
            max_connections: 8,
            max_messages_per_connection: 1000,
            pipelining: true,
            idle_check: Duration::from_secs(60),
        };
        settings(&mut defaults);
        Pool::new(defaults)
    }

    fn message(to: &str, body: &str) -> Message {
        Message::builder()
            .from(
                "政策直达 <zhida@yangpu.example.gov.cn>"
                    .parse()
                    .expect("from"),
            )
            .to(to.parse().expect("to"))
            .subject("杨浦区高校毕业生就业见习补贴")
            .body(body.to_string())
            .expect("message")
    }

    fn wang() -> Message {
        message("wang.fang@example.cn", "离校2年内未就业高校毕业生。")
    }

    #[tokio::test]
    async fn with_pipelining_mail_rcpt_and_data_go_out_before_any_reply() {
        let fake = Fake::start(Script {
            pipelining: true,
            ..Script::default()
        })
        .await;
        let pool = pool(fake.port, |_| {});
        for _ in 0..3 {
            let reply = pool.send(&wang()).await.expect("sent");
            assert!(reply.starts_with("250 2.0.0 Ok: queued as Q"), "{reply}");
        }
        fake.seen(|seen| {
            assert_eq!(seen.messages.len(), 3);
            assert_eq!(seen.connections, 1);
            assert!(
                seen.commands
                    .iter()
                    .any(|c| c == "MAIL FROM:<zhida@yangpu.example.gov.cn>"),
                "{:?}",
                seen.commands
            );
        });
    }

    #[tokio::test]
    async fn without_pipelining_each_command_waits_for_its_reply() {
        for (offered, wanted) in [(false, true), (false, false)] {
            let fake = Fake::start(Script {
                pipelining: offered,
                ..Script::default()
            })
            .await;
            let pool = pool(fake.port, |s| s.pipelining = wanted);
            pool.send(&wang()).await.expect("sent");
            pool.send(&wang()).await.expect("sent");
            fake.seen(|seen| {
                assert_eq!(seen.messages.len(), 2);
                assert!(
                    seen.early.is_empty(),
                    "sent before the reply: {:?}",
                    seen.early
                );
                assert!(
                    seen.commands
                        .iter()
                        .any(|c| c.starts_with("RCPT TO:<wang.fang@"))
                );
            });
        }
    }

    #[tokio::test]
    async fn a_refused_recipient_is_permanent_and_the_connection_serves_the_next() {
        for pipelining in [true, false] {
            let fake = Fake::start(Script {
                pipelining,
                refuse_rcpt: Some(
                    "550 5.1.1 <bad.wang@example.cn>: Recipient address rejected: User unknown",
                ),
                ..Script::default()
            })
            .await;
            let pool = pool(fake.port, |_| {});
            let error = pool
                .send(&message("bad.wang@example.cn", "hello"))
                .await
                .expect_err("refused");
            let MailError::Permanent(detail) = error else {
                panic!("not permanent: {error:?}");
            };
            assert!(
                detail.starts_with("550 5.1.1 <b***@example.cn>"),
                "{detail}"
            );
            assert!(!detail.contains("bad.wang"), "{detail}");
            pool.send(&wang()).await.expect("the next one goes");
            fake.seen(|seen| {
                assert_eq!(seen.connections, 1, "pipelining {pipelining}");
                assert_eq!(seen.messages.len(), 1);
                assert!(
                    seen.commands.iter().any(|c| c == "RSET"),
                    "{:?}",
                    seen.commands
                );
            });
        }
    }

    #[tokio::test]
    async fn a_4xx_recipient_is_transient() {
        for pipelining in [true, false] {
            let fake = Fake::start(Script {
                pipelining,
                refuse_rcpt: Some("450 4.2.1 <bad@example.cn>: Mailbox busy"),
                ..Script::default()
            })
            .await;
            let pool = pool(fake.port, |_| {});
            let error = pool
                .send(&message("bad@example.cn", "hello"))
                .await
                .expect_err("refused");
            assert!(
                matches!(&error, MailError::Transient(d) if d.starts_with("450 4.2.1 <b***@")),
                "{error:?}"
            );
        }
    }

    #[test]
    fn a_dot_that_starts_a_line_is_doubled() {
        assert_eq!(
            dot_stuffed(b".a\r\n.\r\nb.\r\n"),
            b"..a\r\n..\r\nb.\r\n.\r\n"
        );
        assert_eq!(
            dot_stuffed(b"no final line break"),
            b"no final line break\r\n.\r\n"
        );
        assert_eq!(dot_stuffed(b""), b".\r\n");
    }

    #[tokio::test]
    async fn lines_starting_with_dots_arrive_as_written() {
        let fake = Fake::start(Script {
            pipelining: true,
            ..Script::default()
        })
        .await;
        let pool = pool(fake.port, |_| {});
        let message = message("wang.fang@example.cn", ".\n..\n.hidden\nend.\n.\nlast line");
        pool.send(&message).await.expect("sent");
        let mut expected = message.formatted();
        if !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n");
        }
        fake.seen(|seen| {
            assert_eq!(
                String::from_utf8_lossy(&seen.messages[0]),
                String::from_utf8_lossy(&expected)
            )
        });
    }

    #[tokio::test]
    async fn fifty_concurrent_senders_share_max_connections() {
        let fake = Fake::start(Script {
            pipelining: true,
            data_delay: Duration::from_millis(20),
            ..Script::default()
        })
        .await;
        let pool = Arc::new(pool(fake.port, |s| s.max_connections = 3));
        let sends = (0..50).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.send(&wang()).await })
        });
        for sent in futures::future::join_all(sends).await {
            sent.expect("joined").expect("sent");
        }
        fake.seen(|seen| {
            assert_eq!(seen.messages.len(), 50);
            assert_eq!(seen.max_open, 3, "at most 3, and all 3 used");
            assert_eq!(seen.connections, 3, "each reused");
        });
    }

    #[tokio::test]
    async fn a_connection_carries_max_messages_then_quits() {
        let fake = Fake::start(Script::default()).await;
        let pool = pool(fake.port, |s| s.max_messages_per_connection = 5);
        for _ in 0..12 {
            pool.send(&wang()).await.expect("sent");
        }
        // The server sees the QUIT before the next connection: the pool waits for 221.
        fake.seen(|seen| {
            assert_eq!(seen.per_connection, [5, 5, 2]);
            assert_eq!(seen.commands.iter().filter(|c| *c == "QUIT").count(), 2);
            assert_eq!(seen.commands.iter().filter(|c| *c == "NOOP").count(), 0);
        });
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced() {
        // Checked with NOOP after idling (idle_check 0), or found dead by the next
        // message before its data (idle_check 60 s): either way the message goes.
        for idle_check in [Duration::ZERO, Duration::from_secs(60)] {
            let fake = Fake::start(Script {
                pipelining: true,
                idle_close: Some(Duration::from_millis(50)),
                ..Script::default()
            })
            .await;
            let pool = pool(fake.port, |s| s.idle_check = idle_check);
            pool.send(&wang()).await.expect("sent");
            tokio::time::sleep(Duration::from_millis(200)).await;
            pool.send(&wang()).await.expect("sent on a new connection");
            fake.seen(|seen| {
                assert_eq!(seen.connections, 2, "idle_check {idle_check:?}");
                assert_eq!(seen.messages.len(), 2);
            });
        }
    }

    #[tokio::test]
    async fn a_connection_lost_after_the_data_is_a_retry_later_not_a_second_copy_now() {
        let fake = Fake::start(Script {
            pipelining: true,
            vanish_after: Some(2),
            ..Script::default()
        })
        .await;
        let pool = pool(fake.port, |_| {});
        pool.send(&wang()).await.expect("sent");
        let error = pool.send(&wang()).await.expect_err("no final reply");
        assert!(
            matches!(&error, MailError::Transient(d) if d.contains("lost")),
            "{error:?}"
        );
        fake.seen(|seen| {
            assert_eq!(seen.messages.len(), 2, "stored once, not sent again");
            assert_eq!(seen.connections, 1);
        });
        pool.send(&wang())
            .await
            .expect("a new connection for the next");
    }

    #[tokio::test]
    async fn auth_plain_or_login_with_the_configured_credentials() {
        for mechanisms in ["PLAIN LOGIN", "LOGIN"] {
            let fake = Fake::start(Script {
                pipelining: true,
                auth: Some(mechanisms),
                ..Script::default()
            })
            .await;
            let credentials = |password: &str| {
                Some(("user".to_string(), SecretString::from(password.to_string())))
            };
            pool(fake.port, |s| s.credentials = credentials("secret"))
                .send(&wang())
                .await
                .expect("authenticated and sent");
            let error = pool(fake.port, |s| s.credentials = credentials("wrong"))
                .send(&wang())
                .await
                .expect_err("refused");
            assert!(
                matches!(&error, MailError::Transient(d) if d.contains("535") && !d.contains("wrong")),
                "{mechanisms}: {error:?}"
            );
            fake.seen(|seen| assert_eq!(seen.messages.len(), 1));
        }
    }
}
