//! Turns a delivery request into the notice a citizen reads. Pure: no I/O.

use lettre::{
    Message,
    message::{Mailbox, header::ContentType},
};
use zhida_proto::events::v1::DeliveryRequested;

/// Why a request cannot become an email; retrying cannot help.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("recipient address is not a valid mailbox")]
    Address,
    #[error("sender (smtp.from) is not a valid mailbox")]
    From,
    #[error("message could not be built: {0}")]
    Build(String),
}

/// The plain-text email for `request`. The Message-ID is derived from (policy, recipient), so
/// a receiving system can also recognise a duplicate.
pub fn email(request: &DeliveryRequested, from: &str) -> Result<Message, RenderError> {
    let to = Mailbox::new(
        Some(request.recipient_name.clone()).filter(|n| !n.is_empty()),
        request.address.parse().map_err(|_| RenderError::Address)?,
    );
    let from: Mailbox = from.parse().map_err(|_| RenderError::From)?;
    let mut body = format!(
        "{name}，您好：\n\n{department}发布了政策《{title}》。\n\n{text}\n",
        name = if request.recipient_name.is_empty() {
            "您"
        } else {
            &request.recipient_name
        },
        department = request.department,
        title = request.title,
        text = request.body.trim_end(),
    );
    if !request.service_url.is_empty() {
        body.push_str(&format!("\n在线办理：{}\n", request.service_url));
    }
    body.push_str(&format!(
        "\n——\n您收到此通知，是因为{reason}。\n政策编号：{policy}\n",
        reason = request.reason,
        policy = request.policy_id,
    ));
    Message::builder()
        .from(from)
        .to(to)
        // Control characters are stripped so a subject can never inject a header.
        .subject(
            request
                .title
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>(),
        )
        .message_id(Some(format!(
            "<{}.{}.email@zhida>",
            request.policy_id, request.recipient_id
        )))
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| RenderError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> DeliveryRequested {
        DeliveryRequested {
            policy_id: "pol-1".into(),
            recipient_id: "c-0001".into(),
            address: "wang.fang@example.cn".into(),
            recipient_name: "王芳".into(),
            title: "就业见习补贴\r\nBcc: all@example.cn".into(),
            body: "补贴标准为……".into(),
            department: "区人力资源社会保障局".into(),
            reason: "您订阅了政策标签“employment”".into(),
            ..DeliveryRequested::default()
        }
    }

    #[test]
    fn a_crlf_in_the_title_cannot_add_a_header() {
        let message = email(&request(), "直达 <zhida@example.gov.cn>").expect("renders");
        let raw = String::from_utf8(message.formatted()).expect("utf8");
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        assert!(
            raw.contains("Message-ID: <pol-1.c-0001.email@zhida>"),
            "{raw}"
        );
        assert_eq!(message.envelope().to().len(), 1);
    }

    #[test]
    fn a_malformed_address_is_a_render_error() {
        let bad = DeliveryRequested {
            address: "not-an-address".into(),
            ..request()
        };
        assert!(matches!(
            email(&bad, "直达 <zhida@example.gov.cn>"),
            Err(RenderError::Address)
        ));
    }
}
