//! `NotificationService`: where a delivery stands, read from the ledger: of a policy, or of
//! a notice about it by its ledger id (`<policy>#rev<n>`, `<policy>#withdrawn`).

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
        if !crate::notice::is_item_id(&request.policy_id) {
            bad.add(
                "policy_id",
                "required: a policy id (1–128 of A-Z a-z 0-9 _ . : -), or a notice's \
                 <policy_id>#rev<n> or <policy_id>#withdrawn",
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
