//! Email transports behind one trait: real SMTP for deployments, `.eml` files for the
//! embedded default. Errors say whether a retry can help.

use async_trait::async_trait;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    transport::smtp::authentication::Credentials,
};
use secrecy::ExposeSecret;
use zhida_runtime::config::{SmtpConfig, SmtpMode};

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
        SmtpMode::Smtp => {
            let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
                .port(config.port)
                .timeout(Some(config.timeout));
            if let (Some(user), Some(password)) = (&config.username, &config.password) {
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_string(),
                ));
            }
            Box::new(Smtp(builder.build()))
        }
        SmtpMode::File => {
            std::fs::create_dir_all(&config.file_dir)
                .map_err(|e| anyhow::anyhow!("smtp.file_dir {}: {e}", config.file_dir))?;
            Box::new(Files(AsyncFileTransport::new(&config.file_dir)))
        }
    })
}

struct Smtp(AsyncSmtpTransport<Tokio1Executor>);

#[async_trait]
impl Mailer for Smtp {
    async fn send(&self, message: Message) -> Result<String, MailError> {
        match self.0.send(message).await {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(e.to_string())),
            Err(e) => Err(MailError::Transient(e.to_string())),
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
