//! Email transports behind one trait: real SMTP for deployments, `.eml` files for the
//! embedded default. Errors say whether a retry can help.

use std::time::Duration;

use async_trait::async_trait;
use lettre::{
    AsyncFileTransport, AsyncTransport, Message, Tokio1Executor,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::AsyncSmtpConnection,
        extension::ClientId,
    },
};
use secrecy::ExposeSecret;
use tokio::{net::TcpStream, sync::Mutex};

use crate::config::{SmtpConfig, SmtpMode};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The server refused the message for good (SMTP 5xx): do not retry.
    #[error("rejected: {0}")]
    Permanent(String),
    /// Connection, timeout or 4xx: retry later.
    #[error("unavailable: {0}")]
    Transient(String),
}

/// Hands one message to the mail system; returns the server's answer for the record.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, message: Message) -> Result<String, MailError>;
}

/// Builds the transport `config.mode` asks for.
pub fn from_config(config: &SmtpConfig) -> anyhow::Result<Box<dyn Mailer>> {
    Ok(match config.mode {
        SmtpMode::Smtp => Box::new(Smtp {
            host: config.host.clone(),
            port: config.port,
            timeout: config.timeout,
            credentials: match (&config.username, &config.password) {
                (Some(user), Some(password)) => Some(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_string(),
                )),
                _ => None,
            },
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
        }),
        SmtpMode::File => {
            std::fs::create_dir_all(&config.file_dir)
                .map_err(|e| anyhow::anyhow!("smtp.file_dir {}: {e}", config.file_dir))?;
            Box::new(Files(AsyncFileTransport::new(&config.file_dir)))
        }
    })
}

/// Idle connections kept for reuse; more are opened when senders run concurrently.
const MAX_IDLE: usize = 8;

/// SMTP over connections with `TCP_NODELAY`. lettre's pooled transport writes the message
/// and the end-of-data marker in two writes; with Nagle and the server's delayed ACK every
/// message then waits ~40 ms for its `250`. Owning the socket avoids that.
struct Smtp {
    host: String,
    port: u16,
    timeout: Duration,
    credentials: Option<Credentials>,
    hello: ClientId,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

impl Smtp {
    async fn connect(&self) -> Result<AsyncSmtpConnection, MailError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            MailError::Transient(format!("connecting to {}:{}: {e}", self.host, self.port))
        };
        let stream = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|e| unavailable(&e))?
        .map_err(|e| unavailable(&e))?;
        stream.set_nodelay(true).map_err(|e| unavailable(&e))?;
        let mut connection = tokio::time::timeout(
            self.timeout,
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
        )
        .await
        .map_err(|e| unavailable(&e))?
        .map_err(classify)?;
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(classify)?;
        }
        Ok(connection)
    }

    /// An idle connection that still answers NOOP, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, MailError> {
        loop {
            let Some(mut connection) = self.idle.lock().await.pop() else {
                return self.connect().await;
            };
            if !connection.has_broken() && connection.test_connected().await {
                return Ok(connection);
            }
        }
    }
}

/// Server replies often quote the recipient ("550 <wang@…>: user unknown"); they end up in
/// logs, the ledger and status events, so addresses are masked first.
fn classify(error: lettre::transport::smtp::Error) -> MailError {
    let text = redact(&error.to_string());
    if error.is_permanent() {
        MailError::Permanent(text)
    } else {
        MailError::Transient(text)
    }
}

/// Masks every email address in `text`: `<wang.fang@example.cn>` → `<w***@example.cn>`.
pub fn redact(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.find('@') {
            Some(at) => {
                // After the last character that cannot be in a mailbox (it may be wide: `：`).
                let start = word[..at]
                    .char_indices()
                    .rfind(|(_, c)| !(c.is_alphanumeric() || "._%+-".contains(*c)))
                    .map_or(0, |(i, c)| i + c.len_utf8());
                let first = word[start..at]
                    .chars()
                    .next()
                    .map_or(String::new(), String::from);
                format!("{}{first}***{}", &word[..start], &word[at..])
            }
            None => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[async_trait]
impl Mailer for Smtp {
    async fn send(&self, message: Message) -> Result<String, MailError> {
        let mut connection = self.checkout().await?;
        let sent = tokio::time::timeout(
            self.timeout,
            connection.send(message.envelope(), &message.formatted()),
        )
        .await;
        match sent {
            Ok(Ok(response)) => {
                let mut idle = self.idle.lock().await;
                if idle.len() < MAX_IDLE {
                    idle.push(connection);
                }
                Ok(format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                ))
            }
            Ok(Err(error)) => Err(classify(error)),
            Err(_) => Err(MailError::Transient(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

struct Files(AsyncFileTransport<Tokio1Executor>);

#[async_trait]
impl Mailer for Files {
    async fn send(&self, message: Message) -> Result<String, MailError> {
        self.0
            .send(message)
            .await
            .map(|id| format!("written {id}.eml"))
            .map_err(|e| MailError::Transient(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_replies_lose_their_addresses() {
        assert_eq!(
            super::redact("550 5.1.1 <wang.fang@example.cn>: Recipient address rejected"),
            "550 5.1.1 <w***@example.cn>: Recipient address rejected"
        );
        assert_eq!(super::redact("421 try later"), "421 try later");
        assert_eq!(
            super::redact("550 用户：wang@example.cn 不存在"),
            "550 用户：w***@example.cn 不存在"
        );
    }
}
