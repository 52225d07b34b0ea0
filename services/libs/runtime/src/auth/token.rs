//! Signed bearer tokens: JWTs signed with Ed25519 (`alg: EdDSA`), key ids in the header
//! (`kid`) so several keys verify at once (rotation), verified with `jsonwebtoken`
//! against the public keys of `[auth]`. `alg: none`, any other algorithm, an unknown
//! `kid`, a wrong signature, another issuer or audience, an expired token or one used
//! before `nbf` are refused.

use std::{collections::BTreeSet, path::PathBuf, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{Kind, Principal};

/// Whether calls need tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every call but the public ones carries a valid bearer token (the default).
    Jwt,
    /// No authentication: every caller may do everything. Logged as a warning at start.
    Off,
}

/// `[auth]`: how calls are authenticated.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// The `iss` tokens must carry, and `zhida token issue` writes.
    pub issuer: String,
    /// The `aud` tokens must carry.
    pub audience: String,
    /// The public keys that verify tokens, by key id: rotation keeps the old one here
    /// until its tokens expired.
    pub keys: Vec<KeyConfig>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Health checks without a token (Kubernetes probes).
    pub open_health: bool,
    /// Server reflection without a token (`grpcurl list`).
    pub open_reflection: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::Jwt,
            issuer: "zhida".into(),
            audience: "zhida".into(),
            keys: Vec::new(),
            leeway: Duration::from_secs(30),
            open_health: true,
            open_reflection: true,
        }
    }
}

/// One verifying key: an id and an Ed25519 public key (PEM, SPKI), inline or in a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// 1–32 of `A-Z a-z 0-9 _ . -`; tokens name it in their `kid`.
    pub id: String,
    /// `-----BEGIN PUBLIC KEY-----…`.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Or the file holding it (a mounted Secret or ConfigMap).
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
}

impl KeyConfig {
    fn pem(&self) -> Result<String, String> {
        match (&self.public_key, &self.public_key_file) {
            (Some(pem), None) => Ok(pem.clone()),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display())),
            _ => Err("give exactly one of public_key and public_key_file".into()),
        }
    }
}

/// The claims of a Zhida token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The principal's id within its kind.
    pub sub: String,
    /// The principal's [`Kind`] by name.
    pub kind: String,
    /// Space-separated scopes (RFC 8693 style).
    pub scope: String,
    pub iat: u64,
    pub exp: u64,
    /// A unique id, for audit records.
    pub jti: String,
}

/// Why a token was refused (said to the caller as `UNAUTHENTICATED`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token (metadata `authorization: Bearer …`)")]
    Missing,
    #[error("the token is not a JWT this service accepts: {0}")]
    Malformed(String),
    #[error("the token's key id {0:?} is not one of this service's keys")]
    UnknownKey(Option<String>),
    #[error("the token is expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// Checks tokens against the configured keys.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<(String, DecodingKey)>,
    validation: Validation,
}

fn is_key_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl AuthConfig {
    /// Checks what serde cannot, naming the key at fault (`auth.keys[1].public_key`). No
    /// keys is valid here (a command that serves no calls needs none); [`Self::verifier`]
    /// refuses it.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.mode == AuthMode::Off {
            return Ok(());
        }
        for (i, key) in self.keys.iter().enumerate() {
            if !is_key_id(&key.id) {
                return Err((
                    format!("auth.keys[{i}].id"),
                    "must be 1–32 of A-Z a-z 0-9 _ . -".into(),
                ));
            }
            if self.keys[..i].iter().any(|k| k.id == key.id) {
                return Err((
                    format!("auth.keys[{i}].id"),
                    "another key has this id".into(),
                ));
            }
            let field = if key.public_key_file.is_some() {
                "public_key_file"
            } else {
                "public_key"
            };
            let pem = key
                .pem()
                .map_err(|e| (format!("auth.keys[{i}].{field}"), e))?;
            DecodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| {
                (
                    format!("auth.keys[{i}].{field}"),
                    format!("not an Ed25519 public key in PEM: {e}"),
                )
            })?;
        }
        Ok(())
    }

    /// The verifier of these keys (validated first).
    pub fn verifier(&self) -> Result<Verifier, (String, String)> {
        self.validate()?;
        if self.keys.is_empty() {
            return Err((
                "auth.keys".into(),
                "at least one public key is needed to verify tokens (`zhida keys generate` \
                 makes a pair), or auth.mode = \"off\" to run without authentication"
                    .into(),
            ));
        }
        let mut keys = Vec::new();
        for key in &self.keys {
            let pem = key.pem().map_err(|e| ("auth.keys".to_string(), e))?;
            let decoding = DecodingKey::from_ed_pem(pem.as_bytes())
                .map_err(|e| ("auth.keys".to_string(), e.to_string()))?;
            keys.push((key.id.clone(), decoding));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.leeway = self.leeway.as_secs();
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(Verifier { keys, validation })
    }
}

