//! Signatures as Standard Webhooks defines them, so that a receiver can check a delivery
//! with any of that specification's libraries: HMAC-SHA256 under the endpoint's key over
//! `{webhook-id}.{webhook-timestamp}.{body}`, sent as `v1,<standard base64>`.
//!
//! The id and the timestamp are signed with the body so that a captured delivery cannot be
//! replayed later (the receiver refuses timestamps outside its tolerance, [`verify`]) nor
//! passed off as another message (receivers deduplicate on the id).
//!
//! Rotation: the header holds one space-separated `v1,…` entry per secret, and a receiver
//! accepts the delivery when any entry matches any of its secrets. While an endpoint's old
//! and new secrets are both valid the sender signs with both, so the subscriber can switch
//! its receiver to the new one at any moment.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::Secret;

/// The message's id, the same on every attempt (receivers deduplicate on it).
pub const HEADER_ID: &str = "webhook-id";
/// Seconds since the Unix epoch when the attempt was signed.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Space-separated `v1,<base64>` signatures, one per secret.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// How far (seconds) a timestamp may be from the receiver's clock, either way: the
/// specification's and its libraries' default.
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

/// The only signature scheme this crate writes and reads (symmetric HMAC-SHA256).
const SCHEME: &str = "v1";

/// Why a delivery does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {HEADER_TIMESTAMP} header is not a number of seconds")]
    BadTimestamp,
    #[error("the {HEADER_TIMESTAMP} is too old")]
    TooOld,
    #[error("the {HEADER_TIMESTAMP} is in the future")]
    InFuture,
    #[error("the {HEADER_SIGNATURE} header has no v1 signature")]
    NoSignature,
    #[error("no signature matches")]
    NoMatch,
}

