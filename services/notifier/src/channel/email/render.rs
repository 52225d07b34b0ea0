//! Turns a delivery request (or a day's requests) into the email a citizen reads: a
//! `multipart/alternative` message with a plain-text and a simple HTML part rendered from
//! the recipient's language's [templates](super::templates), the RFC 8058 one-click
//! unsubscribe headers with a signed token, and the template it was rendered from
//! (`X-Zhida-Template`). Pure: no I/O (signing is the channel's last step).

use std::sync::Arc;

use lettre::{
    Message,
    message::{
        Mailbox, MultiPart,
        header::{HeaderName, HeaderValue},
    },
};
use zhida_proto::events::v1::{Channel, DeliveryRequested, Notice};
use zhida_unsubscribe::{Keyring, Scope};

use super::templates::{EmailTemplates, LanguageTemplates, MessageTemplates};
use crate::templates::{Escape, Values};

/// Why a request cannot become an email; retrying cannot help.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("recipient address is not a valid mailbox")]
    Address,
    #[error("no unsubscribe link: {0}")]
    Unsubscribe(#[from] zhida_unsubscribe::ScopeError),
    #[error("message could not be built: {0}")]
    Build(String),
}

/// Characters of each policy's text a digest quotes.
const SUMMARY_CHARS: usize = 120;

/// Builds every email the notifier sends.
pub struct Renderer {
    /// The From: of every notice (`smtp.from`, checked at start).
    from: Mailbox,
    templates: EmailTemplates,
    /// Signs the one-click unsubscribe tokens.
    keyring: Arc<Keyring>,
}

/// What a template set calls someone whose name is not on record.
fn anonymous(language: &str) -> &'static str {
    match language {
        "en" => "Sir or Madam",
        _ => "您",
    }
}

/// A link that may be shown and followed: `http(s)` only, so a department's typo or a
/// `javascript:` URL never becomes a link.
fn safe_url(url: &str) -> &str {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { url } else { "" }
}

/// `title` with control characters removed, so a value can never start a new header.
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

impl Renderer {
    pub fn new(from: Mailbox, templates: EmailTemplates, keyring: Arc<Keyring>) -> Self {
        Self {
            from,
            templates,
            keyring,
        }
    }

    /// The recipient's mailbox, with the name when there is one.
    fn to(request: &DeliveryRequested) -> Result<Mailbox, RenderError> {
        Ok(Mailbox::new(
            Some(one_line(&request.recipient_name)).filter(|n| !n.is_empty()),
            request.address.parse().map_err(|_| RenderError::Address)?,
        ))
    }

    fn name(request: &DeliveryRequested, templates: &LanguageTemplates) -> String {
        if request.recipient_name.is_empty() {
            anonymous(templates.language).to_string()
        } else {
            request.recipient_name.clone()
        }
    }

    /// The email for `request`: the policy, or a notice about it (revision, withdrawal).
    /// The Message-ID is derived from the delivery's ledger key (policy or notice,
    /// recipient), so a receiving system can also recognise a duplicate; the unsubscribe
    /// link leaves the subscription that asked for it (or, for the audience alone, the
    /// email consent).
    pub fn notice(&self, request: &DeliveryRequested) -> Result<Message, RenderError> {
        let templates = self.templates.for_language(&request.language);
        let scope = Scope::new(
            &request.recipient_id,
            Channel::Email,
            [request.subscription_id.as_str()],
        );
        let unsubscribe = self.keyring.link(&scope)?;
        let notice = Notice::try_from(request.notice)
            .map_err(|_| RenderError::Build(format!("unknown notice {}", request.notice)))?;
        let (message, values) = match notice {
            Notice::PolicyUnspecified => (
                &templates.notice,
                Values::new()
                    .text("body", request.body.trim_end())
                    .text("reason", request.reason.clone()),
            ),
            Notice::Revision | Notice::Withdrawal => (
                if notice == Notice::Revision {
                    &templates.revision
                } else {
                    &templates.withdrawal
                },
                Values::new()
                    .text("change_summary", request.change_summary.trim())
                    .text("version", request.version.max(1).to_string()),
            ),
        };
        let values = values
            .text("name", Self::name(request, templates))
            .text("title", request.title.clone())
            .text("department", request.department.clone())
            .text("service_url", safe_url(&request.service_url))
            .text("policy_id", request.policy_id.clone())
            .text("unsubscribe_url", unsubscribe.clone());
        // `p-1`, `p-1#rev2`, `p-1#withdrawn` (`#` is atext, and never in a policy id).
        let id = crate::notice::delivery_key(request, notice, Channel::Email).policy_id;
        self.build(
            request,
            message,
            &values,
            format!("<{id}.{}.email@zhida>", request.recipient_id),
            unsubscribe,
        )
    }

