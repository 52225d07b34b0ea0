//! An endpoint's signing key, in the form Standard Webhooks libraries take it: `whsec_`
//! followed by the key in standard base64. The relay generates one per endpoint and shows
//! it to the subscriber once; the subscriber's receiver verifies our signatures with it.
//!
//! 24 random bytes (192 bits, as Svix generates) is well above what HMAC-SHA256 needs
//! against forgery; keys from elsewhere are accepted from 24 to 64 bytes (longer than
//! SHA-256's block would be hashed down by HMAC anyway). A `Secret` never appears in
//! `Debug` output, so it cannot leak through a log line or an error that prints a struct.

use std::fmt;

use base64::{Engine as _, engine::general_purpose::STANDARD};

/// The prefix of a secret's text form.
pub const PREFIX: &str = "whsec_";
/// Bytes of a generated key.
pub const GENERATED_BYTES: usize = 24;
/// Shorter keys are refused.
pub const MIN_BYTES: usize = 24;
/// Longer keys are refused.
pub const MAX_BYTES: usize = 64;

/// A signing key. `Display` and [`Secret::expose`] give its `whsec_…` form; `Debug` does
/// not show it. Serialized as the `whsec_…` string.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

/// Why a text is not a secret. Never contains the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with {PREFIX}")]
    MissingPrefix,
    #[error("a webhook secret is {PREFIX} followed by standard base64")]
    BadBase64,
    #[error("a webhook secret's key is {MIN_BYTES} to {MAX_BYTES} bytes, not {0}")]
    BadLength(usize),
}

impl Secret {
    /// A new random key of [`GENERATED_BYTES`].
    pub fn generate() -> Self {
        let key: [u8; GENERATED_BYTES] = rand::random();
        Self(key.to_vec())
    }

    /// Reads `whsec_<standard base64>` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::BadBase64)?;
        if !(MIN_BYTES..=MAX_BYTES).contains(&key.len()) {
            return Err(SecretError::BadLength(key.len()));
        }
        Ok(Self(key))
    }

    /// The `whsec_…` form, to store or to show to the subscriber once.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The raw key, for the HMAC.
    pub(crate) fn key(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expose())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(whsec_[redacted])")
    }
}

impl std::str::FromStr for Secret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, SecretError> {
        Self::parse(text)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn parses_and_prints_the_whsec_form() {
        let secret = Secret::parse(SPEC).expect("the specification's secret");
        assert_eq!(secret.key().len(), 24);
        assert_eq!(secret.expose(), SPEC);
        assert_eq!(secret.to_string(), SPEC);
        assert_eq!(Secret::parse(&format!(" {SPEC}\n")), Ok(secret.clone()));
        assert_eq!(SPEC.parse::<Secret>(), Ok(secret));
    }

    #[test]
    fn generated_secrets_are_random_and_read_back() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        assert_eq!(a.key().len(), GENERATED_BYTES);
        assert!(a.expose().starts_with(PREFIX));
        assert_eq!(Secret::parse(&a.expose()), Ok(a));
    }

    #[test]
    fn refuses_what_is_not_a_secret() {
        assert_eq!(
            Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::MissingPrefix)
        );
        assert_eq!(
            Secret::parse("whsec_not base64!"),
            Err(SecretError::BadBase64)
        );
        // URL-safe alphabet is not the standard one.
        assert_eq!(
            Secret::parse("whsec_____________________________________"),
            Err(SecretError::BadBase64)
        );
        let short = format!("{PREFIX}{}", STANDARD.encode([7u8; 23]));
        assert_eq!(Secret::parse(&short), Err(SecretError::BadLength(23)));
        let long = format!("{PREFIX}{}", STANDARD.encode([7u8; 65]));
        assert_eq!(Secret::parse(&long), Err(SecretError::BadLength(65)));
        let longest = format!("{PREFIX}{}", STANDARD.encode([7u8; 64]));
        assert!(Secret::parse(&longest).is_ok());
        assert_eq!(Secret::parse(PREFIX), Err(SecretError::BadLength(0)));
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let secret = Secret::parse(SPEC).expect("secret");
        let printed = format!("{secret:?} {:?}", vec![secret.clone()]);
        assert!(!printed.contains("MfKQ9r8"), "{printed}");
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn serde_uses_the_whsec_form() {
        let secret = Secret::parse(SPEC).expect("secret");
        let json = serde_json::to_string(&secret).expect("serialize");
        assert_eq!(json, format!("\"{SPEC}\""));
        assert_eq!(
            serde_json::from_str::<Secret>(&json).expect("deserialize"),
            secret
        );
        let err = serde_json::from_str::<Secret>("\"nope\"").expect_err("no prefix");
        assert!(err.to_string().contains("starts with whsec_"), "{err}");
    }
}
