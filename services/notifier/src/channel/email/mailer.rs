//! Email transports behind one trait: real SMTP for deployments (a pool of pipelining
//! connections, [`super::smtp`]), `.eml` files for the embedded default. Errors say whether a retry can help.

use async_trait::async_trait;
use lettre::{
    AsyncFileTransport, AsyncTransport, Message, Tokio1Executor,
    transport::smtp::extension::ClientId,
};

use super::smtp::{Pool, Settings};
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
        SmtpMode::Smtp => Box::new(Smtp(Pool::new(Settings {
            host: config.host.clone(),
            port: config.port,
            timeout: config.timeout,
            credentials: config.username.clone().zip(config.password.clone()),
            hello: ClientId::default().to_string(),
            max_connections: config.max_connections,
            max_messages_per_connection: config.max_messages_per_connection,
            pipelining: config.pipelining,
            idle_check: IDLE_CHECK,
        }))),
        SmtpMode::File => {
            std::fs::create_dir_all(&config.file_dir)
                .map_err(|e| anyhow::anyhow!("smtp.file_dir {}: {e}", config.file_dir))?;
            Box::new(Files(AsyncFileTransport::new(&config.file_dir)))
        }
    })
}

/// A connection idle longer than this answers a NOOP before it carries a message (a busy
/// one is not asked: a dead one is replaced anyway, see [`super::smtp`]).
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// SMTP through a pool of pipelining connections ([`super::smtp`]).
struct Smtp(Pool);

/// Server replies often quote the recipient ("550 <wang@…>: user unknown"); they end up in
/// logs, the ledger and status events, so [`super::smtp`] masks addresses first.
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
        self.0.send(&message).await
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
