//! SMS the way Chinese carriers take it, as pure decisions the SMS channel makes around
//! each submit over SMPP ([`zhida_smpp`]); no I/O here.
//!
//! - [`template`]: the message. A carrier or SMS cloud accepts notices only under a
//!   registered signature (签名, `【杨浦区政务】`) and as an approved template (模板): fixed
//!   text in which only `${title}`, `${link}`, `${department}` and `${name}` vary. A
//!   policy's SMS is never its body: it is the title, the department and a short link to
//!   the policy page. Values are cleaned so they cannot add a placeholder or a second
//!   signature; the title is shortened with `…` until the message fits `max_segments`
//!   UCS-2 segments (70 characters alone, 67 per part when concatenated).
//! - [`quiet`]: when. No SMS between 21:00 and 08:00 district time unless the policy is
//!   urgent; a message that arrives at night is held until 08:00.
//! - [`providers`]: where. Several SMS providers (SMSCs) with weights; errors and slow
//!   answers lower a provider's share, a run of errors takes it out for a cool-down, and
//!   a message that failed at one provider goes to another (`exclude`).
//! - [`bucket`]: how fast. A token bucket per provider at its contracted messages per
//!   second; a throttle reply (`ESME_RTHROTTLED`) slows it down instead of failing the
//!   delivery.
//!
//! One delivery, as the channel is meant to run it: [`SmsTemplates::render`] (a render
//! error is refused for good) → [`quiet::release_at`] (hold, or go on) →
//! [`Providers::choose`] → [`TokenBucket::try_take`] for that provider (wait if asked) →
//! submit each segment → [`Providers::record`] the [`providers::Outcome::of`] the result
//! and its latency; on `Throttled` also [`TokenBucket::slow_down`] and send again; on an
//! error choose again with the failed provider in `exclude`; a `Refused` is
//! undeliverable.
//!
//! The `[sms]` configuration section is [`SmsConfig`]; [`SmsConfig::validate`] names
//! the key at fault (`sms.templates[0].text: unknown parameter ${body} …`).

pub(crate) mod bucket;
pub(crate) mod providers;
pub(crate) mod quiet;
pub(crate) mod template;

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub(crate) use bucket::TokenBucket;
pub(crate) use providers::{HealthPolicy, Providers};
pub(crate) use quiet::QuietHours;
pub(crate) use template::SmsTemplates;

/// Longest `system_id`, `password` and `source_addr` SMPP 3.4 takes, in octets (the
/// specification's sizes without the terminating NUL).
const MAX_SYSTEM_ID: usize = 15;
const MAX_PASSWORD: usize = 8;
const MAX_SOURCE_ADDR: usize = 20;

/// How the notifier hands over SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsMode {
    /// The SMSCs of `[[sms.providers]]`, over SMPP 3.4.
    Smpp,
    /// One JSON line per SMS in `file` (the embedded default: nothing leaves the machine;
    /// the number is masked).
    File,
}

/// The `[sms]` section: the signature and templates, quiet hours, and the providers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// Where SMS go: `smpp` (the providers) or `file`.
    pub mode: SmsMode,
    /// The JSON-lines file of `mode = "file"`.
    pub file: String,
    /// The approved signature, `【…】` with 2–12 characters inside.
    pub signature: String,
    /// The most SMS segments one notice may take (the title is shortened to fit).
    pub max_segments: u8,
    /// When no SMS goes out unless urgent.
    pub quiet_hours: QuietHoursConfig,
    /// The template a published policy's SMS is rendered from (its id, with the
    /// version: `policy-published.v1`); the recipient's language picks among its
    /// translations, the first configured one when there is none in theirs.
    pub template: String,
    /// The template of a revision notice ("政策已更新：…") to whoever received an earlier
    /// version.
    pub revision_template: String,
    /// The template of a withdrawal notice ("政策已撤回：…") to whoever received the policy.
    pub withdrawal_template: String,
    /// The approved templates, one per (id, language): by default the files under
    /// `services/notifier/templates/sms/`; setting the list replaces them.
    pub templates: Vec<TemplateConfig>,
    /// The SMSCs to send through; none means the SMS channel cannot send.
    pub providers: Vec<ProviderConfig>,
    /// How providers are judged, and how fast a throttled one speeds up again.
    pub health: HealthConfig,
    /// The policy page's (short) link: this prefix followed by the policy id, e.g.
    /// `https://zc.yangpu.example.gov.cn/p/` (https, printable ASCII).
    pub link_base: String,
}

