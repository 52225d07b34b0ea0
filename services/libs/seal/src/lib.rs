//! Contact addresses sealed under a per-subject data key, so that destroying the key makes
//! every copy unreadable ("crypto-shredding"). Pure: no I/O; the keys live in
//! `zhida_store::SubjectKeys`.
//!
//! Each subject (citizen or enterprise) has one [`DataKey`]: 256 random bits and a random
//! 8-byte id. The profiler seals each contact address with it before the address leaves
//! the process (the `profiles` topic, `delivery.requests`); the notifier opens it at send
//! time. Deleting the profile destroys the key: from then on no sealed copy (in a topic
//! before compaction or retention, a dead letter, a digest, a backup) can be opened.
//!
//! Sealed form: `1` (format) ‖ key id (8) ‖ nonce (12, random) ‖ ChaCha20-Poly1305
//! ciphertext and tag (16). The associated data binds it to the subject and the channel,
//! so a sealed address moved to another subject or channel does not open. A subject's key
//! seals a handful of addresses per profile write, far below the 2³² messages a random
//! 96-bit nonce allows.

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit,
    aead::{Aead, Payload},
};
use zhida_proto::events::v1::Channel;

/// The sealed format this crate writes and reads.
const FORMAT: u8 = 1;
const ID_LEN: usize = 8;
const SECRET_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + ID_LEN + NONCE_LEN;
/// Binds ciphertexts to this use of the key.
const DOMAIN: &[u8] = b"zhida-contact-v1\0";

/// One subject's data key. Its secret is never printed (`Debug` shows the id only).
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey {
    id: [u8; ID_LEN],
    secret: [u8; SECRET_LEN],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &hex(&self.id))
            .finish_non_exhaustive()
    }
}

/// Why a sealed address did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not something this crate sealed (too short, unknown format).
    #[error("not a sealed address")]
    Malformed,
    /// Sealed under another key: for the subject's key, one destroyed with a deleted profile
    /// (the profile was created again since, with a new key).
    #[error("sealed under another key")]
    OtherKey,
    /// The key is right but the ciphertext, or the subject or channel it is bound to, is
    /// not: it was altered or moved.
    #[error("sealed address was altered or does not belong to this subject and channel")]
    Tampered,
}

impl DataKey {
    /// The length of [`to_bytes`](Self::to_bytes).
    pub const LEN: usize = ID_LEN + SECRET_LEN;

    /// A new random key (the thread's CSPRNG, seeded from the OS).
    pub fn generate() -> Self {
        Self {
            id: rand::random(),
            secret: rand::random(),
        }
    }

    /// Id and secret, for a key store.
    pub fn to_bytes(&self) -> Vec<u8> {
        [self.id.as_slice(), self.secret.as_slice()].concat()
    }

    /// The key [`to_bytes`](Self::to_bytes) wrote; `None` for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (id, secret) = bytes.split_at_checked(ID_LEN)?;
        Some(Self {
            id: id.try_into().ok()?,
            secret: secret.try_into().ok()?,
        })
    }

    /// Seals `address` of `subject` on `channel`.
    pub fn seal(&self, subject: &str, channel: Channel, address: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = Vec::with_capacity(HEADER_LEN + address.len() + TAG_LEN);
        sealed.push(FORMAT);
        sealed.extend_from_slice(&self.id);
        sealed.extend_from_slice(&nonce);
        let ciphertext = self
            .cipher()
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: address.as_bytes(),
                    aad: &aad(subject, channel),
                },
            )
            .expect("ChaCha20-Poly1305 encrypts any message shorter than 256 GiB");
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// The address `sealed` holds, if this key sealed it for `subject` on `channel`.
    pub fn open(
        &self,
        subject: &str,
        channel: Channel,
        sealed: &[u8],
    ) -> Result<String, OpenError> {
        if key_id(sealed)? != self.id {
            return Err(OpenError::OtherKey);
        }
        let (header, ciphertext) = sealed.split_at(HEADER_LEN);
        let nonce: [u8; NONCE_LEN] = header[1 + ID_LEN..]
            .try_into()
            .map_err(|_| OpenError::Malformed)?;
        let plain = self
            .cipher()
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: &aad(subject, channel),
                },
            )
            .map_err(|_| OpenError::Tampered)?;
        String::from_utf8(plain).map_err(|_| OpenError::Tampered)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&self.secret.into())
    }
}

