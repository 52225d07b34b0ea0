//! SMS over SMPP 3.4: the decisions of [`crate::sms`] (template, quiet hours, provider
//! choice, rate) around real sessions of [`zhida_smpp`], and delivery receipts turned
//! into `DELIVERED` / `UNDELIVERABLE` statuses.
//!
//! One notice: rendered from the approved template in the recipient's language (a render
//! error is refused for good), split into UCS-2 segments with a concatenation reference
//! derived from the delivery key (a resend carries the same one), then submitted whole to
//! one provider, each segment after a token of that provider's bucket:
//! - a throttle reply slows the provider's bucket down and the segment is sent again
//!   after a pause, at the same provider, up to [`THROTTLE_RETRIES`] times; then the
//!   message moves to another provider;
//! - an error (a failed, timed-out or lost submit, a provider that cannot be reached)
//!   counts against the provider's health and the message goes to the next provider;
//!   when every provider failed it is retried later (the consumer's back-off; the
//!   ledger keeps it from going out twice);
//! - a refusal (a number the SMSC will never take) is undeliverable, not retried.
//!
//! Each accepted segment's message id goes into the [`ReceiptIndex`] (shared by every
//! replica, since a receipt may come back on any session); the receipt task of each
//! session takes it from there and reports the receipt on `delivery.status`.
//!
//! Night-time notices are not this module's business beyond answering
//! [`Channel::held_until`]: the sender holds them and sends them at the end of the quiet
//! hours.

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use zhida_bus::Producer;

use zhida_proto::events::v1::{
    Channel as Kind, DeliveryRequested, DeliveryState, DeliveryStatusChanged, Notice,
};
use zhida_smpp::{Address, Receipt, ReceiptState, Session, Submit, SubmitError};
use zhida_store::{DeliveryKey, ReceiptIndex, ReceiptTarget};

use super::{Attempt, Channel, Resources};
use crate::sms::{
    ProviderConfig, Providers, QuietHours, SmsConfig, SmsMode, SmsTemplates, TokenBucket,
    providers::{Outcome, ProviderId},
    quiet,
    template::{Params, RenderedSms},
};

/// Throttle replies in a row at one provider before the message tries another.
const THROTTLE_RETRIES: u32 = 8;
/// How long a message id waits for its receipt (carriers give up within 72 h).
const RECEIPT_TTL: Duration = Duration::from_secs(72 * 3600);
/// A receipt that beat its submit's answer to the index is looked up again this often.
const RECEIPT_RETRIES: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One SMSC: how to bind, its bucket, its current session.
struct Provider {
    config: ProviderConfig,
    bucket: Mutex<TokenBucket>,
    session: tokio::sync::Mutex<Option<Session>>,
}

/// What the receipt tasks need.
#[derive(Clone)]
struct ReceiptSink {
    index: Arc<dyn ReceiptIndex>,
    producer: Producer,
}

/// The SMS channel.
pub struct Sms {
    templates: SmsTemplates,
    /// The template a policy's SMS is rendered from (`sms.template`).
    template: String,
    /// The templates of revision and withdrawal notices (`sms.revision_template`,
    /// `sms.withdrawal_template`).
    revision_template: String,
    withdrawal_template: String,
    quiet: QuietHours,
    /// The policy page link: this prefix and the policy id.
    link_base: String,
    /// `mode = "file"`: the JSON-lines file every SMS is written to instead.
    file: Option<Mutex<std::fs::File>>,
    providers: Vec<Provider>,
    health: Mutex<Providers>,
    sink: ReceiptSink,
    /// Ends the receipt tasks.
    shutdown: CancellationToken,
}

