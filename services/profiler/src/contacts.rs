//! Contact addresses leave the profiler sealed under the subject's data key
//! ([`zhida_seal`], keys in [`SubjectKeys`]): the `profiles` records it appends and the
//! delivery requests it copies them into carry `sealed_address` only, so destroying the
//! key when the profile is deleted makes every copy unreadable (crypto-shredding).
//!
//! The directory holds profiles as they are on `profiles`, sealed: a replay needs no key
//! and holds no address in clear, and the matcher copies sealed addresses into requests
//! without a key lookup per delivery. Addresses are in clear only in an `UpsertProfile`
//! on its way in and a `GetProfile` answer on its way out.

use std::sync::Arc;

use zhida_proto::events::v1::{Channel, Profile};
use zhida_seal::DataKey;
use zhida_store::SubjectKeys;

use crate::error::{Error, Result};

#[derive(Clone)]
pub(crate) struct Contacts {
    keys: Arc<dyn SubjectKeys>,
}

impl Contacts {
    pub fn new(keys: Arc<dyn SubjectKeys>) -> Self {
        Self { keys }
    }

    /// Seals every address of `profile` still in clear (an upsert's; or one replayed from a
    /// record written before addresses were sealed) under the subject's key, created if it
    /// has none. A profile with nothing in clear (an edit of a stored one) needs no key.
    pub async fn seal(&self, profile: &mut Profile) -> Result<()> {
        if profile.contacts.iter().all(|c| c.address.is_empty()) {
            return Ok(());
        }
        let key = self
            .keys
            .create(&profile.subject_id)
            .await
            .map_err(Error::Keys)?;
        seal_with(&key, profile);
        Ok(())
    }

    /// Seals `profile` as [`seal`](Self::seal) does, unless it is what `stored` (the
    /// subject's profile as the directory holds it, sealed) already says once opened:
    /// then it leaves it and answers false, so an import of the same profile appends
    /// nothing. A stored copy that does not open counts as different.
    pub async fn seal_unless_stored(
        &self,
        profile: &mut Profile,
        stored: Option<&Profile>,
    ) -> Result<bool> {
        if profile.contacts.iter().all(|c| c.address.is_empty()) {
            return Ok(stored != Some(&*profile));
        }
        let key = self
            .keys
            .create(&profile.subject_id)
            .await
            .map_err(Error::Keys)?;
        if let Some(stored) = stored {
            let mut opened = stored.clone();
            if open_with(&key, &mut opened).is_ok() && opened == *profile {
                return Ok(false);
            }
        }
        seal_with(&key, profile);
        Ok(true)
    }

    /// `profile` as the API answers it: every sealed address opened, in `address`.
    pub async fn open(&self, mut profile: Profile) -> Result<Profile> {
        if profile.contacts.iter().all(|c| c.sealed_address.is_empty()) {
            return Ok(profile);
        }
        let key = self
            .keys
            .find(&profile.subject_id)
            .await
            .map_err(Error::Keys)?;
        let Some(key) = key else {
            return Err(Error::Unreadable(profile.subject_id));
        };
        open_with(&key, &mut profile)?;
        Ok(profile)
    }

    /// Destroys the subject's key: every address sealed under it, wherever it was copied,
    /// is unreadable from now on.
    pub async fn shred(&self, subject: &str) -> Result<()> {
        self.keys.destroy(subject).await.map_err(Error::Keys)
    }
}

fn seal_with(key: &DataKey, profile: &mut Profile) {
    for contact in &mut profile.contacts {
        if contact.address.is_empty() {
            continue;
        }
        let channel = Channel::try_from(contact.channel).unwrap_or_default();
        contact.sealed_address = key.seal(&profile.subject_id, channel, &contact.address);
        contact.address.clear();
    }
}

