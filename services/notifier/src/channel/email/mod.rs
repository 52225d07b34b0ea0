//! Email: a plain-text notice (or digest) built by [`render`] and handed to the configured
//! SMTP server (or `.eml` files) by a [`Mailer`].

pub(crate) mod mailer;
pub(crate) mod render;

use async_trait::async_trait;
use zhida_proto::events::v1::{Channel as Kind, DeliveryRequested};

use self::mailer::{MailError, Mailer};
use super::{Attempt, Channel};
use crate::config::SmtpConfig;

pub struct Email {
    mailer: Box<dyn Mailer>,
    /// The From: of every notice.
    from: String,
}

impl Email {
    pub fn from_config(config: &SmtpConfig) -> anyhow::Result<Self> {
        Ok(Self::new(mailer::from_config(config)?, &config.from))
    }

    pub fn new(mailer: Box<dyn Mailer>, from: &str) -> Self {
        Self {
            mailer,
            from: from.to_string(),
        }
    }

    /// Sends a built message; a message that could not be built is refused for good.
    async fn hand_over(
        &self,
        message: Result<lettre::Message, render::RenderError>,
        what: &str,
    ) -> Attempt {
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                return Attempt::Refused {
                    detail: error.to_string(),
                };
            }
        };
        let started = std::time::Instant::now();
        match self.mailer.send(message).await {
            Ok(answer) => {
                tracing::info!(
                    what,
                    smtp_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "email sent"
                );
                Attempt::Sent { detail: answer }
            }
            Err(MailError::Permanent(reason)) => {
                // A 5xx bounce: the mailbox cannot be reached (the reply never holds
                // the address in clear: see `redact`).
                tracing::warn!(what, reason, "email rejected");
                Attempt::Undeliverable { detail: reason }
            }
            Err(MailError::Transient(reason)) => Attempt::Retry { detail: reason },
        }
    }
}

#[async_trait]
impl Channel for Email {
    fn kind(&self) -> Kind {
        Kind::Email
    }

    async fn send(&self, request: &DeliveryRequested) -> Attempt {
        self.hand_over(render::email(request, &self.from), "notice")
            .await
    }

    async fn send_digest(&self, digest_id: &str, requests: &[DeliveryRequested]) -> Attempt {
        self.hand_over(render::digest(requests, digest_id, &self.from), "digest")
            .await
    }
}