impl Verifier {
    /// The principal a token names, if it verifies.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed(format!(
                "algorithm {:?}; only EdDSA is accepted",
                header.alg
            )));
        }
        let Some((_, key)) = self
            .keys
            .iter()
            .find(|(id, _)| header.kid.as_deref() == Some(id.as_str()))
        else {
            return Err(TokenError::UnknownKey(header.kid));
        };
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid(e.to_string()),
                }
            })?;
        let claims = data.claims;
        let kind = Kind::parse(&claims.kind)
            .ok_or_else(|| TokenError::Invalid(format!("unknown kind {:?}", claims.kind)))?;
        if claims.sub.is_empty() {
            return Err(TokenError::Invalid("empty sub".into()));
        }
        Ok(Principal {
            kind,
            id: claims.sub,
            scopes: claims
                .scope
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        })
    }
}

/// Signs tokens: `zhida token issue`, `zhida demo`, tests.
pub struct Signer {
    key_id: String,
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl Signer {
    /// A signer with the Ed25519 private key `pem` (PKCS#8) under `key_id`, for the
    /// issuer and audience of `config`.
    pub fn new(config: &AuthConfig, key_id: &str, pem: &SecretString) -> Result<Self, String> {
        let key = EncodingKey::from_ed_pem(pem.expose_secret().as_bytes())
            .map_err(|e| format!("not an Ed25519 private key in PEM (PKCS#8): {e}"))?;
        Ok(Self {
            key_id: key_id.into(),
            key,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        })
    }

    /// A token for `kind`/`id` with `scopes` (the kind's defaults when empty), valid for
    /// `ttl` from now.
    pub fn issue(
        &self,
        kind: Kind,
        id: &str,
        scopes: &BTreeSet<String>,
        ttl: Duration,
    ) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        self.issue_at(kind, id, scopes, now, now + ttl.as_secs())
    }

    /// A token issued at `iat` expiring at `exp` (seconds since the epoch).
    pub fn issue_at(
        &self,
        kind: Kind,
        id: &str,
        scopes: &BTreeSet<String>,
        iat: u64,
        exp: u64,
    ) -> Result<String, String> {
        let scope = if scopes.is_empty() {
            kind.default_scopes().join(" ")
        } else {
            scopes.iter().cloned().collect::<Vec<_>>().join(" ")
        };
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: id.into(),
            kind: kind.name().into(),
            scope,
            iat,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }
}