/// The approved templates shipped with Zhida, as files in the repository
/// (`services/notifier/templates/sms/<id>.<language>.txt`) compiled into the binary:
/// `(id, language, text)`.
const EMBEDDED_TEMPLATES: [(&str, &str, &str); 6] = [
    (
        "policy-published.v1",
        "zh",
        include_str!("../../templates/sms/policy-published.v1.zh.txt"),
    ),
    (
        "policy-published.v1",
        "en",
        include_str!("../../templates/sms/policy-published.v1.en.txt"),
    ),
    (
        "policy-revised.v1",
        "zh",
        include_str!("../../templates/sms/policy-revised.v1.zh.txt"),
    ),
    (
        "policy-revised.v1",
        "en",
        include_str!("../../templates/sms/policy-revised.v1.en.txt"),
    ),
    (
        "policy-withdrawn.v1",
        "zh",
        include_str!("../../templates/sms/policy-withdrawn.v1.zh.txt"),
    ),
    (
        "policy-withdrawn.v1",
        "en",
        include_str!("../../templates/sms/policy-withdrawn.v1.en.txt"),
    ),
];

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            mode: SmsMode::Smpp,
            file: "sms-out/sms.jsonl".into(),
            signature: "【杨浦区政务】".into(),
            max_segments: 3,
            quiet_hours: QuietHoursConfig::default(),
            template: "policy-published.v1".into(),
            revision_template: "policy-revised.v1".into(),
            withdrawal_template: "policy-withdrawn.v1".into(),
            templates: EMBEDDED_TEMPLATES
                .iter()
                .map(|(id, language, text)| TemplateConfig {
                    id: (*id).into(),
                    language: (*language).into(),
                    // The file's final line break is not part of the message.
                    text: text.trim_end_matches('\n').into(),
                })
                .collect(),
            providers: Vec::new(),
            health: HealthConfig::default(),
            link_base: "https://zc.yangpu.example.gov.cn/p/".into(),
        }
    }
}

/// `[sms.quiet_hours]`: district time, `HH:MM`; `start == end` means never quiet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuietHoursConfig {
    /// First quiet minute, e.g. `21:00`.
    pub start: String,
    /// First minute messages go out again, e.g. `08:00`.
    pub end: String,
}

impl Default for QuietHoursConfig {
    fn default() -> Self {
        QuietHoursConfig {
            start: "21:00".into(),
            end: "08:00".into(),
        }
    }
}

/// `[[sms.templates]]`: one approved template in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// What the channel asks for, e.g. `policy-published`.
    pub id: String,
    /// The profile language it serves, e.g. `zh` or `en`.
    pub language: String,
    /// Fixed text with `${title}`, `${link}`, `${department}`, `${name}` parameters.
    pub text: String,
}

/// `[[sms.providers]]`: one SMSC and what the contract with it allows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// A unique name for logs, metrics and `exclude`.
    pub name: String,
    /// The SMSC's `host:port`.
    pub address: String,
    /// `system_id` to bind with (at most 15 octets).
    pub system_id: String,
    /// `password` to bind with (at most 8 octets); never serialized or logged.
    #[serde(skip_serializing, default = "no_password")]
    pub password: SecretString,
    /// Or the environment variable that holds it (e.g. from a Kubernetes Secret), so the
    /// file itself can stay in a ConfigMap: `ZHIDA_SMSC_TELECOM_PASSWORD`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Share of the traffic while all is well; 0 makes it a standby. Default 1.
    #[serde(default = "one")]
    pub weight: u32,
    /// Messages (segments) per second the contract allows; the burst is one second's
    /// worth.
    pub rate_per_second: f64,
    /// The sender address (service code) the SMSC assigned, e.g. `106900001234`.
    pub source_addr: String,
}

