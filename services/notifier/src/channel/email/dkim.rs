//! DKIM (RFC 6376) signing of every email, with an Ed25519 (RFC 8463) or RSA key from
//! `[smtp.dkim]`, through lettre's signer; and the DNS TXT record that publishes the public
//! key. The key is read once at start (a bad one stops the process naming
//! `smtp.dkim.key_file`) and is never logged: errors say what is wrong, never what it holds.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, spki::der::pem};
use lettre::{
    Message,
    message::{
        dkim::{
            DkimCanonicalization, DkimCanonicalizationType, DkimConfig as Signer,
            DkimSigningAlgorithm, DkimSigningKey,
        },
        header::HeaderName,
    },
};
use rsa::{
    RsaPrivateKey,
    pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _},
    pkcs8::EncodePublicKey as _,
    traits::PublicKeyParts as _,
};
use secrecy::{ExposeSecret as _, SecretString};
use zhida_runtime::config::ConfigError;

use crate::config::DkimConfig;

/// Smallest RSA key accepted (RFC 8301: signers MUST use at least 1024 bits).
const MIN_RSA_BITS: usize = 1024;

/// The headers every signature covers. RFC 8058 requires `List-Unsubscribe` and
/// `List-Unsubscribe-Post` to be signed. Not `Content-Type`: lettre writes a multipart
/// message's `Content-Type` with the body, where its signer does not see it, so it would
/// sign an absent header while receivers hash the one present, and every signature would
/// fail (the body hash covers the parts anyway).
const SIGNED_HEADERS: [&str; 8] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A loaded DKIM key, ready to sign.
pub struct Dkim {
    signer: Signer,
    /// The TXT record that publishes the public key.
    dns_record: String,
}

impl std::fmt::Debug for Dkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dkim")
            .field("dns_record", &self.dns_record)
            .finish_non_exhaustive()
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::invalid(format!("smtp.dkim.{key}"), reason)
}

/// A DNS name made of LDH labels (`_` allowed, as in selectors).
fn is_dns_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Checks what `[smtp.dkim]` says without reading the key (every service loads the
/// notifier's sections, and only the notifier may read the key file).
pub fn check(config: &DkimConfig) -> Result<(), ConfigError> {
    if !is_dns_name(&config.domain) {
        return Err(invalid(
            "domain",
            "must be the signing domain, e.g. yangpu.example.gov.cn",
        ));
    }
    if !is_dns_name(&config.selector) {
        return Err(invalid("selector", "must be a DNS label such as zhida2026"));
    }
    if config.key_pem.is_none() && config.key_file.trim().is_empty() {
        return Err(invalid(
            "key_file",
            "required: the path of a PEM private key (Ed25519 or RSA)",
        ));
    }
    Ok(())
}

impl Dkim {
    /// Checks `config` and reads and parses the key it names (at the notifier's start);
    /// errors name the key at fault and never quote the key.
    pub fn load(config: &DkimConfig) -> Result<Self, ConfigError> {
        check(config)?;
        let pem = match &config.key_pem {
            Some(pem) => pem.clone(),
            None => SecretString::from(std::fs::read_to_string(&config.key_file).map_err(|e| {
                invalid("key_file", format!("cannot read {}: {e}", config.key_file))
            })?),
        };
        let (key, public) =
            parse_key(pem.expose_secret()).map_err(|reason| invalid("key_file", reason))?;
        let dns_record = format!(
            "{}._domainkey.{} IN TXT \"v=DKIM1; k={}; p={public}\"",
            config.selector,
            config.domain,
            match key.algorithm {
                DkimSigningAlgorithm::Ed25519 => "ed25519",
                DkimSigningAlgorithm::Rsa => "rsa",
            }
        );
        let signing_key = DkimSigningKey::new(key.lettre.expose_secret(), key.algorithm)
            .map_err(|e| invalid("key_file", format!("the key was refused: {e}")))?;
        let relaxed = DkimCanonicalizationType::Relaxed;
        let signer = Signer::new(
            config.selector.clone(),
            config.domain.clone(),
            signing_key,
            SIGNED_HEADERS
                .iter()
                .map(|h| HeaderName::new_from_ascii_str(h))
                .collect(),
            // Relaxed for headers and body: survives relays that refold headers or
            // change trailing whitespace.
            DkimCanonicalization {
                header: relaxed,
                body: relaxed,
            },
        );
        Ok(Self { signer, dns_record })
    }

    /// Adds the `DKIM-Signature` header to `message` (the last change to it).
    pub fn sign(&self, message: &mut Message) {
        lettre::message::dkim::dkim_sign(message, &self.signer);
    }

    /// `<selector>._domainkey.<domain> IN TXT "v=DKIM1; k=…; p=…"`: what the district
    /// publishes so receivers can verify.
    pub fn dns_record(&self) -> &str {
        &self.dns_record
    }
}

/// The key as lettre takes it (PKCS#1 PEM for RSA, the base64 seed for Ed25519).
struct LettreKey {
    algorithm: DkimSigningAlgorithm,
    lettre: SecretString,
}

/// Parses a PEM private key: PKCS#8 Ed25519 or RSA, or PKCS#1 RSA. Returns the key for
/// lettre and the public key as DKIM's `p=` wants it (base64).
fn parse_key(pem: &str) -> Result<(LettreKey, String), String> {
    let label = pem::decode_vec(pem.trim().as_bytes())
        .map(|(label, _)| label.to_string())
        .map_err(|_| "not a PEM private key".to_string())?;
    if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        let public = STANDARD.encode(key.verifying_key().to_bytes());
        let lettre = SecretString::from(STANDARD.encode(key.to_bytes()));
        return Ok((
            LettreKey {
                algorithm: DkimSigningAlgorithm::Ed25519,
                lettre,
            },
            public,
        ));
    }
    let rsa = match label.as_str() {
        "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_pem(pem).ok(),
        "PRIVATE KEY" => rsa::pkcs8::DecodePrivateKey::from_pkcs8_pem(pem).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        format!("a PEM \"{label}\" that is neither an Ed25519 nor an RSA private key")
    })?;
    let bits = rsa.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "an RSA key of {bits} bits; at least {MIN_RSA_BITS} (2048 recommended)"
        ));
    }
    let public = rsa
        .to_public_key()
        .to_public_key_der()
        .map_err(|_| "the RSA public key cannot be encoded".to_string())?;
    let lettre = rsa
        .to_pkcs1_pem(pem::LineEnding::LF)
        .map_err(|_| "the RSA key cannot be re-encoded".to_string())?;
    Ok((
        LettreKey {
            algorithm: DkimSigningAlgorithm::Rsa,
            lettre: SecretString::from(lettre.as_str()),
        },
        STANDARD.encode(public.as_bytes()),
    ))
}