fn mac(secret: &Secret, msg_id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.key())
        .expect("HMAC accepts any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` header value for a delivery: `v1,<base64>` for each of
/// `secrets`, in their order, separated by spaces. Empty if `secrets` is.
pub fn sign(secrets: &[Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    secrets
        .iter()
        .map(|secret| {
            let tag = mac(secret, msg_id, &timestamp, body)
                .finalize()
                .into_bytes();
            format!("{SCHEME},{}", STANDARD.encode(tag))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a delivery as a receiver does: the timestamp (as received, `webhook-timestamp`)
/// is within `tolerance_secs` of `now` (Unix seconds), and some `v1` entry of
/// `signature_header` is the signature under one of `secrets`. Entries of other schemes
/// (`v1a,…`, future ones) are ignored; tags are compared in constant time.
pub fn verify(
    secrets: &[Secret],
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let signed_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if signed_at < now.saturating_sub(tolerance_secs) {
        return Err(VerifyError::TooOld);
    }
    if signed_at > now.saturating_add(tolerance_secs) {
        return Err(VerifyError::InFuture);
    }
    // The timestamp as signed is its decimal form, whatever padding the header had.
    let timestamp = signed_at.to_string();
    let mut any = false;
    for entry in signature_header.split_whitespace() {
        let Some((SCHEME, encoded)) = entry.split_once(',') else {
            continue;
        };
        any = true;
        let Ok(tag) = STANDARD.decode(encoded) else {
            continue;
        };
        if secrets.iter().any(|secret| {
            mac(secret, msg_id, &timestamp, body)
                .verify_slice(&tag)
                .is_ok()
        }) {
            return Ok(());
        }
    }
    Err(if any {
        VerifyError::NoMatch
    } else {
        VerifyError::NoSignature
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector the Standard Webhooks specification's libraries all check.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn spec() -> Secret {
        Secret::parse(SECRET).expect("the specification's secret")
    }

    fn check(
        secrets: &[Secret],
        id: &str,
        ts: &str,
        header: &str,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        verify(
            secrets,
            id,
            ts,
            header,
            body,
            TIMESTAMP,
            DEFAULT_TOLERANCE_SECS,
        )
    }

    #[test]
    fn matches_the_specification_test_vector() {
        assert_eq!(sign(&[spec()], ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(check(&[spec()], ID, "1614265330", SIGNATURE, BODY), Ok(()));
    }

    #[test]
    fn rotation_signs_with_every_secret_and_either_verifies() {
        let new = Secret::generate();
        let header = sign(&[new.clone(), spec()], ID, TIMESTAMP, BODY);
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1], SIGNATURE);
        assert_eq!(
            entries[0],
            sign(std::slice::from_ref(&new), ID, TIMESTAMP, BODY)
        );
        let ts = TIMESTAMP.to_string();
        // A receiver with only the old secret, only the new one, or both.
        assert_eq!(check(&[spec()], ID, &ts, &header, BODY), Ok(()));
        assert_eq!(
            check(std::slice::from_ref(&new), ID, &ts, &header, BODY),
            Ok(())
        );
        assert_eq!(
            check(&[Secret::generate(), new], ID, &ts, &header, BODY),
            Ok(())
        );
        // A receiver holding neither.
        assert_eq!(
            check(&[Secret::generate()], ID, &ts, &header, BODY),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(sign(&[], ID, TIMESTAMP, BODY), "");
    }

    #[test]
    fn tampering_fails() {
        let ts = TIMESTAMP.to_string();
        let s = [spec()];
        assert_eq!(
            check(&s, ID, &ts, SIGNATURE, br#"{"test": 2432232315}"#),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            check(&s, "msg_other", &ts, SIGNATURE, BODY),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            check(&s, ID, "1614265331", SIGNATURE, BODY),
            Err(VerifyError::NoMatch)
        );
        let flipped = SIGNATURE.replace("g0hM", "g0hN");
        assert_eq!(
            check(&s, ID, &ts, &flipped, BODY),
            Err(VerifyError::NoMatch)
        );
        let truncated = &SIGNATURE[..SIGNATURE.len() - 4];
        assert_eq!(
            check(&s, ID, &ts, truncated, BODY),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            check(&s, ID, &ts, "v1,not base64!", BODY),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn other_schemes_are_ignored() {
        let ts = TIMESTAMP.to_string();
        let s = [spec()];
        let tag = SIGNATURE.trim_start_matches("v1,");
        // The right tag under another scheme's name does not count.
        assert_eq!(
            check(&s, ID, &ts, &format!("v1a,{tag}"), BODY),
            Err(VerifyError::NoSignature)
        );
        assert_eq!(check(&s, ID, &ts, "", BODY), Err(VerifyError::NoSignature));
        assert_eq!(
            check(&s, ID, &ts, &format!("v2,{tag}"), BODY),
            Err(VerifyError::NoSignature)
        );
        assert_eq!(
            check(&s, ID, &ts, &format!("v1a,abc v2,{tag}  {SIGNATURE}"), BODY),
            Ok(())
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused() {
        let s = [spec()];
        let at = |now: i64| {
            verify(
                &s,
                ID,
                "1614265330",
                SIGNATURE,
                BODY,
                now,
                DEFAULT_TOLERANCE_SECS,
            )
        };
        assert_eq!(at(TIMESTAMP + 300), Ok(()));
        assert_eq!(at(TIMESTAMP - 300), Ok(()));
        assert_eq!(at(TIMESTAMP + 301), Err(VerifyError::TooOld));
        assert_eq!(at(TIMESTAMP - 301), Err(VerifyError::InFuture));
        assert_eq!(
            verify(&s, ID, "1614265330", SIGNATURE, BODY, TIMESTAMP + 10, 5),
            Err(VerifyError::TooOld)
        );
        // No overflow at the ends of the range.
        assert_eq!(
            verify(&s, ID, "1614265330", SIGNATURE, BODY, i64::MAX, i64::MAX),
            Ok(())
        );
        assert_eq!(
            verify(&s, ID, "1614265330", SIGNATURE, BODY, i64::MIN, i64::MAX),
            Err(VerifyError::InFuture)
        );
        assert_eq!(
            check(&s, ID, "soon", SIGNATURE, BODY),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            check(&s, ID, "", SIGNATURE, BODY),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            check(&s, ID, "1.6e9", SIGNATURE, BODY),
            Err(VerifyError::BadTimestamp)
        );
    }
}