fn one() -> u32 {
    1
}

fn no_password() -> SecretString {
    SecretString::from("")
}

impl ProviderConfig {
    /// The password to bind with: `password_env`'s value when it names a variable.
    pub(crate) fn password(&self) -> Result<SecretString, String> {
        match &self.password_env {
            Some(name) => std::env::var(name)
                .map(SecretString::from)
                .map_err(|_| format!("the environment variable {name} is not set")),
            None => Ok(self.password.clone()),
        }
    }

    /// A full token bucket at this provider's rate, recovering from a throttle over
    /// `health.throttle_recovery`.
    pub(crate) fn bucket(&self, health: &HealthConfig, now: Instant) -> TokenBucket {
        // Validated: a positive, finite rate; at least one token of burst.
        let burst = self.rate_per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
        TokenBucket::new(self.rate_per_second, burst, health.throttle_recovery, now)
    }
}

/// `[sms.health]`: when a provider counts as slow or unhealthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Outcomes older than this no longer count. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// An answer slower than this is slow. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub slow: Duration,
    /// Errors in a row that take a provider out. Default 3.
    pub errors: u32,
    /// How long a provider stays out. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub cool_down: Duration,
    /// How long a throttled provider's rate takes to climb back from nothing to full
    /// (from half in half of it). Default 60 s.
    #[serde(with = "humantime_serde")]
    pub throttle_recovery: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        let policy = HealthPolicy::default();
        HealthConfig {
            window: policy.window,
            slow: policy.slow,
            errors: policy.errors,
            cool_down: policy.cool_down,
            throttle_recovery: Duration::from_secs(60),
        }
    }
}

impl HealthConfig {
    /// The policy [`Providers`] judge health by.
    pub(crate) fn policy(&self) -> HealthPolicy {
        HealthPolicy {
            window: self.window,
            slow: self.slow,
            errors: self.errors,
            cool_down: self.cool_down,
        }
    }
}

/// A value in `[sms]` that cannot work, with its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub(crate) struct SmsConfigError {
    /// The key at fault, e.g. `sms.templates[0].text`.
    pub(crate) key: String,
    /// Why, e.g. `unknown parameter ${body} …`.
    pub(crate) reason: String,
}

fn invalid<T>(key: impl Into<String>, reason: impl Into<String>) -> Result<T, SmsConfigError> {
    Err(SmsConfigError {
        key: key.into(),
        reason: reason.into(),
    })
}

impl SmsConfig {
    /// Checks what serde cannot: the signature and every template (as
    /// [`SmsTemplates::new`]), the quiet hours, every provider and the health settings.
    /// The first problem is the error.
    pub(crate) fn validate(&self) -> Result<(), SmsConfigError> {
        self.templates()?;
        for (key, id) in [
            ("sms.template", &self.template),
            ("sms.revision_template", &self.revision_template),
            ("sms.withdrawal_template", &self.withdrawal_template),
        ] {
            if !self.templates.iter().any(|t| &t.id == id) {
                return invalid(key, format!("no [[sms.templates]] has the id {id}"));
            }
        }
        self.quiet_hours()?;
        self.providers()?;
        let link = &self.link_base;
        if !link.starts_with("https://")
            || link.len() > 100
            || !link.bytes().all(|b| b.is_ascii_graphic())
        {
            return invalid(
                "sms.link_base",
                "must be an https:// link of at most 100 printable ASCII characters",
            );
        }
        Ok(())
    }

    /// The signature and templates, checked.
    pub(crate) fn templates(&self) -> Result<SmsTemplates, SmsConfigError> {
        use template::Place;
        SmsTemplates::new(&self.signature, &self.templates, self.max_segments).map_err(|err| {
            let (key, reason) = match &err.place {
                Place::Signature => ("sms.signature".into(), err.problem.to_string()),
                Place::MaxSegments => ("sms.max_segments".into(), err.problem.to_string()),
                Place::Templates => ("sms.templates".into(), err.problem.to_string()),
                Place::Template {
                    index,
                    id,
                    language,
                    field,
                } => (
                    format!("sms.templates[{index}].{}", field.key()),
                    format!("{} (template {id}, {language})", err.problem),
                ),
            };
            SmsConfigError { key, reason }
        })
    }

