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

/// The recipient's mailbox (with the name, when there is one) and the sender's.
fn mailboxes(request: &DeliveryRequested, from: &str) -> Result<(Mailbox, Mailbox), RenderError> {
    let to = Mailbox::new(
        Some(request.recipient_name.clone()).filter(|n| !n.is_empty()),
        request.address.parse().map_err(|_| RenderError::Address)?,
    );
    Ok((to, from.parse().map_err(|_| RenderError::From)?))
}

/// The plain-text email for `request`. The Message-ID is derived from (policy, recipient), so
/// a receiving system can also recognise a duplicate.
pub fn email(request: &DeliveryRequested, from: &str) -> Result<Message, RenderError> {
    let (to, from) = mailboxes(request, from)?;
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

/// One plain-text email for every policy of a daily digest (all for the same recipient),
/// with a Message-ID derived from the digest id.
pub fn digest(
    requests: &[DeliveryRequested],
    digest_id: &str,
    from: &str,
) -> Result<Message, RenderError> {
    let Some(first) = requests.first() else {
        return Err(RenderError::Build("an empty digest".into()));
    };
    let (to, from) = mailboxes(first, from)?;
    let mut body = format!(
        "{name}，您好：\n\n您订阅的政策日报共 {count} 条：\n",
        name = if first.recipient_name.is_empty() {
            "您"
        } else {
            &first.recipient_name
        },
        count = requests.len(),
    );
    for (i, request) in requests.iter().enumerate() {
        let summary: String = request.body.trim().chars().take(SUMMARY_CHARS).collect();
        let more = if request.body.trim().chars().count() > SUMMARY_CHARS {
            "……"
        } else {
            ""
        };
        body.push_str(&format!(
            "\n{n}. 《{title}》（{department}）\n{summary}{more}\n",
            n = i + 1,
            title = request.title,
            department = request.department,
        ));
        if !request.service_url.is_empty() {
            body.push_str(&format!("在线办理：{}\n", request.service_url));
        }
        body.push_str(&format!(
            "您收到这条政策，是因为{reason}。政策编号：{policy}\n",
            reason = request.reason,
            policy = request.policy_id,
        ));
    }
    body.push_str("\n——\n这是您选择的每日汇总；如需即时通知，可将订阅改为“即时”。\n");
    Message::builder()
        .from(from)
        .to(to)
        .subject(format!("政策订阅日报：{} 条新政策", requests.len()))
        .message_id(Some(format!(
            "<{digest_id}.{}.email@zhida>",
            first.recipient_id
        )))
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| RenderError::Build(e.to_string()))
}

/// Characters of each policy's text a digest quotes.
const SUMMARY_CHARS: usize = 120;

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