    /// One email for every policy of a daily digest (all for the same recipient), with a
    /// Message-ID derived from the digest id; its unsubscribe link leaves every
    /// subscription the digest's policies came from.
    pub fn digest(
        &self,
        requests: &[DeliveryRequested],
        digest_id: &str,
    ) -> Result<Message, RenderError> {
        let Some(first) = requests.first() else {
            return Err(RenderError::Build("an empty digest".into()));
        };
        let templates = self.templates.for_language(&first.language);
        let scope = Scope::new(
            &first.recipient_id,
            Channel::Email,
            requests.iter().map(|r| r.subscription_id.as_str()),
        );
        let unsubscribe = self.keyring.link(&scope)?;
        let (mut text, mut html) = (String::new(), String::new());
        for (i, request) in requests.iter().enumerate() {
            let body = request.body.trim();
            let mut summary: String = body.chars().take(SUMMARY_CHARS).collect();
            if body.chars().count() > SUMMARY_CHARS {
                summary.push('…');
            }
            let item = Values::new()
                .text("n", (i + 1).to_string())
                .text("title", request.title.clone())
                .text("department", request.department.clone())
                .text("summary", summary)
                .text("service_url", safe_url(&request.service_url))
                .text("reason", request.reason.clone())
                .text("policy_id", request.policy_id.clone());
            text.push_str(&templates.digest_item.text.render(&item, Escape::None));
            html.push_str(&templates.digest_item.html.render(&item, Escape::Html));
        }
        let values = Values::new()
            .text("name", Self::name(first, templates))
            .text("count", requests.len().to_string())
            .text("unsubscribe_url", unsubscribe.clone());
        // Each part gets its own rendering of the items.
        let text_values = values.clone().text("items", text);
        let html_values = values.markup("items", html);
        self.build_parts(
            first,
            &templates.digest,
            &text_values,
            &html_values,
            format!("<{digest_id}.{}.email@zhida>", first.recipient_id),
            unsubscribe,
        )
    }

    fn build(
        &self,
        request: &DeliveryRequested,
        templates: &MessageTemplates,
        values: &Values,
        message_id: String,
        unsubscribe: String,
    ) -> Result<Message, RenderError> {
        self.build_parts(request, templates, values, values, message_id, unsubscribe)
    }

