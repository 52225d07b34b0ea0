//! One-click unsubscribe tokens (RFC 8058): the notifier puts one in every email's
//! `List-Unsubscribe` link, the profiler checks it and removes what it names. Pure: no I/O.
//!
//! A token names what it unsubscribes from, its [`Scope`]: one recipient, one channel, and
//! the subscriptions that asked for the message (none when the recipient was reached by a
//! policy's audience rule alone: then the token withdraws the recipient's consent to that
//! channel). It is signed with HMAC-SHA256 under a key that has an id, so it cannot be
//! forged, altered, or turned against another recipient or subscription.
//!
//! A [`Keyring`] holds one or more keys: the first signs, every one verifies. Rotation:
//! put the new key first and keep the old one after it while links it signed still matter
//! (mail already delivered), then remove it; removing a key revokes its links. Tokens do
//! not expire otherwise: a link in an old email must still work.
//!
//! Wire form, URL-safe (it is a path segment): `<key id>.<payload>.<mac>`, payload and MAC
//! in base64url without padding. The payload is `1` (format), the channel's protobuf
//! number, the recipient id and the subscription ids, each id prefixed by its length
//! (one byte). The MAC covers a domain label, the key id and the payload.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zhida_proto::events::v1::Channel;

/// The payload format this crate writes and reads.
const FORMAT: u8 = 1;
/// Binds the MAC to this use of the key.
const DOMAIN: &[u8] = b"zhida-unsubscribe-v1\0";
/// Secrets shorter than this (bytes) are refused: HMAC-SHA256 wants 32 bytes of entropy.
pub const MIN_SECRET_BYTES: usize = 32;
/// Ids (recipient, subscription) a token can carry: 1–128 of `A-Z a-z 0-9 _ . : -`.
const MAX_ID: usize = 128;
/// Subscriptions one token can name (a profile has at most 50).
const MAX_SUBSCRIPTIONS: usize = 64;
/// Longer strings are not looked at.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The `[unsubscribe]` section of the config file: shared by the notifier (signs) and the
/// profiler (verifies), so both read the same keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnsubscribeConfig {
    /// Where the one-click links point; the token is appended. `https://…/u/`.
    pub base_url: String,
    /// Signing keys: the first signs, all verify. Keep secrets in the environment
    /// (`ZHIDA_UNSUBSCRIBE__KEYS='[{id="k2",secret="…"},{id="k1",secret="…"}]'`).
    pub keys: Vec<KeyConfig>,
}

impl Default for UnsubscribeConfig {
    fn default() -> Self {
        Self {
            base_url: "https://zhida.yangpu.example.gov.cn/u/".into(),
            keys: Vec::new(),
        }
    }
}

/// One signing key. The secret is never serialized nor printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// 1–16 of `A-Z a-z 0-9 _ -`, unique; written into every token it signs.
    pub id: String,
    /// At least 32 bytes, e.g. `openssl rand -base64 32`.
    #[serde(skip_serializing)]
    pub secret: SecretString,
}

/// A config value that cannot work: `key` names it (`unsubscribe.keys[1].secret`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct Invalid {
    pub key: String,
    pub reason: String,
}

