//! The notifier's own configuration: `[smtp]` (how email is handed over), `[sms]` (the
//! signature, templates, quiet hours and SMS providers), `[digest]` (when daily digests go
//! out) and `[inbox]` (how much each person's page keeps). Top-level sections of the one config file, set by the same
//! `ZHIDA_SMTP__HOST`, `ZHIDA_DIGEST__SEND_AT`, … variables, loaded and checked beside the
//! shared sections by [`zhida_runtime::Config::load_with`].

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zhida_runtime::config::{ConfigError, Sections};

use crate::sms::SmsConfig;

/// The sections the notifier owns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NotifierConfig {
    pub smtp: SmtpConfig,
    pub sms: SmsConfig,
    pub digest: DigestConfig,
    pub inbox: InboxConfig,
}

impl Sections for NotifierConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason| Err(ConfigError::invalid(key, reason));
        if self.smtp.mode == SmtpMode::Smtp && self.smtp.host.trim().is_empty() {
            return invalid("smtp.host", "must be set when smtp.mode = \"smtp\"");
        }
        if self.smtp.max_connections == 0 {
            return invalid("smtp.max_connections", "must be at least 1");
        }
        if self.smtp.max_messages_per_connection == 0 {
            return invalid("smtp.max_messages_per_connection", "must be at least 1");
        }
        if self.digest.send_at_seconds().is_none() {
            return invalid("digest.send_at", "must be a time of day HH:MM, e.g. 08:00");
        }
        if self.digest.period < Duration::from_secs(1) {
            return invalid("digest.period", "must be at least 1s");
        }
        if !(1..=10_000).contains(&self.inbox.max_items) {
            return invalid("inbox.max_items", "must be between 1 and 10000");
        }
        if !self.smtp.from.contains('@') {
            return invalid("smtp.from", "must be a mailbox such as Name <a@b.cn>");
        }
        if let Some(dkim) = &self.smtp.dkim {
            // The key itself is read when the notifier starts (an unreadable or invalid
            // one stops it naming smtp.dkim.key_file), never by the other services.
            crate::channel::email::dkim::check(dkim)?;
        }
        self.sms
            .validate()
            .map_err(|e| ConfigError::invalid(e.key, e.reason))
    }
}

/// How the notifier hands over email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpMode {
    /// A real SMTP server.
    Smtp,
    /// `.eml` files in `file_dir` (the embedded default).
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub mode: SmtpMode,
    pub host: String,
    pub port: u16,
    /// SMTP AUTH credentials, if the relay requires them.
    pub username: Option<String>,
    #[serde(skip_serializing)]
    pub password: Option<SecretString>,
    /// The From: of every notice.
    pub from: String,
    pub file_dir: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Connections open at once to the server; more concurrent senders wait for one.
    pub max_connections: usize,
    /// Messages a connection carries before it says QUIT and a new one takes its place.
    pub max_messages_per_connection: usize,
    /// Send MAIL, RCPT and DATA together when the server offers PIPELINING (RFC 2920);
    /// `false` for a server that offers it and mishandles it.
    pub pipelining: bool,
    /// `[smtp.dkim]`: sign every email with this DKIM key. Absent: no signature.
    pub dkim: Option<DkimConfig>,
}

/// A DKIM signing key and where its public half is published: the TXT record
/// `<selector>._domainkey.<domain>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimConfig {
    /// The signing domain (`d=`), normally the domain of `smtp.from`.
    pub domain: String,
    /// The selector (`s=`), e.g. `zhida2026`; a new selector per key makes rotation easy.
    pub selector: String,
    /// A PEM private key: Ed25519 (`openssl genpkey -algorithm ed25519`) or RSA of at
    /// least 1024 bits, 2048 recommended (`openssl genpkey -algorithm rsa
    /// -pkeyopt rsa_keygen_bits:2048`), PKCS#8 or PKCS#1. Mount it from a secret.
    pub key_file: String,
    /// The PEM itself, held in memory instead of `key_file` (`zhida demo` generates one);
    /// never read from or written to configuration.
    #[serde(skip)]
    pub key_pem: Option<SecretString>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            mode: SmtpMode::Smtp,
            host: "127.0.0.1".into(),
            port: 25,
            username: None,
            password: None,
            from: "杨浦区政策直达 <zhida@yangpu.example.gov.cn>".into(),
            file_dir: "mail-out".into(),
            timeout: Duration::from_secs(10),
            max_connections: 8,
            max_messages_per_connection: 1000,
            pipelining: true,
            dkim: None,
        }
    }
}

/// Each person's inbox (their page).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboxConfig {
    /// Items kept per inbox; the oldest are trimmed beyond it.
    pub max_items: usize,
}

impl Default for InboxConfig {
    fn default() -> Self {
        Self { max_items: 200 }
    }
}

/// When the notifier sends daily digests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigestConfig {
    /// Time of day in the district (UTC+8), `HH:MM`, of the first digest run of a day.
    pub send_at: String,
    /// Time between digest runs: `24h` for a daily digest (shorter in tests).
    #[serde(with = "humantime_serde")]
    pub period: Duration,
}

impl Default for DigestConfig {
    fn default() -> Self {
        Self {
            send_at: "08:00".into(),
            period: Duration::from_secs(24 * 3600),
        }
    }
}

impl DigestConfig {
    /// Seconds after midnight of `send_at`, if it is a valid `HH:MM`.
    pub fn send_at_seconds(&self) -> Option<u64> {
        let (h, m) = self.send_at.split_once(':')?;
        let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && self.send_at.len() == 5).then_some(h * 3600 + m * 60)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use zhida_runtime::Config;

    use super::*;

    fn load(toml: &str) -> Result<(Config, NotifierConfig), ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zhida.toml");
        std::fs::write(&path, toml).expect("write");
        Config::load_with(Some(&path))
    }

    #[test]
    fn the_example_config_loads_with_the_notifiers_sections() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/zhida.example.toml");
        let (config, own) =
            Config::load_with::<NotifierConfig>(Some(&example)).expect("the example is valid");
        assert_eq!(config.kafka.partitions, 3);
        assert_eq!(own.smtp.mode, SmtpMode::Smtp);
        assert_eq!(own.digest.send_at_seconds(), Some(8 * 3600));
    }

    #[test]
    fn bad_smtp_and_digest_values_name_their_key() {
        for (toml, key) in [
            ("[smtp]\nhost = \" \"\n", "smtp.host"),
            ("[smtp]\nfrom = \"nobody\"\n", "smtp.from"),
            ("[smtp]\nmax_connections = 0\n", "smtp.max_connections"),
            (
                "[smtp]\nmax_messages_per_connection = 0\n",
                "smtp.max_messages_per_connection",
            ),
            ("[digest]\nsend_at = \"8:00\"\n", "digest.send_at"),
            ("[digest]\nperiod = \"0s\"\n", "digest.period"),
            ("[smtp]\nhots = \"typo\"\n", "hots"),
            (
                "[smtp.dkim]\ndomain = \"yangpu.example.gov.cn\"\nselector = \"z1\"\n",
                "smtp.dkim.key_file",
            ),
            ("[smtp.dkim]\nselector = \"z1\"\n", "smtp.dkim.domain"),
            ("[smtp.dkim]\ndomian = \"typo\"\n", "domian"),
        ] {
            let err = load(toml).expect_err(key);
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
        let (_, own) = load("[smtp]\nmode = \"file\"\nhost = \"\"\n").expect("no host for files");
        assert_eq!(own.smtp.mode, SmtpMode::File);
    }
}