    /// The quiet hours, checked.
    pub(crate) fn quiet_hours(&self) -> Result<QuietHours, SmsConfigError> {
        let parse = |key: &str, value: &str| match quiet::time_of_day(value) {
            Some(seconds) => Ok(seconds),
            None => invalid(key, "must be a time of day HH:MM (or HH:MM:SS), e.g. 21:00"),
        };
        let start = parse("sms.quiet_hours.start", &self.quiet_hours.start)?;
        let end = parse("sms.quiet_hours.end", &self.quiet_hours.end)?;
        QuietHours::new(start, end)
            .map_or_else(|| invalid("sms.quiet_hours", "must be within a day"), Ok)
    }

    /// The providers, checked, all healthy, in configuration order (so the n-th
    /// [`providers::ProviderId`] of [`Providers::ids`] is `providers[n]`).
    pub(crate) fn providers(&self) -> Result<Providers, SmsConfigError> {
        for (index, provider) in self.providers.iter().enumerate() {
            let key = |field: &str| format!("sms.providers[{index}].{field}");
            let octets = |field, value: &str, max: usize| {
                if value.is_empty() || value.len() > max {
                    return invalid(key(field), format!("must be 1 to {max} octets"));
                }
                Ok(())
            };
            if provider.name.trim().is_empty() {
                return invalid(key("name"), "must not be empty");
            }
            if let Some(first) = self.providers[..index]
                .iter()
                .position(|p| p.name == provider.name)
            {
                let reason = format!(
                    "{} is also the name of sms.providers[{first}]",
                    provider.name
                );
                return invalid(key("name"), reason);
            }
            if !is_host_port(&provider.address) {
                return invalid(
                    key("address"),
                    "must be host:port, e.g. smsc.example.cn:2775",
                );
            }
            octets("system_id", &provider.system_id, MAX_SYSTEM_ID)?;
            let field = if provider.password_env.is_some() {
                "password_env"
            } else {
                "password"
            };
            match provider.password() {
                Err(reason) => return invalid(key(field), reason),
                Ok(password) if password.expose_secret().len() > MAX_PASSWORD => {
                    let reason = format!("must be at most {MAX_PASSWORD} octets");
                    return invalid(key(field), reason);
                }
                Ok(_) => {}
            }
            octets("source_addr", &provider.source_addr, MAX_SOURCE_ADDR)?;
            if !(provider.rate_per_second.is_finite() && provider.rate_per_second > 0.0) {
                return invalid(key("rate_per_second"), "must be a number above 0");
            }
        }
        if !self.providers.is_empty() && self.providers.iter().all(|p| p.weight == 0) {
            return invalid(
                "sms.providers",
                "at least one provider needs a weight above 0",
            );
        }
        let health = &self.health;
        let at_least = |key: &str, value: Duration, min: Duration| {
            if value < min {
                return invalid(key, format!("must be at least {min:?}"));
            }
            Ok(())
        };
        at_least("sms.health.window", health.window, Duration::from_secs(1))?;
        at_least("sms.health.slow", health.slow, Duration::from_millis(1))?;
        at_least(
            "sms.health.cool_down",
            health.cool_down,
            Duration::from_millis(1),
        )?;
        at_least(
            "sms.health.throttle_recovery",
            health.throttle_recovery,
            Duration::from_millis(1),
        )?;
        if health.errors == 0 {
            return invalid("sms.health.errors", "must be at least 1");
        }
        Ok(Providers::new(
            self.providers.iter().map(|p| (p.name.clone(), p.weight)),
            health.policy(),
        ))
    }
}