impl Invalid {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl UnsubscribeConfig {
    /// Checks the base URL and every key; an empty key list is valid here (services that
    /// need keys ask [`UnsubscribeConfig::keyring`], which refuses it).
    pub fn validate(&self) -> Result<(), Invalid> {
        let url = &self.base_url;
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        if !scheme_ok
            || !url.ends_with('/')
            || url.contains(['?', '#'])
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Invalid::new(
                "unsubscribe.base_url",
                "must be an https:// URL ending in / (the token is appended), without ? or #",
            ));
        }
        for (i, key) in self.keys.iter().enumerate() {
            if !is_key_id(&key.id) {
                return Err(Invalid::new(
                    format!("unsubscribe.keys[{i}].id"),
                    "must be 1–16 of A-Z a-z 0-9 _ -",
                ));
            }
            if self.keys[..i].iter().any(|k| k.id == key.id) {
                return Err(Invalid::new(
                    format!("unsubscribe.keys[{i}].id"),
                    "another key has this id",
                ));
            }
            if key.secret.expose_secret().len() < MIN_SECRET_BYTES {
                return Err(Invalid::new(
                    format!("unsubscribe.keys[{i}].secret"),
                    format!(
                        "must be at least {MIN_SECRET_BYTES} bytes, e.g. openssl rand -base64 32"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The keys, ready to sign and verify; at least one is required.
    pub fn keyring(&self) -> Result<Keyring, Invalid> {
        self.validate()?;
        if self.keys.is_empty() {
            return Err(Invalid::new(
                "unsubscribe.keys",
                "at least one key is needed to sign and check one-click unsubscribe links, \
                 e.g. [{ id = \"k1\", secret = \"<openssl rand -base64 32>\" }]",
            ));
        }
        Ok(Keyring {
            base_url: self.base_url.clone(),
            keys: self
                .keys
                .iter()
                .map(|k| Key {
                    id: k.id.clone(),
                    secret: k.secret.clone(),
                })
                .collect(),
        })
    }

    /// Adds a key with a random secret held in memory only, as the first (signing) key:
    /// for `zhida demo`, where one process signs and verifies.
    pub fn with_generated_key(mut self, id: &str) -> Self {
        let secret: [u8; 32] = rand::random();
        self.keys.insert(
            0,
            KeyConfig {
                id: id.to_string(),
                secret: SecretString::from(URL_SAFE_NO_PAD.encode(secret)),
            },
        );
        self
    }
}

fn is_key_id(id: &str) -> bool {
    (1..=16).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

fn is_id(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// What a token unsubscribes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub recipient_id: String,
    pub channel: Channel,
    /// The subscriptions to leave, sorted, without duplicates. Empty: the recipient was
    /// reached by a policy's audience alone; the token withdraws consent to `channel`.
    pub subscriptions: Vec<String>,
}

impl Scope {
    /// A scope for `recipient_id` on `channel`: the subscriptions given (empty ids are
    /// ignored), or consent when none is given.
    pub fn new<'a>(
        recipient_id: &str,
        channel: Channel,
        subscriptions: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut subscriptions: Vec<String> = subscriptions
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        subscriptions.sort();
        subscriptions.dedup();
        Self {
            recipient_id: recipient_id.to_string(),
            channel,
            subscriptions,
        }
    }

    fn encode(&self) -> Result<Vec<u8>, ScopeError> {
        if !is_id(&self.recipient_id) || !self.subscriptions.iter().all(|s| is_id(s)) {
            return Err(ScopeError::Id);
        }
        if self.subscriptions.len() > MAX_SUBSCRIPTIONS {
            return Err(ScopeError::TooMany);
        }
        if self.channel == Channel::Unspecified {
            return Err(ScopeError::Channel);
        }
        fn push(out: &mut Vec<u8>, id: &str) {
            // Fits a byte: ids are at most MAX_ID (128) bytes.
            out.push(id.len() as u8);
            out.extend_from_slice(id.as_bytes());
        }
        let mut out = vec![FORMAT, self.channel as u8];
        push(&mut out, &self.recipient_id);
        out.push(self.subscriptions.len() as u8);
        for s in &self.subscriptions {
            push(&mut out, s);
        }
        Ok(out)
    }

    fn decode(mut bytes: &[u8]) -> Option<Self> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, tail) = (bytes.get(..n)?, bytes.get(n..)?);
            *bytes = tail;
            Some(head)
        }
        fn id(bytes: &mut &[u8]) -> Option<String> {
            let len = usize::from(*take(bytes, 1)?.first()?);
            let text = std::str::from_utf8(take(bytes, len)?).ok()?;
            is_id(text).then(|| text.to_string())
        }
        let head = take(&mut bytes, 2)?;
        if head[0] != FORMAT {
            return None;
        }
        let channel = Channel::try_from(i32::from(head[1]))
            .ok()
            .filter(|c| *c != Channel::Unspecified)?;
        let recipient_id = id(&mut bytes)?;
        let count = usize::from(*take(&mut bytes, 1)?.first()?);
        if count > MAX_SUBSCRIPTIONS {
            return None;
        }
        let subscriptions = (0..count)
            .map(|_| id(&mut bytes))
            .collect::<Option<Vec<_>>>()?;
        // Canonical only: what `encode` writes, nothing after it.
        let canonical = subscriptions.windows(2).all(|w| w[0] < w[1]);
        (bytes.is_empty() && canonical).then_some(Self {
            recipient_id,
            channel,
            subscriptions,
        })
    }
}

/// Why a scope cannot be put in a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("recipient and subscription ids must be 1–128 of A-Z a-z 0-9 _ . : -")]
    Id,
    #[error("a token names at most {MAX_SUBSCRIPTIONS} subscriptions")]
    TooMany,
    #[error("a token needs a channel")]
    Channel,
}

/// Why a token was not accepted. The messages never quote the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not an unsubscribe token")]
    Malformed,
    /// Signed by a key this service does not hold (never issued, or rotated out).
    #[error("the token's key is not (or no longer) valid")]
    UnknownKey,
    #[error("the token's signature does not match")]
    BadSignature,
}

struct Key {
    id: String,
    secret: SecretString,
}