fn open_with(key: &DataKey, profile: &mut Profile) -> Result<()> {
    for contact in &mut profile.contacts {
        if contact.sealed_address.is_empty() {
            continue;
        }
        let channel = Channel::try_from(contact.channel).unwrap_or_default();
        contact.address = key
            .open(&profile.subject_id, channel, &contact.sealed_address)
            .map_err(|error| {
                tracing::warn!(subject = profile.subject_id, %error, "contact address does not open");
                Error::Unreadable(profile.subject_id.clone())
            })?;
        contact.sealed_address.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use zhida_proto::events::v1::Contact;
    use zhida_store::MemorySubjectKeys;

    use super::*;

    fn profile() -> Profile {
        Profile {
            subject_id: "c-1".into(),
            contacts: vec![
                Contact {
                    channel: Channel::Email as i32,
                    address: "wang.fang@example.cn".into(),
                    consent: true,
                    ..Contact::default()
                },
                Contact {
                    channel: Channel::Sms as i32,
                    address: "13800138000".into(),
                    consent: false,
                    ..Contact::default()
                },
            ],
            ..Profile::default()
        }
    }

    #[tokio::test]
    async fn addresses_are_stored_sealed_answered_open_and_lost_with_the_key() {
        let contacts = Contacts::new(Arc::new(MemorySubjectKeys::default()));
        let mut sealed = profile();
        contacts.seal(&mut sealed).await.expect("sealed");
        let encoded = prost::Message::encode_to_vec(&sealed);
        for address in ["wang.fang@example.cn", "13800138000"] {
            assert!(
                !encoded
                    .windows(address.len())
                    .any(|w| w == address.as_bytes()),
                "{address} in clear"
            );
        }
        assert!(sealed.contacts.iter().all(|c| c.address.is_empty()));
        // An edit of the stored profile writes it back as it is, without a key.
        let mut edited = sealed.clone();
        edited.contacts[0].consent = false;
        contacts.seal(&mut edited).await.expect("nothing to seal");
        assert_eq!(
            edited.contacts[1].sealed_address,
            sealed.contacts[1].sealed_address
        );

        assert_eq!(
            contacts.open(sealed.clone()).await.expect("opened"),
            profile()
        );
        // Sealed for one channel, the address does not open as another's.
        let mut swapped = sealed.clone();
        let email = swapped.contacts[0].sealed_address.clone();
        swapped.contacts[1].sealed_address = email;
        assert!(matches!(
            contacts.open(swapped).await,
            Err(Error::Unreadable(_))
        ));

        contacts.shred("c-1").await.expect("shredded");
        assert!(matches!(
            contacts.open(sealed.clone()).await,
            Err(Error::Unreadable(_))
        ));
        // Created again: a new key, which does not open the old copies.
        let mut again = profile();
        contacts.seal(&mut again).await.expect("sealed");
        assert_eq!(contacts.open(again).await.expect("opened"), profile());
        assert!(contacts.open(sealed).await.is_err());
    }

    #[tokio::test]
    async fn a_profile_already_stored_so_is_not_sealed_again_and_a_changed_one_is() {
        let contacts = Contacts::new(Arc::new(MemorySubjectKeys::default()));
        let mut stored = profile();
        assert!(
            contacts
                .seal_unless_stored(&mut stored, None)
                .await
                .expect("sealed"),
            "nothing stored: written"
        );
        assert!(stored.contacts.iter().all(|c| c.address.is_empty()));

        let mut same = profile();
        assert!(
            !contacts
                .seal_unless_stored(&mut same, Some(&stored))
                .await
                .expect("compared"),
            "the same profile again: nothing to write"
        );
        let mut changed = profile();
        changed.contacts[1].consent = true;
        assert!(
            contacts
                .seal_unless_stored(&mut changed, Some(&stored))
                .await
                .expect("sealed")
        );
        assert!(changed.contacts.iter().all(|c| c.address.is_empty()));
        assert_eq!(
            contacts.open(changed).await.expect("opened").contacts[1].address,
            "13800138000"
        );

        let mut bare = Profile {
            contacts: vec![],
            ..profile()
        };
        assert!(
            contacts
                .seal_unless_stored(&mut bare, Some(&stored))
                .await
                .expect("compared"),
            "contacts removed: written"
        );
        let stored_bare = bare.clone();
        assert!(
            !contacts
                .seal_unless_stored(&mut bare, Some(&stored_bare))
                .await
                .expect("compared")
        );
    }
}
