//! The address a request goes to is opened at send time, with the recipient's data key
//! (`zhida_store::SubjectKeys`): the profiler sealed it (`DeliveryRequested.sealed_address`)
//! and deleting the profile destroyed the key. A request whose key is gone is for a
//! deleted profile: it ends FAILED with the detail [`PROFILE_DELETED`], nothing sent and
//! nothing retried. The opened address lives in memory for the one send; it is never
//! logged, recorded or reported.

use std::borrow::Cow;

use zhida_proto::events::v1::DeliveryRequested;
use zhida_seal::OpenError;
use zhida_store::SubjectKeys;

use crate::{
    channel::{Attempt, Channel},
    sender::Sender,
};

/// The detail of a delivery whose profile was deleted before it went out.
pub(crate) const PROFILE_DELETED: &str = "profile deleted";

/// `request` with its address opened (unchanged when it has no sealed address: the inbox,
/// or a request from a profiler that wrote addresses in clear), or the attempt it ends as.
pub(crate) async fn open<'a>(
    keys: &dyn SubjectKeys,
    request: &'a DeliveryRequested,
) -> Result<Cow<'a, DeliveryRequested>, Attempt> {
    if request.sealed_address.is_empty() {
        return Ok(Cow::Borrowed(request));
    }
    let key = keys
        .find(&request.recipient_id)
        .await
        .map_err(|error| Attempt::Retry {
            detail: format!("subject keys unavailable: {error}"),
        })?
        .ok_or_else(deleted)?;
    let channel = zhida_proto::events::v1::Channel::try_from(request.channel).unwrap_or_default();
    match key.open(&request.recipient_id, channel, &request.sealed_address) {
        Ok(address) => Ok(Cow::Owned(DeliveryRequested {
            address,
            sealed_address: Vec::new(),
            ..request.clone()
        })),
        // Sealed under a key destroyed since: the profile was deleted (and created again).
        Err(OpenError::OtherKey) => Err(deleted()),
        Err(error) => Err(Attempt::Refused {
            detail: format!("the sealed address does not open: {error}"),
        }),
    }
}

/// Every request of one recipient's digest opened, or the attempt the digest ends as.
pub(crate) async fn open_all(
    keys: &dyn SubjectKeys,
    requests: &[DeliveryRequested],
) -> Result<Vec<DeliveryRequested>, Attempt> {
    let mut opened = Vec::with_capacity(requests.len());
    for request in requests {
        opened.push(open(keys, request).await?.into_owned());
    }
    Ok(opened)
}

impl Sender {
    /// Sends `request` on `channel` with its address opened.
    pub(crate) async fn send_opened(
        &self,
        channel: &dyn Channel,
        request: &DeliveryRequested,
    ) -> Attempt {
        match open(&*self.keys, request).await {
            Ok(request) => channel.send(&request).await,
            Err(attempt) => attempt,
        }
    }

    /// Sends the digest `digest_id` of `requests` on `channel` with their addresses opened.
    pub(crate) async fn send_digest_opened(
        &self,
        channel: &dyn Channel,
        digest_id: &str,
        requests: &[DeliveryRequested],
    ) -> Attempt {
        match open_all(&*self.keys, requests).await {
            Ok(requests) => channel.send_digest(digest_id, &requests).await,
            Err(attempt) => attempt,
        }
    }
}

fn deleted() -> Attempt {
    Attempt::Refused {
        detail: PROFILE_DELETED.into(),
    }
}

#[cfg(test)]
mod tests {
    use zhida_proto::events::v1::Channel;
    use zhida_store::MemorySubjectKeys;

    use super::*;

    const MAIL: &str = "wang.fang@example.cn";

    async fn sealed(keys: &MemorySubjectKeys) -> DeliveryRequested {
        let key = keys.create("c-1").await.expect("key");
        DeliveryRequested {
            policy_id: "p-1".into(),
            recipient_id: "c-1".into(),
            channel: Channel::Email as i32,
            sealed_address: key.seal("c-1", Channel::Email, MAIL),
            ..DeliveryRequested::default()
        }
    }

    #[tokio::test]
    async fn a_request_opens_until_its_profile_is_deleted() {
        let keys = MemorySubjectKeys::default();
        let request = sealed(&keys).await;
        let opened = open(&keys, &request).await.expect("opened");
        assert_eq!(opened.address, MAIL);
        assert!(opened.sealed_address.is_empty());

        keys.destroy("c-1").await.expect("destroyed");
        assert_eq!(
            open(&keys, &request).await,
            Err(Attempt::Refused {
                detail: PROFILE_DELETED.into()
            })
        );
        // Created again: the old request is still for the deleted profile.
        keys.create("c-1").await.expect("new key");
        assert_eq!(
            open_all(&keys, std::slice::from_ref(&request)).await,
            Err(Attempt::Refused {
                detail: PROFILE_DELETED.into()
            })
        );
    }

    #[tokio::test]
    async fn an_altered_or_moved_address_is_refused_without_saying_it() {
        let keys = MemorySubjectKeys::default();
        let mut request = sealed(&keys).await;
        request.channel = Channel::Sms as i32;
        let Err(Attempt::Refused { detail }) = open(&keys, &request).await else {
            panic!("opened as another channel's");
        };
        assert!(
            !detail.contains(MAIL) && !detail.contains(PROFILE_DELETED),
            "{detail}"
        );
        // Nothing sealed (the inbox, or a request written before sealing): as it is.
        let inbox = DeliveryRequested {
            recipient_id: "c-9".into(),
            ..DeliveryRequested::default()
        };
        assert!(matches!(open(&keys, &inbox).await, Ok(Cow::Borrowed(_))));
    }
}
