//! `NotificationService`: where a delivery stands, read from the ledger: of a policy, of
//! a notice about it by its ledger id (`<policy>#rev<n>`, `<policy>#withdrawn`), or of one
//! forward of it (`<policy>#forward:<forward id>`: SENT when the forward made the delivery,
//! ALREADY_RECEIVED when the recipient had it before).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use zhida_proto::{
    events::v1::{Channel, DeliveryState},
    notification::v1::{
        GetDeliveryStatusRequest, GetDeliveryStatusResponse,
        notification_service_server::NotificationService,
    },
};
use zhida_runtime::FieldViolations;
use zhida_store::{DeliveryKey, DeliveryLedger};

use crate::{error::Error, sender::is_id};

/// Whether `text` is a forward's ledger id, as [`forward_key`](crate::sender::forward_key)
/// spells it.
fn is_forward(text: &str) -> bool {
    text.split_once("#forward:")
        .is_some_and(|(policy_id, forward_id)| is_id(policy_id) && is_id(forward_id))
}

pub(crate) struct Notifications {
    pub ledger: Arc<dyn DeliveryLedger>,
}

#[tonic::async_trait]
impl NotificationService for Notifications {
    async fn get_delivery_status(
        &self,
        request: Request<GetDeliveryStatusRequest>,
    ) -> Result<Response<GetDeliveryStatusResponse>, Status> {
        zhida_runtime::auth::authorize_subject(&request, &request.get_ref().recipient_id)?;
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        if !crate::notice::is_item_id(&request.policy_id) && !is_forward(&request.policy_id) {
            bad.add(
                "policy_id",
                "required: a policy id (1–128 of A-Z a-z 0-9 _ . : -), a notice's \
                 <policy_id>#rev<n> or <policy_id>#withdrawn, or a forward's \
                 <policy_id>#forward:<forward_id>",
            );
        }
        if !is_id(&request.recipient_id) {
            bad.add("recipient_id", "required: 1–128 of A-Z a-z 0-9 _ . : -");
        }
        let channel = match Channel::try_from(request.channel) {
            Ok(Channel::Unspecified) | Err(_) => {
                bad.add(
                    "channel",
                    format!("EMAIL, SMS or INBOX required, got {}", request.channel),
                );
                Channel::Unspecified
            }
            Ok(channel) => channel,
        };
        bad.into_result().map_err(Error::from)?;
        let key = DeliveryKey {
            policy_id: request.policy_id,
            recipient_id: request.recipient_id,
            channel,
        };
        let status = self.ledger.status(&key).await.map_err(Error::Ledger)?;
        let (state, detail) = match status {
            None | Some(zhida_store::Status::InFlight) => {
                (DeliveryState::Unspecified, String::new())
            }
            Some(zhida_store::Status::Done(outcome)) => {
                (crate::sender::delivery_state(outcome.state), outcome.detail)
            }
        };
        Ok(Response::new(GetDeliveryStatusResponse {
            state: state as i32,
            detail,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwards_status_is_asked_for_by_its_ledger_id() {
        let key = DeliveryKey {
            policy_id: "p-1".into(),
            recipient_id: "e-1".into(),
            channel: Channel::Email,
        };
        let forward = zhida_proto::events::v1::RelayForward {
            forward_id: "5f0c-uuid".into(),
            ..Default::default()
        };
        let own = crate::sender::forward_key(&key, &forward);
        assert!(is_forward(&own.policy_id), "{}", own.policy_id);
        assert!(
            !crate::notice::is_item_id(&own.policy_id),
            "never an inbox item"
        );
        for text in [
            "p-1",
            "p-1#forward:",
            "#forward:f",
            "p-1#forward:a|b",
            "p-1#rev2",
        ] {
            assert!(!is_forward(text), "{text}");
        }
    }
}
