//! Email: a `multipart/alternative` notice (or digest) with one-click unsubscribe, built by
//! [`render`] from the [`templates`] of the recipient's language, signed with DKIM
//! ([`dkim`]) when `[smtp.dkim]` is set, and handed to the configured SMTP server (or
//! `.eml` files) by a [`Mailer`].

pub(crate) mod dkim;
pub(crate) mod mailer;
pub(crate) mod render;
pub(crate) mod smtp;
pub(crate) mod templates;

use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use zhida_proto::events::v1::{Channel as Kind, DeliveryRequested};
use zhida_unsubscribe::Keyring;

use self::{
    dkim::Dkim,
    mailer::{MailError, Mailer},
    render::Renderer,
    templates::EmailTemplates,
};
use super::{Attempt, Channel};
use crate::config::SmtpConfig;

pub struct Email {
    mailer: Box<dyn Mailer>,
    renderer: Renderer,
    /// Signs every message when `[smtp.dkim]` is set.
    dkim: Option<Dkim>,
}

impl Email {
    /// The channel `config` describes: its transport, its DKIM key (read now: a bad one
    /// stops the start naming `smtp.dkim.key_file`), the templates (parsed and checked
    /// now) and `keyring` for the unsubscribe links.
    pub fn from_config(config: &SmtpConfig, keyring: Arc<Keyring>) -> anyhow::Result<Self> {
        let dkim = config.dkim.as_ref().map(Dkim::load).transpose()?;
        Self::new(mailer::from_config(config)?, &config.from, keyring, dkim)
    }

    pub fn new(
        mailer: Box<dyn Mailer>,
        from: &str,
        keyring: Arc<Keyring>,
        dkim: Option<Dkim>,
    ) -> anyhow::Result<Self> {
        let from = from
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid configuration: smtp.from: not a mailbox"))?;
        let templates = EmailTemplates::embedded().context("email templates")?;
        Ok(Self {
            mailer,
            renderer: Renderer::new(from, templates, keyring),
            dkim,
        })
    }

    /// Sends a built message; a message that could not be built is refused for good.
    async fn hand_over(
        &self,
        message: Result<lettre::Message, render::RenderError>,
        what: &str,
    ) -> Attempt {
        let mut message = match message {
            Ok(message) => message,
            Err(error) => {
                return Attempt::Refused {
                    detail: error.to_string(),
                };
            }
        };
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message);
        }
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
        self.hand_over(self.renderer.notice(request), "notice")
            .await
    }

    async fn send_digest(&self, digest_id: &str, requests: &[DeliveryRequested]) -> Attempt {
        self.hand_over(self.renderer.digest(requests, digest_id), "digest")
            .await
    }
}