    fn build_parts(
        &self,
        request: &DeliveryRequested,
        templates: &MessageTemplates,
        text_values: &Values,
        html_values: &Values,
        message_id: String,
        unsubscribe: String,
    ) -> Result<Message, RenderError> {
        let subject = one_line(templates.subject.render(text_values, Escape::None).trim());
        let text = templates.text.render(text_values, Escape::None);
        let html = templates.html.render(html_values, Escape::Html);
        Message::builder()
            .from(self.from.clone())
            .to(Self::to(request)?)
            .subject(subject)
            .message_id(Some(message_id))
            // RFC 8058: a POST of `List-Unsubscribe=One-Click` to the https URI
            // unsubscribes without further confirmation.
            .raw_header(header("List-Unsubscribe", format!("<{unsubscribe}>")))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ))
            .raw_header(header("X-Zhida-Template", templates.id.clone()))
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| RenderError::Build(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use zhida_unsubscribe::{KeyConfig, UnsubscribeConfig};

    use super::*;

    pub(crate) fn keyring() -> Arc<Keyring> {
        Arc::new(
            UnsubscribeConfig {
                base_url: "https://zhida.example.gov.cn/u/".into(),
                keys: vec![KeyConfig {
                    id: "k1".into(),
                    secret: SecretString::from("0123456789abcdef0123456789abcdef"),
                }],
            }
            .keyring()
            .expect("keyring"),
        )
    }

    fn renderer() -> Renderer {
        Renderer::new(
            "直达 <zhida@example.gov.cn>".parse().expect("from"),
            EmailTemplates::embedded().expect("templates"),
            keyring(),
        )
    }

    fn request() -> DeliveryRequested {
        DeliveryRequested {
            policy_id: "pol-1".into(),
            recipient_id: "c-0001".into(),
            address: "wang.fang@example.cn".into(),
            recipient_name: "王芳".into(),
            title: "就业见习补贴\r\nBcc: all@example.cn".into(),
            body: "补贴标准为<b>每月</b>2,690元 & 更多".into(),
            department: "区人力资源社会保障局".into(),
            reason: "您订阅了政策标签“employment”".into(),
            subscription_id: "sub-1".into(),
            service_url: "javascript:alert(1)".into(),
            ..DeliveryRequested::default()
        }
    }

    fn raw(message: &Message) -> String {
        String::from_utf8(message.formatted()).expect("utf8")
    }

    fn header_value<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
        raw.split("\r\n\r\n")
            .next()?
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
    }

    #[test]
    fn a_crlf_in_the_title_cannot_add_a_header() {
        let message = renderer().notice(&request()).expect("renders");
        let raw = raw(&message);
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
        assert!(matches!(renderer().notice(&bad), Err(RenderError::Address)));
    }

    #[test]
    fn a_notice_is_multipart_alternative_with_one_click_unsubscribe_for_its_subscription() {
        let message = renderer().notice(&request()).expect("renders");
        let raw = raw(&message);
        assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
        assert!(
            raw.contains("Content-Type: text/html; charset=utf-8"),
            "{raw}"
        );
        assert_eq!(
            header_value(&raw, "List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click")
        );
        assert_eq!(
            header_value(&raw, "X-Zhida-Template"),
            Some("policy-published.v1.zh")
        );
        let link = header_value(&raw, "List-Unsubscribe").expect("List-Unsubscribe");
        let token = link
            .strip_prefix("<https://zhida.example.gov.cn/u/")
            .and_then(|t| t.strip_suffix('>'))
            .expect("<https://…/u/TOKEN>");
        assert_eq!(
            keyring().verify(token),
            Ok(Scope::new("c-0001", Channel::Email, ["sub-1"]))
        );
        // Reached by the audience alone: the token is for the email consent.
        let audience = DeliveryRequested {
            subscription_id: String::new(),
            ..request()
        };
        let raw = self::raw(&renderer().notice(&audience).expect("renders"));
        let link = header_value(&raw, "List-Unsubscribe").expect("header");
        let token = &link["<https://zhida.example.gov.cn/u/".len()..link.len() - 1];
        assert_eq!(
            keyring().verify(token).expect("valid").subscriptions,
            Vec::<String>::new()
        );
    }

    /// The text/plain and text/html parts as the recipient's client decodes them.
    pub(crate) fn parts(message: &Message) -> (String, String) {
        let raw = message.formatted();
        let mail = mailparse::parse_mail(&raw).expect("parses");
        assert_eq!(mail.ctype.mimetype, "multipart/alternative");
        let body = |mimetype: &str| {
            mail.subparts
                .iter()
                .find(|p| p.ctype.mimetype == mimetype)
                .map(|p| p.get_body().expect("decodes"))
                .unwrap_or_default()
        };
        (body("text/plain"), body("text/html"))
    }

    #[test]
    fn the_html_part_escapes_every_value_and_never_links_an_unsafe_url() {
        let (plain, html) = parts(&renderer().notice(&request()).expect("renders"));
        assert!(plain.starts_with("王芳，您好："), "{plain}");
        assert!(
            plain.contains("补贴标准为<b>每月</b>2,690元 & 更多"),
            "{plain}"
        );
        assert!(
            !plain.contains("在线办理"),
            "no safe link, no line: {plain}"
        );
        assert!(
            html.contains("补贴标准为&lt;b&gt;每月&lt;/b&gt;2,690元 &amp; 更多"),
            "{html}"
        );
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("<img"), "no remote images: {html}");
        assert!(
            html.contains("href=\"https://zhida.example.gov.cn/u/k1."),
            "{html}"
        );
    }

    #[test]
    fn a_forwards_note_stays_in_the_body_escaped_however_it_is_written() {
        let forwarded = DeliveryRequested {
            reason: "经 杨浦区软件行业协会 转发：请注意<script>alert(1)</script>\r\nBcc: all@example.cn\n\n第二段"
                .into(),
            ..request()
        };
        let message = renderer().notice(&forwarded).expect("renders");
        let raw = raw(&message);
        let headers = &raw[..raw.find("\r\n\r\n").expect("a header block")];
        assert!(!headers.contains("Bcc"), "{headers}");
        assert!(
            !headers.contains("杨浦区软件行业协会"),
            "the note is not a header"
        );
        let (plain, html) = parts(&message);
        assert!(
            plain.contains("经 杨浦区软件行业协会 转发：请注意"),
            "{plain}"
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn the_profile_language_picks_the_templates_and_unknown_ones_fall_back_to_zh() {
        let en = DeliveryRequested {
            language: "en".into(),
            recipient_name: String::new(),
            service_url: "https://zwdt.sh.gov.cn/".into(),
            ..request()
        };
        let message = renderer().notice(&en).expect("renders");
        let raw = raw(&message);
        assert_eq!(
            header_value(&raw, "X-Zhida-Template"),
            Some("policy-published.v1.en")
        );
        let (plain, _) = parts(&message);
        assert!(plain.starts_with("Dear Sir or Madam,"), "{plain}");
        assert!(
            plain.contains("Apply online: https://zwdt.sh.gov.cn/"),
            "{plain}"
        );
        let klingon = DeliveryRequested {
            language: "tlh".into(),
            ..request()
        };
        let raw = self::raw(&renderer().notice(&klingon).expect("renders"));
        assert_eq!(
            header_value(&raw, "X-Zhida-Template"),
            Some("policy-published.v1.zh")
        );
    }

    #[test]
    fn revision_and_withdrawal_notices_say_so_in_their_subject_once_per_notice() {
        let revision = DeliveryRequested {
            notice: Notice::Revision as i32,
            version: 2,
            change_summary: "补贴标准提高到每月3,000元 <b>".into(),
            service_url: "https://zwdt.sh.gov.cn/".into(),
            ..request()
        };
        let message = renderer().notice(&revision).expect("renders");
        let raw = raw(&message);
        assert_eq!(
            header_value(&raw, "X-Zhida-Template"),
            Some("policy-revised.v1.zh")
        );
        assert!(
            raw.contains("Message-ID: <pol-1#rev2.c-0001.email@zhida>"),
            "{raw}"
        );
        assert!(
            !raw.contains("\r\nBcc:"),
            "the title's CRLF stays out: {raw}"
        );
        let formatted = message.formatted();
        let parsed = mailparse::parse_mail(&formatted).expect("parses");
        let subject = parsed.headers.iter().find(|h| h.get_key() == "Subject");
        let subject = subject.expect("Subject").get_value();
        assert!(subject.starts_with("政策已更新：就业见习补贴"), "{subject}");
        let (plain, html) = parts(&message);
        assert!(
            plain.contains("更新内容：补贴标准提高到每月3,000元 <b>"),
            "{plain}"
        );
        assert!(plain.contains("（第2版）"), "{plain}");
        assert!(
            plain.contains("在线办理：https://zwdt.sh.gov.cn/"),
            "{plain}"
        );
        assert!(html.contains("每月3,000元 &lt;b&gt;"), "{html}");

        let withdrawal = DeliveryRequested {
            notice: Notice::Withdrawal as i32,
            change_summary: "上位政策已废止".into(),
            language: "en".into(),
            ..request()
        };
        let message = renderer().notice(&withdrawal).expect("renders");
        let raw = self::raw(&message);
        assert!(
            raw.contains("Message-ID: <pol-1#withdrawn.c-0001.email@zhida>"),
            "{raw}"
        );
        let formatted = message.formatted();
        let parsed = mailparse::parse_mail(&formatted).expect("parses");
        let subject = parsed.headers.iter().find(|h| h.get_key() == "Subject");
        assert!(
            subject
                .expect("Subject")
                .get_value()
                .starts_with("Policy withdrawn: 就业见习补贴"),
            "{raw}"
        );
        let (plain, _) = parts(&message);
        assert!(plain.contains("Reason: 上位政策已废止"), "{plain}");
        let unknown = DeliveryRequested {
            notice: 7,
            ..request()
        };
        assert!(matches!(
            renderer().notice(&unknown),
            Err(RenderError::Build(_))
        ));
    }

    #[test]
    fn a_digest_lists_every_policy_and_unsubscribes_from_all_its_subscriptions() {
        let second = DeliveryRequested {
            policy_id: "pol-2".into(),
            title: "保障性租赁住房".into(),
            subscription_id: "sub-2".into(),
            body: "长".repeat(200),
            ..request()
        };
        let message = renderer()
            .digest(&[request(), second], "dg-1")
            .expect("renders");
        let raw = raw(&message);
        assert!(
            raw.contains("Message-ID: <dg-1.c-0001.email@zhida>"),
            "{raw}"
        );
        assert_eq!(header_value(&raw, "X-Zhida-Template"), Some("digest.v1.zh"));
        let link = header_value(&raw, "List-Unsubscribe").expect("header");
        let token = &link["<https://zhida.example.gov.cn/u/".len()..link.len() - 1];
        assert_eq!(
            keyring().verify(token).expect("valid").subscriptions,
            ["sub-1", "sub-2"]
        );
        let (plain, html) = parts(&message);
        assert!(plain.contains("您订阅的政策日报共 2 条"), "{plain}");
        assert!(plain.contains("1. 《就业见习补贴"), "{plain}");
        assert!(plain.contains("2. 《保障性租赁住房》"), "{plain}");
        assert!(plain.contains(&format!("{}…", "长".repeat(120))), "{plain}");
        assert_eq!(html.matches("<li>").count(), 2, "{html}");
        assert!(html.contains("&lt;b&gt;"), "{html}");
    }
}