impl Sms {
    /// The channel `config` describes (validated at load); receipts are looked up in
    /// the resources' index and reported through their producer.
    pub fn from_config(config: &SmsConfig, resources: Resources) -> anyhow::Result<Self> {
        let now = Instant::now();
        let file = match config.mode {
            SmsMode::Smpp => None,
            SmsMode::File => {
                let path = std::path::Path::new(&config.file);
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| anyhow::anyhow!("sms.file {}: {e}", config.file))?;
                Some(Mutex::new(file))
            }
        };
        Ok(Self {
            templates: config.templates()?,
            template: config.template.clone(),
            revision_template: config.revision_template.clone(),
            withdrawal_template: config.withdrawal_template.clone(),
            quiet: config.quiet_hours()?,
            link_base: config.link_base.clone(),
            file,
            providers: config
                .providers
                .iter()
                .map(|p| Provider {
                    config: p.clone(),
                    bucket: Mutex::new(p.bucket(&config.health, now)),
                    session: tokio::sync::Mutex::new(None),
                })
                .collect(),
            health: Mutex::new(config.providers()?),
            sink: ReceiptSink {
                index: resources.receipts,
                producer: resources.producer,
            },
            shutdown: resources.shutdown,
        })
    }

    /// `mode = "file"`: the SMS as one JSON line, the number masked.
    fn write_line(&self, file: &Mutex<std::fs::File>, to: &Address, sms: &RenderedSms) -> Attempt {
        use std::io::Write;
        let line = serde_json::json!({
            "to": mask(&to.addr),
            "signature": self.templates.signature(),
            "template": sms.template,
            "language": sms.language,
            "params": sms.params,
            "text": sms.text,
            "segments": sms.segments,
        });
        let mut file = lock(file);
        match writeln!(file, "{line}") {
            Ok(()) => Attempt::Sent {
                detail: format!("written to the SMS file ({} segment(s))", sms.segments),
            },
            Err(e) => Attempt::Retry {
                detail: format!("SMS file: {e}"),
            },
        }
    }

    /// The bound session of `id`, connecting (and starting its receipt task) if there is
    /// none or it has closed.
    async fn session(&self, id: ProviderId) -> Result<Session, String> {
        let provider = &self.providers[id.index()];
        let mut slot = provider.session.lock().await;
        if let Some(session) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(session.clone());
        }
        let config = &provider.config;
        let smpp = zhida_smpp::Config::new(
            config.address.clone(),
            config.system_id.clone(),
            config.password()?,
        );
        let (session, receipts) = Session::connect(smpp)
            .await
            .map_err(|e| format!("{}: {e}", config.name))?;
        tracing::info!(provider = config.name, "SMPP session bound");
        tokio::spawn(receive(
            config.name.clone(),
            receipts,
            self.sink.clone(),
            self.shutdown.clone(),
        ));
        *slot = Some(session.clone());
        Ok(session)
    }

    /// Waits for a token of `id`'s bucket.
    async fn take_token(&self, id: ProviderId) {
        loop {
            let wait = lock(&self.providers[id.index()].bucket).try_take(Instant::now());
            match wait {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Submits every segment to provider `id`; the message ids of the accepted ones.
    async fn submit_all(
        &self,
        id: ProviderId,
        submits: &[Submit],
    ) -> Result<Vec<String>, SubmitError> {
        let session = match self.session(id).await {
            Ok(session) => session,
            Err(error) => {
                tracing::warn!(error, "SMS provider unreachable");
                return Err(SubmitError::ConnectionLost);
            }
        };
        let mut ids = Vec::with_capacity(submits.len());
        for submit in submits {
            let mut throttled = 0;
            loop {
                self.take_token(id).await;
                let started = Instant::now();
                let result = session.submit(submit).await;
                let now = Instant::now();
                lock(&self.health).record(id, Outcome::of(&result), now - started, now);
                match result {
                    Ok(submitted) => {
                        ids.push(submitted.message_id);
                        break;
                    }
                    Err(SubmitError::Throttled { status }) if throttled < THROTTLE_RETRIES => {
                        throttled += 1;
                        let pause = {
                            let mut bucket = lock(&self.providers[id.index()].bucket);
                            bucket.slow_down(now, 0.5);
                            // A pause of one token at the slowed rate, at least 50 ms.
                            bucket.try_take(now).err().unwrap_or_default()
                        }
                        .max(Duration::from_millis(50));
                        tracing::debug!(%status, ?pause, "SMS provider throttling; slowing down");
                        tokio::time::sleep(pause).await;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(ids)
    }

    /// Remembers where each accepted segment's receipt belongs. A failure only costs
    /// the receipt, never the delivery.
    async fn remember(&self, provider: &str, key: DeliveryKey, ids: &[String]) {
        let segments = u8::try_from(ids.len()).unwrap_or(u8::MAX);
        for (n, message_id) in ids.iter().enumerate() {
            let target = ReceiptTarget {
                key: key.clone(),
                segment: u8::try_from(n + 1).unwrap_or(u8::MAX),
                segments,
            };
            if let Err(error) = self
                .sink
                .index
                .remember(provider, message_id, &target, RECEIPT_TTL)
                .await
            {
                tracing::warn!(%error, provider, "SMS receipt index unavailable; the receipt will not be reported");
            }
        }
    }
}

/// A Chinese mobile number (11 digits from 1, with or without +86 / 86) as an E.164
/// SMPP address.
fn destination(address: &str) -> Option<Address> {
    let digits = address
        .strip_prefix("+86")
        .or_else(|| address.strip_prefix("86").filter(|rest| rest.len() == 11))
        .unwrap_or(address);
    (digits.len() == 11 && digits.starts_with('1') && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| Address::international(format!("86{digits}")))
}

/// A mobile number as logs and files may show it: `8613800138000` → `86138****8000`.
pub fn mask(number: &str) -> String {
    let n = number.chars().count();
    number
        .chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < n && i + 8 >= n { '*' } else { c })
        .collect()
}

/// The sender address: a numeric service code (`106…`) as a national number, or a name.
fn source(addr: &str) -> Address {
    if addr.bytes().all(|b| b.is_ascii_digit()) {
        Address {
            ton: 0,
            npi: 1,
            addr: addr.to_owned(),
        }
    } else {
        Address::alphanumeric(addr)
    }
}

/// The concatenation reference of a delivery's segments: the same on every resend.
fn reference(key: &DeliveryKey) -> u8 {
    (zhida_runtime::ids::stable_hash(key.encoded().bytes()) & 0xff) as u8
}

#[async_trait]
impl Channel for Sms {
    fn kind(&self) -> Kind {
        Kind::Sms
    }

    fn held_until(&self, now_unix: i64) -> Option<i64> {
        quiet::release_at(now_unix, self.quiet, false)
    }

    fn has_digest(&self) -> bool {
        false
    }

    async fn send(&self, request: &DeliveryRequested) -> Attempt {
        let Some(to) = destination(&request.address) else {
            return Attempt::Undeliverable {
                detail: "not a Chinese mobile number".into(),
            };
        };
        let link = format!("{}{}", self.link_base, request.policy_id);
        let params = Params {
            title: &request.title,
            link: &link,
            department: &request.department,
            name: Some(request.recipient_name.as_str()).filter(|n| !n.is_empty()),
        };
        let template = match Notice::try_from(request.notice) {
            Ok(Notice::PolicyUnspecified) => &self.template,
            Ok(Notice::Revision) => &self.revision_template,
            Ok(Notice::Withdrawal) => &self.withdrawal_template,
            Err(_) => {
                return Attempt::Refused {
                    detail: format!("unknown notice {}", request.notice),
                };
            }
        };
        let sms = match self.templates.render(template, &request.language, &params) {
            Ok(sms) => sms,
            Err(error) => {
                return Attempt::Refused {
                    detail: error.to_string(),
                };
            }
        };
        if let Some(file) = &self.file {
            return self.write_line(file, &to, &sms);
        }
        // Receipts report on the delivery's ledger key (a notice's is its own).
        let key = crate::notice::channel_key(request, Kind::Sms);
        let segments = match zhida_smpp::segments(&sms.text, reference(&key), sms.segments) {
            Ok(segments) => segments,
            Err(error) => {
                return Attempt::Refused {
                    detail: error.to_string(),
                };
            }
        };
        let mut tried: Vec<ProviderId> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        loop {
            let random: u64 = rand::random();
            let Some(id) = lock(&self.health).choose(Instant::now(), &tried, random) else {
                return Attempt::Retry {
                    detail: if errors.is_empty() {
                        "no SMS provider is configured".into()
                    } else {
                        format!("every SMS provider failed: {}", errors.join("; "))
                    },
                };
            };
            tried.push(id);
            let provider = &self.providers[id.index()].config;
            let submits: Vec<Submit> = segments
                .iter()
                .map(|segment| {
                    Submit::segment(
                        source(&provider.source_addr),
                        to.clone(),
                        1,
                        segment.clone(),
                    )
                })
                .collect();
            match self.submit_all(id, &submits).await {
                Ok(ids) => {
                    self.remember(&provider.name, key, &ids).await;
                    tracing::info!(
                        provider = provider.name,
                        template = sms.template,
                        language = sms.language,
                        segments = ids.len(),
                        "SMS sent"
                    );
                    return Attempt::Sent {
                        detail: format!(
                            "{} accepted {} segment(s): {}",
                            provider.name,
                            ids.len(),
                            ids.join(",")
                        ),
                    };
                }
                Err(SubmitError::Refused { status }) => {
                    return Attempt::Undeliverable {
                        detail: format!("{} refused the message: {status}", provider.name),
                    };
                }
                Err(SubmitError::Invalid(reason)) => {
                    return Attempt::Refused { detail: reason };
                }
                Err(error) => {
                    let name = lock(&self.health).name(id).to_owned();
                    tracing::warn!(provider = name, %error, "SMS provider failed; trying another");
                    errors.push(format!("{name}: {error}"));
                }
            }
        }
    }

    async fn send_digest(&self, _digest_id: &str, requests: &[DeliveryRequested]) -> Attempt {
        // Never asked (`has_digest` is false: digest requests go out one by one); an SMS
        // digest would be a list of titles no template was approved for.
        Attempt::Refused {
            detail: format!(
                "SMS has no daily digest ({} policies); SMS subscriptions are immediate",
                requests.len()
            ),
        }
    }
}

/// Reports the receipts of one session until it closes (or the notifier stops).
async fn receive(
    provider: String,
    mut receipts: zhida_smpp::Receipts,
    sink: ReceiptSink,
    shutdown: CancellationToken,
) {
    loop {
        let receipt = tokio::select! {
            _ = shutdown.cancelled() => return,
            receipt = receipts.recv() => match receipt {
                Some(receipt) => receipt,
                None => return,
            },
        };
        let sink = sink.clone();
        let provider = provider.clone();
        // A receipt may beat its submit's answer into the index: look again a little later
        // without holding up the receipts behind it.
        tokio::spawn(async move { report_receipt(&provider, receipt, &sink).await });
    }
}

/// The status a receipt state becomes; intermediate states report nothing.
fn receipt_state(state: &ReceiptState) -> Option<DeliveryState> {
    match state {
        ReceiptState::Delivered => Some(DeliveryState::Delivered),
        ReceiptState::Undeliverable | ReceiptState::Expired | ReceiptState::Rejected => {
            Some(DeliveryState::Undeliverable)
        }
        ReceiptState::Unknown | ReceiptState::Other(_) => None,
    }
}

async fn report_receipt(provider: &str, receipt: Receipt, sink: &ReceiptSink) {
    let Some(state) = receipt_state(&receipt.state) else {
        tracing::debug!(provider, state = ?receipt.state, "intermediate SMS receipt ignored");
        return;
    };
    let mut waits = RECEIPT_RETRIES.iter();
    let target = loop {
        match sink.index.take(provider, &receipt.message_id).await {
            Ok(Some(target)) => break target,
            Ok(None) => match waits.next() {
                Some(wait) => tokio::time::sleep(*wait).await,
                None => {
                    tracing::debug!(
                        provider,
                        message_id = receipt.message_id,
                        "receipt for an unknown message ignored"
                    );
                    return;
                }
            },
            Err(error) => {
                tracing::warn!(%error, provider, "SMS receipt index unavailable; receipt dropped");
                return;
            }
        }
    };
    // A concatenated message has a receipt per segment: its first segment speaks for the
    // message when delivered, any segment when it failed; one event per (delivery, state).
    if state == DeliveryState::Delivered && target.segment != 1 {
        return;
    }
    let status = DeliveryStatusChanged {
        policy_id: target.key.policy_id.clone(),
        recipient_id: target.key.recipient_id.clone(),
        channel: Kind::Sms as i32,
        state: state as i32,
        detail: format!(
            "{provider} receipt {:?} for segment {}/{}{}",
            receipt.state,
            target.segment,
            target.segments,
            receipt
                .error_code
                .as_deref()
                .map(|e| format!(", err {e}"))
                .unwrap_or_default()
        ),
        at: Some(zhida_proto::timestamp_now()),
        // A receipt is the message's, which went out once whoever asked for it.
        forward: None,
    };
    // The same id as the sender's statuses use: a receipt sent twice, or two failed
    // segments, are one event to consumers that dedup by id.
    let id = format!("{}|{}", target.key.encoded(), state as i32);
    if let Err(error) = sink
        .producer
        .emit_with_id(&target.key.recipient_id, &id, &status)
        .await
    {
        tracing::warn!(%error, provider, "SMS receipt status not produced");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobiles_become_e164_and_other_numbers_are_refused() {
        for ok in ["13800138000", "+8613800138000", "8613800138000"] {
            assert_eq!(
                destination(ok).map(|a| a.addr),
                Some("8613800138000".into()),
                "{ok}"
            );
        }
        for bad in [
            "1380013800",
            "23800138000",
            "+1 555 0100",
            "138-0013-8000",
            "",
        ] {
            assert!(destination(bad).is_none(), "{bad}");
        }
        assert_eq!(source("106900001234").ton, 0);
        assert_eq!(mask("8613800138000"), "86138****8000");
        assert_eq!(source("YANGPU").ton, 5);
    }

    #[test]
    fn receipts_report_final_states_only() {
        assert_eq!(
            receipt_state(&ReceiptState::Delivered),
            Some(DeliveryState::Delivered)
        );
        for gone in [
            ReceiptState::Undeliverable,
            ReceiptState::Expired,
            ReceiptState::Rejected,
        ] {
            assert_eq!(receipt_state(&gone), Some(DeliveryState::Undeliverable));
        }
        assert_eq!(receipt_state(&ReceiptState::Other("ENROUTE".into())), None);
        assert_eq!(receipt_state(&ReceiptState::Unknown), None);
    }

    #[test]
    fn a_resend_carries_the_same_concatenation_reference() {
        let key = |p: &str| DeliveryKey {
            policy_id: p.into(),
            recipient_id: "c-1".into(),
            channel: Kind::Sms,
        };
        assert_eq!(reference(&key("p-1")), reference(&key("p-1")));
    }
}