impl Key {
    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(self.secret.expose_secret().as_bytes())
                .expect("HMAC accepts any key length");
        mac.update(DOMAIN);
        mac.update(self.id.as_bytes());
        mac.update(b"\0");
        mac.update(payload);
        mac
    }
}

/// Signing and verifying keys, from [`UnsubscribeConfig::keyring`]. Printing it shows the
/// key ids only.
pub struct Keyring {
    base_url: String,
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("base_url", &self.base_url)
            .field(
                "key_ids",
                &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// The token for `scope`, signed with the first key. The same scope always gives the
    /// same token.
    pub fn sign(&self, scope: &Scope) -> Result<String, ScopeError> {
        let payload = scope.encode()?;
        let key = &self.keys[0];
        let tag = key.mac(&payload).finalize().into_bytes();
        Ok(format!(
            "{}.{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        ))
    }

    /// The one-click link for `scope`: `base_url` followed by its token.
    pub fn link(&self, scope: &Scope) -> Result<String, ScopeError> {
        Ok(format!("{}{}", self.base_url, self.sign(scope)?))
    }

    /// The scope `token` was signed for, if one of the keys signed it.
    pub fn verify(&self, token: &str) -> Result<Scope, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(id), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(TokenError::UnknownKey)?;
        // Constant-time comparison.
        key.mac(&payload)
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        Scope::decode(&payload).ok_or(TokenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, secret: &str) -> KeyConfig {
        KeyConfig {
            id: id.into(),
            secret: SecretString::from(secret),
        }
    }

    const S1: &str = "k1-secret-k1-secret-k1-secret-k1-secret";
    const S2: &str = "k2-secret-k2-secret-k2-secret-k2-secret";

    fn keyring(keys: &[(&str, &str)]) -> Keyring {
        UnsubscribeConfig {
            base_url: "https://zhida.example.gov.cn/u/".into(),
            keys: keys.iter().map(|(id, s)| key(id, s)).collect(),
        }
        .keyring()
        .expect("valid keys")
    }

    fn scope() -> Scope {
        Scope::new("c-0001", Channel::Email, ["sub-b", "sub-a", "sub-b", ""])
    }

    #[test]
    fn a_signed_scope_verifies_to_itself_and_links_are_url_safe() {
        let ring = keyring(&[("k1", S1)]);
        let token = ring.sign(&scope()).expect("signs");
        assert_eq!(ring.verify(&token), Ok(scope()));
        assert_eq!(scope().subscriptions, ["sub-a", "sub-b"], "sorted, deduped");
        assert_eq!(ring.sign(&scope()), Ok(token.clone()), "deterministic");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{token}"
        );
        let link = ring.link(&scope()).expect("link");
        assert_eq!(link, format!("https://zhida.example.gov.cn/u/{token}"));
        let consent = Scope::new("e-9", Channel::Sms, []);
        assert_eq!(
            ring.verify(&ring.sign(&consent).expect("signs")),
            Ok(consent)
        );
    }

    #[test]
    fn any_one_character_changed_is_refused() {
        let ring = keyring(&[("k1", S1)]);
        let token = ring.sign(&scope()).expect("signs");
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
        for (i, original) in token.char_indices() {
            for replacement in alphabet.chars().filter(|c| *c != original) {
                let mut tampered = token.clone();
                tampered.replace_range(i..i + 1, &replacement.to_string());
                assert!(ring.verify(&tampered).is_err(), "{tampered} was accepted");
            }
        }
        assert!(ring.verify(&token[..token.len() - 1]).is_err(), "truncated");
        assert!(ring.verify(&format!("{token}A")).is_err(), "extended");
        assert!(ring.verify("").is_err());
        assert_eq!(
            ring.verify("x".repeat(5000).as_str()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn a_token_cannot_be_moved_to_another_recipient_or_subscription() {
        let ring = keyring(&[("k1", S1)]);
        let token = ring.sign(&scope()).expect("signs");
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        // Someone else's payload under the first recipient's signature.
        let other = Scope::new("c-0002", Channel::Email, ["sub-a", "sub-b"]);
        parts[1] = URL_SAFE_NO_PAD.encode(other.encode().expect("encodes"));
        assert_eq!(ring.verify(&parts.join(".")), Err(TokenError::BadSignature));
        // The same recipient on another channel, or with the consent scope.
        for other in [
            Scope::new("c-0001", Channel::Sms, ["sub-a", "sub-b"]),
            Scope::new("c-0001", Channel::Email, []),
        ] {
            parts[1] = URL_SAFE_NO_PAD.encode(other.encode().expect("encodes"));
            assert_eq!(ring.verify(&parts.join(".")), Err(TokenError::BadSignature));
        }
    }

    #[test]
    fn a_token_forged_with_another_key_or_key_id_is_refused() {
        let ring = keyring(&[("k1", S1)]);
        let forger = keyring(&[("k1", S2)]);
        let forged = forger.sign(&scope()).expect("signs");
        assert_eq!(ring.verify(&forged), Err(TokenError::BadSignature));
        let unknown = keyring(&[("k9", S1)]).sign(&scope()).expect("signs");
        assert_eq!(ring.verify(&unknown), Err(TokenError::UnknownKey));
        // The right MAC under a relabelled key id: the id is signed too.
        let token = ring.sign(&scope()).expect("signs");
        let relabelled = keyring(&[("k1", S1), ("k2", S1)]);
        let moved = token.replacen("k1.", "k2.", 1);
        assert_eq!(relabelled.verify(&moved), Err(TokenError::BadSignature));
    }

    #[test]
    fn after_rotation_the_new_key_signs_and_old_tokens_still_verify_until_removed() {
        let before = keyring(&[("k1", S1)]);
        let old = before.sign(&scope()).expect("signs");
        let rotated = keyring(&[("k2", S2), ("k1", S1)]);
        let new = rotated.sign(&scope()).expect("signs");
        assert!(new.starts_with("k2."), "{new}");
        assert_eq!(rotated.verify(&old), Ok(scope()));
        assert_eq!(rotated.verify(&new), Ok(scope()));
        assert_eq!(before.verify(&new), Err(TokenError::UnknownKey));
        let retired = keyring(&[("k2", S2)]);
        assert_eq!(retired.verify(&old), Err(TokenError::UnknownKey));
        assert_eq!(retired.verify(&new), Ok(scope()));
    }

    #[test]
    fn scopes_that_cannot_be_encoded_are_refused_when_signing() {
        let ring = keyring(&[("k1", S1)]);
        let bad_id = Scope::new("c 1", Channel::Email, []);
        assert_eq!(ring.sign(&bad_id), Err(ScopeError::Id));
        let long = "x".repeat(129);
        assert_eq!(
            ring.sign(&Scope::new(&long, Channel::Email, [])),
            Err(ScopeError::Id)
        );
        let ids: Vec<String> = (0..65).map(|i| format!("s{i:02}")).collect();
        let many = Scope::new("c-1", Channel::Email, ids.iter().map(String::as_str));
        assert_eq!(ring.sign(&many), Err(ScopeError::TooMany));
        let none = Scope::new("c-1", Channel::Unspecified, []);
        assert_eq!(ring.sign(&none), Err(ScopeError::Channel));
    }

    #[test]
    fn config_errors_name_their_key_and_never_print_secrets() {
        let config = |keys: Vec<KeyConfig>, url: &str| UnsubscribeConfig {
            base_url: url.into(),
            keys,
        };
        let url = "https://zhida.example.gov.cn/u/";
        for (c, key) in [
            (config(vec![], url), "unsubscribe.keys"),
            (
                config(vec![key("k1", S1)], "ftp://x/u/"),
                "unsubscribe.base_url",
            ),
            (
                config(vec![key("k1", S1)], "https://x/u"),
                "unsubscribe.base_url",
            ),
            (
                config(vec![key("k1", S1)], "https://x/u/?a=/"),
                "unsubscribe.base_url",
            ),
            (config(vec![key("k 1", S1)], url), "unsubscribe.keys[0].id"),
            (
                config(vec![key("k1", S1), key("k1", S2)], url),
                "unsubscribe.keys[1].id",
            ),
            (
                config(vec![key("k1", "short")], url),
                "unsubscribe.keys[0].secret",
            ),
        ] {
            let err = c.keyring().expect_err(key);
            assert_eq!(err.key, key, "{err}");
        }
        assert!(
            config(vec![], url).validate().is_ok(),
            "no keys is valid config"
        );
        let ring = keyring(&[("k1", S1)]);
        let printed = format!("{ring:?} {:?}", config(vec![key("k1", S1)], url));
        assert!(!printed.contains(S1), "{printed}");
        assert!(printed.contains("k1"), "{printed}");
    }

    #[test]
    fn a_generated_key_signs_first() {
        let config = UnsubscribeConfig {
            keys: vec![key("k1", S1)],
            ..UnsubscribeConfig::default()
        }
        .with_generated_key("demo");
        let ring = config.keyring().expect("valid");
        assert!(ring.sign(&scope()).expect("signs").starts_with("demo."));
        let other = UnsubscribeConfig::default().with_generated_key("demo");
        let token = ring.sign(&scope()).expect("signs");
        assert_eq!(
            other.keyring().expect("valid").verify(&token),
            Err(TokenError::BadSignature),
            "each generated secret is new"
        );
    }
}