/// A new Ed25519 key as PKCS#8 PEM, from the system's random source: for `zhida demo`,
/// which signs with a key that lives only as long as the process.
pub fn generate_ed25519_pem() -> SecretString {
    let seed: [u8; 32] = rand::random();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    match key.to_pkcs8_pem(pem::LineEnding::LF) {
        Ok(pem) => SecretString::from(pem.as_str()),
        // Encoding 32 bytes into a fixed structure does not fail.
        Err(_) => SecretString::from(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pem: &str) -> DkimConfig {
        DkimConfig {
            domain: "yangpu.example.gov.cn".into(),
            selector: "zhida2026".into(),
            key_file: String::new(),
            key_pem: Some(SecretString::from(pem)),
        }
    }

    #[test]
    fn a_generated_ed25519_key_loads_and_publishes_its_public_half() {
        let pem = generate_ed25519_pem();
        let dkim = Dkim::load(&config(pem.expose_secret())).expect("loads");
        let record = dkim.dns_record();
        assert!(
            record.starts_with(
                "zhida2026._domainkey.yangpu.example.gov.cn IN TXT \"v=DKIM1; k=ed25519; p="
            ),
            "{record}"
        );
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.expose_secret()).expect("pem");
        let public = STANDARD.encode(key.verifying_key().to_bytes());
        assert!(record.ends_with(&format!("p={public}\"")), "{record}");
        assert!(!format!("{dkim:?}").contains("PRIVATE"), "{dkim:?}");
    }

    #[test]
    fn an_rsa_key_in_pkcs8_or_pkcs1_loads() {
        // A throw-away 1024-bit key made for this test (`openssl genpkey`, PKCS#8); the
        // same key as PKCS#1 is derived from it.
        let pkcs8 = include_str!("testdata/rsa-1024-test-only.pem");
        let key: RsaPrivateKey =
            rsa::pkcs8::DecodePrivateKey::from_pkcs8_pem(pkcs8).expect("test key");
        let pkcs1 = key.to_pkcs1_pem(pem::LineEnding::LF).expect("pkcs1");
        for pem in [pkcs1.as_str(), pkcs8] {
            let dkim = Dkim::load(&config(pem)).expect("loads");
            assert!(dkim.dns_record().contains("k=rsa; p=MI"), "{dkim:?}");
        }
    }

    #[test]
    fn a_missing_unreadable_or_invalid_key_names_smtp_dkim_key_file_without_its_content() {
        let mut c = config("");
        c.key_pem = None;
        let err = Dkim::load(&c).expect_err("no key_file");
        assert!(err.to_string().contains("smtp.dkim.key_file"), "{err}");
        c.key_file = "/nonexistent/dkim.pem".into();
        let err = Dkim::load(&c).expect_err("unreadable");
        assert!(
            err.to_string().contains("smtp.dkim.key_file")
                && err.to_string().contains("cannot read"),
            "{err}"
        );
        let secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVzLXNlY3JldA==\n-----END PRIVATE KEY-----\n";
        let err = Dkim::load(&config(secret)).expect_err("garbage");
        assert!(err.to_string().contains("smtp.dkim.key_file"), "{err}");
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
        let err = Dkim::load(&config("hello")).expect_err("not pem");
        assert!(err.to_string().contains("not a PEM"), "{err}");
        let mut c = config(generate_ed25519_pem().expose_secret());
        c.selector = "bad selector".into();
        assert!(
            Dkim::load(&c)
                .expect_err("selector")
                .to_string()
                .contains("smtp.dkim.selector")
        );
    }
}