/// `host:port` with a non-empty host and a port from 1 (`[::1]:2775` for IPv6).
fn is_host_port(address: &str) -> bool {
    address.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.contains(char::is_whitespace)
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

#[cfg(test)]
mod tests {
    use zhida_runtime::Config;
    use zhida_runtime::config::{ConfigError, Sections};

    use super::template::Params;
    use super::*;

    /// `[sms]` as the notifier's sections will hold it.
    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Own {
        sms: SmsConfig,
    }

    impl Sections for Own {
        fn validate(&self) -> Result<(), ConfigError> {
            Ok(())
        }
    }

    fn load(toml: &str) -> Result<SmsConfig, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zhida.toml");
        std::fs::write(&path, toml).expect("write");
        Config::load_with::<Own>(Some(&path)).map(|(_, own)| own.sms)
    }

    const EXAMPLE: &str = r#"
[sms]
signature = "【杨浦区政务】"
quiet_hours = { start = "21:00", end = "08:00" }

[[sms.templates]]
id = "policy-published.v1"
language = "zh"
text = "${department}发布了《${title}》，详情：${link}"

[[sms.templates]]
id = "policy-published.v1"
language = "en"
text = "${department} published \"${title}\": ${link}"

[[sms.templates]]
id = "policy-revised.v1"
language = "zh"
text = "政策已更新：《${title}》，详情：${link}"

[[sms.templates]]
id = "policy-withdrawn.v1"
language = "zh"
text = "政策已撤回：《${title}》，详情：${link}"

[[sms.providers]]
name = "telecom"
address = "smsc.telecom.example.cn:2775"
system_id = "yp_zhida"
password = "s3cret"
weight = 3
rate_per_second = 100
source_addr = "106900001234"

[[sms.providers]]
name = "cloud"
address = "[::1]:2776"
system_id = "zhida"
password = "pa55"
rate_per_second = 20.5
source_addr = "10690000"

[sms.health]
cool_down = "10s"
"#;

    #[test]
    fn the_example_section_loads_with_defaults_for_what_it_leaves_out() {
        let sms = load(EXAMPLE).expect("the example loads");
        sms.validate().expect("the example is valid");
        assert_eq!(sms.max_segments, 3);
        assert_eq!(sms.templates.len(), 4);
        let [telecom, cloud] = &sms.providers[..] else {
            panic!("two providers: {:?}", sms.providers);
        };
        assert_eq!((telecom.weight, cloud.weight), (3, 1));
        assert_eq!(cloud.rate_per_second, 20.5);
        assert_eq!(telecom.password.expose_secret(), "s3cret");
        assert!(
            !format!("{sms:?}").contains("s3cret"),
            "the password is redacted"
        );
        assert_eq!(sms.health.cool_down, Duration::from_secs(10));
        assert_eq!(sms.health.errors, 3);

        let providers = sms.providers().expect("valid");
        let names: Vec<_> = providers
            .ids()
            .map(|id| providers.name(id).to_owned())
            .collect();
        assert_eq!(names, ["telecom", "cloud"]);
        let now = Instant::now();
        let mut bucket = cloud.bucket(&sms.health, now);
        assert_eq!((0..30).filter(|_| bucket.try_take(now).is_ok()).count(), 21);
    }

    #[test]
    fn the_embedded_defaults_are_valid_and_render() {
        let sms = SmsConfig::default();
        sms.validate().expect("the defaults are valid");
        assert_eq!(sms.quiet_hours().expect("valid"), QuietHours::DEFAULT);
        let rendered = sms
            .templates()
            .expect("valid")
            .render(
                "policy-published.v1",
                "zh",
                &Params {
                    title: "杨浦区促进科技创新若干政策",
                    link: "https://y.example/p/1",
                    department: "区科委",
                    name: None,
                },
            )
            .expect("renders");
        assert_eq!(
            rendered.text,
            "【杨浦区政务】区科委发布了《杨浦区促进科技创新若干政策》，详情：https://y.example/p/1"
        );
    }

    #[test]
    fn every_template_file_is_compiled_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/sms");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("templates/sms")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut embedded: Vec<String> = EMBEDDED_TEMPLATES
            .iter()
            .map(|(id, language, _)| format!("{id}.{language}.txt"))
            .collect();
        embedded.sort();
        assert_eq!(
            files, embedded,
            "a new file needs a line in EMBEDDED_TEMPLATES"
        );
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let provider = ProviderConfig {
            name: "telecom".into(),
            address: "127.0.0.1:2775".into(),
            system_id: "zhida".into(),
            password: "secret".into(),
            password_env: None,
            weight: 1,
            rate_per_second: 10.0,
            source_addr: "10690000".into(),
        };
        let with_provider = || SmsConfig {
            providers: vec![provider.clone()],
            ..SmsConfig::default()
        };
        type Edit = Box<dyn Fn(&mut SmsConfig)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|c| c.templates[0].text = "${title}：${body} ${link}".into()),
                "sms.templates[0].text: unknown parameter ${body}",
            ),
            (
                Box::new(|c| c.templates[1].text = "${title}${link}".into()),
                "sms.templates[1].text: has no fixed text",
            ),
            (
                Box::new(|c| c.templates[1].text = "通知".repeat(200)),
                "sms.templates[1].text: with the signature and every parameter empty it needs 7",
            ),
            (
                Box::new(|c| c.templates[1].language = "zh".into()),
                "sms.templates[1].id: the same id and language as an earlier template",
            ),
            (
                Box::new(|c| c.templates.clear()),
                "sms.templates: at least one",
            ),
            (
                Box::new(|c| c.template = "policy-published.v2".into()),
                "sms.template: no [[sms.templates]] has the id policy-published.v2",
            ),
            (
                Box::new(|c| c.templates.retain(|t| t.id != "policy-revised.v1")),
                "sms.revision_template: no [[sms.templates]] has the id policy-revised.v1",
            ),
            (
                Box::new(|c| c.signature = "杨浦区政务".into()),
                "sms.signature: must be 【…】",
            ),
            (
                Box::new(|c| c.max_segments = 0),
                "sms.max_segments: must be at least 1",
            ),
            (
                Box::new(|c| c.quiet_hours.end = "8:00".into()),
                "sms.quiet_hours.end: must be a time of day",
            ),
            (
                Box::new(|c| c.providers.push(c.providers[0].clone())),
                "sms.providers[1].name: telecom is also the name of sms.providers[0]",
            ),
            (
                Box::new(|c| c.providers[0].address = "localhost".into()),
                "sms.providers[0].address: must be host:port",
            ),
            (
                Box::new(|c| c.providers[0].system_id = "a-system-id-too-long".into()),
                "sms.providers[0].system_id: must be 1 to 15 octets",
            ),
            (
                Box::new(|c| c.providers[0].password = "123456789".into()),
                "sms.providers[0].password: must be at most 8 octets",
            ),
            (
                Box::new(|c| {
                    c.providers[0].password_env = Some("ZHIDA_TEST_NO_SUCH_VARIABLE".into())
                }),
                "sms.providers[0].password_env: the environment variable ZHIDA_TEST_NO_SUCH_VARIABLE is not set",
            ),
            (
                Box::new(|c| c.providers[0].source_addr = String::new()),
                "sms.providers[0].source_addr: must be 1 to 20 octets",
            ),
            (
                Box::new(|c| c.providers[0].rate_per_second = f64::NAN),
                "sms.providers[0].rate_per_second: must be a number above 0",
            ),
            (
                Box::new(|c| c.providers[0].weight = 0),
                "sms.providers: at least one provider needs a weight above 0",
            ),
            (
                Box::new(|c| c.health.errors = 0),
                "sms.health.errors: must be at least 1",
            ),
            (
                Box::new(|c| c.health.window = Duration::from_millis(10)),
                "sms.health.window: must be at least 1s",
            ),
        ];
        for (edit, expected) in cases {
            let mut config = with_provider();
            edit(&mut config);
            let err = config.validate().expect_err(expected);
            assert!(
                err.to_string().starts_with(expected),
                "{err}\nexpected {expected}"
            );
        }
        with_provider().validate().expect("the base case is valid");
    }

    #[test]
    fn an_unknown_key_in_a_provider_is_refused_by_name() {
        let toml = EXAMPLE.replace(
            "source_addr = \"10690000\"",
            "source_address = \"10690000\"",
        );
        let err = load(&toml).expect_err("a misspelt key");
        assert!(err.to_string().contains("source_address"), "{err}");
    }
}