/// The id of the key `sealed` was sealed under.
fn key_id(sealed: &[u8]) -> Result<[u8; ID_LEN], OpenError> {
    if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != FORMAT {
        return Err(OpenError::Malformed);
    }
    sealed[1..=ID_LEN]
        .try_into()
        .map_err(|_| OpenError::Malformed)
}

/// The associated data: domain, channel number, subject.
fn aad(subject: &str, channel: Channel) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DOMAIN.len() + 4 + subject.len());
    aad.extend_from_slice(DOMAIN);
    aad.extend_from_slice(&(channel as i32).to_be_bytes());
    aad.extend_from_slice(subject.as_bytes());
    aad
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &str = "wang.fang@example.cn";

    #[test]
    fn a_sealed_address_opens_with_its_key_subject_and_channel_only() {
        let key = DataKey::generate();
        let sealed = key.seal("c-1", Channel::Email, MAIL);
        assert_eq!(key.open("c-1", Channel::Email, &sealed), Ok(MAIL.into()));
        assert!(
            !sealed.windows(MAIL.len()).any(|w| w == MAIL.as_bytes()),
            "nothing of the address in clear"
        );
        assert_eq!(sealed.len(), HEADER_LEN + MAIL.len() + TAG_LEN);
        assert_ne!(
            sealed,
            key.seal("c-1", Channel::Email, MAIL),
            "a fresh nonce each time"
        );
        // Moved to another subject or channel: the associated data no longer matches.
        assert_eq!(
            key.open("c-2", Channel::Email, &sealed),
            Err(OpenError::Tampered)
        );
        assert_eq!(
            key.open("c-1", Channel::Sms, &sealed),
            Err(OpenError::Tampered)
        );
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let key = DataKey::generate();
        let sealed = key.seal("c-1", Channel::Sms, "13800138000");
        for i in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[i] ^= 0x01;
            let opened = key.open("c-1", Channel::Sms, &altered);
            let expected = match i {
                0 => OpenError::Malformed,
                1..=ID_LEN => OpenError::OtherKey,
                _ => OpenError::Tampered,
            };
            assert_eq!(opened, Err(expected), "byte {i}");
        }
        assert_eq!(
            key.open("c-1", Channel::Sms, &sealed[..sealed.len() - 1]),
            Err(OpenError::Tampered),
            "truncated"
        );
        assert_eq!(
            key.open("c-1", Channel::Sms, &sealed[..HEADER_LEN]),
            Err(OpenError::Malformed)
        );
        assert_eq!(
            key.open("c-1", Channel::Sms, b""),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn another_key_does_not_open_it_even_with_the_same_id() {
        let key = DataKey::generate();
        let sealed = key.seal("c-1", Channel::Email, MAIL);
        // The profile deleted and created again: a new key.
        let new = DataKey::generate();
        assert_eq!(
            new.open("c-1", Channel::Email, &sealed),
            Err(OpenError::OtherKey)
        );
        // A key forged to carry the old id, with another secret.
        let forged = DataKey {
            id: key.id,
            secret: new.secret,
        };
        assert_eq!(
            forged.open("c-1", Channel::Email, &sealed),
            Err(OpenError::Tampered)
        );
    }

    #[test]
    fn keys_round_trip_through_their_bytes_and_never_print_their_secret() {
        let key = DataKey::generate();
        let bytes = key.to_bytes();
        assert_eq!(bytes.len(), DataKey::LEN);
        assert_eq!(DataKey::from_bytes(&bytes), Some(key.clone()));
        assert_eq!(DataKey::from_bytes(&bytes[1..]), None);
        assert_eq!(
            DataKey::from_bytes(&[bytes.clone(), vec![0]].concat()),
            None
        );
        let printed = format!("{key:?}");
        assert!(!printed.contains(&hex(&key.secret)), "{printed}");
        assert!(printed.contains(&hex(&key.id)), "{printed}");
    }
}