/// A new Ed25519 key pair: `(private PKCS#8 PEM, public SPKI PEM)`.
pub fn generate_key() -> (SecretString, String) {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("an Ed25519 key always encodes")
        .to_string();
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("an Ed25519 key always encodes");
    (SecretString::from(private), public)
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    fn config(keys: &[(&str, &str)]) -> AuthConfig {
        AuthConfig {
            keys: keys
                .iter()
                .map(|(id, public)| KeyConfig {
                    id: (*id).into(),
                    public_key: Some((*public).into()),
                    public_key_file: None,
                })
                .collect(),
            ..AuthConfig::default()
        }
    }

    fn scopes(s: &[&str]) -> BTreeSet<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_token_names_its_principal_and_every_tampering_is_refused() {
        let (private, public) = generate_key();
        let config = config(&[("k1", &public)]);
        let verifier = config.verifier().expect("valid");
        let signer = Signer::new(&config, "k1", &private).expect("signer");
        let token = signer
            .issue(
                Kind::Department,
                "区科委",
                &BTreeSet::new(),
                Duration::from_secs(60),
            )
            .expect("token");
        let principal = verifier.verify(&token).expect("verifies");
        assert_eq!(principal.kind, Kind::Department);
        assert_eq!(principal.id, "区科委");
        assert_eq!(principal.scopes, scopes(&["policy:publish"]));

        // Another claim set under the same signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("b64")).expect("json");
        claims["sub"] = "区人力资源社会保障局".into();
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert!(matches!(
            verifier.verify(&parts.join(".")),
            Err(TokenError::Invalid(_))
        ));

        // alg none, unsigned.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
            parts[1]
        );
        assert!(verifier.verify(&none).is_err());
        // HS256 "signed" with the public key as secret (the classic confusion).
        let hs = jsonwebtoken::encode(
            &Header {
                kid: Some("k1".into()),
                ..Header::new(Algorithm::HS256)
            },
            &claims,
            &EncodingKey::from_secret(public.as_bytes()).expect("hmac key"),
        )
        .expect("hs256");
        assert!(matches!(
            verifier.verify(&hs),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            verifier.verify("not-a-jwt"),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn expired_foreign_and_rotated_out_tokens_are_refused_and_two_keys_verify_at_once() {
        let (old_private, old_public) = generate_key();
        let (new_private, new_public) = generate_key();
        let both = config(&[("new", &new_public), ("old", &old_public)]);
        let old = Signer::new(&both, "old", &old_private).expect("signer");
        let new = Signer::new(&both, "new", &new_private).expect("signer");
        let ttl = Duration::from_secs(60);
        let none = BTreeSet::new();
        let old_token = old.issue(Kind::Subject, "c-1", &none, ttl).expect("token");
        let new_token = new.issue(Kind::Subject, "c-1", &none, ttl).expect("token");
        let verifier = both.verifier().expect("valid");
        assert!(verifier.verify(&old_token).is_ok(), "during rotation");
        assert!(verifier.verify(&new_token).is_ok());
        // The old key removed: its tokens stop working.
        let rotated = config(&[("new", &new_public)]).verifier().expect("valid");
        assert!(matches!(
            rotated.verify(&old_token),
            Err(TokenError::UnknownKey(Some(_)))
        ));
        // Signed by a key that is not configured, under a configured id.
        let (stranger, _) = generate_key();
        let forged = Signer::new(&both, "new", &stranger)
            .expect("signer")
            .issue(Kind::Operator, "mallory", &none, ttl)
            .expect("token");
        assert!(matches!(
            verifier.verify(&forged),
            Err(TokenError::Invalid(_))
        ));
        // Expired beyond the leeway.
        let expired = new
            .issue_at(Kind::Subject, "c-1", &none, 1_000, 2_000)
            .expect("token");
        assert_eq!(verifier.verify(&expired), Err(TokenError::Expired));
        // Another issuer.
        let other = AuthConfig {
            issuer: "elsewhere".into(),
            ..both.clone()
        };
        let foreign = Signer::new(&other, "new", &new_private)
            .expect("signer")
            .issue(Kind::Subject, "c-1", &none, ttl)
            .expect("token");
        assert!(matches!(
            verifier.verify(&foreign),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn bad_auth_config_names_its_key() {
        let (_, public) = generate_key();
        assert!(
            AuthConfig::default().validate().is_ok(),
            "keys are for serving"
        );
        assert_eq!(
            AuthConfig::default().verifier().err().expect("no keys").0,
            "auth.keys"
        );
        assert!(
            AuthConfig {
                mode: AuthMode::Off,
                ..AuthConfig::default()
            }
            .validate()
            .is_ok()
        );
        let bad = config(&[(
            "k1",
            "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----",
        )]);
        assert_eq!(
            bad.validate().expect_err("bad pem").0,
            "auth.keys[0].public_key"
        );
        let twice = config(&[("k1", &public), ("k1", &public)]);
        assert_eq!(twice.validate().expect_err("dup").0, "auth.keys[1].id");
    }
}
