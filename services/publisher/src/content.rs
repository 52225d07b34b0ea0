//! What a department writes, checked field by field: [`check_content`] and [`check_faqs`]
//! report every bad field at once, with its path, and normalise what they accept (trimmed
//! title, sorted and deduplicated tags). Pure.

use zhida_catalogue::{Industries, Tags};
use zhida_proto::{
    Timestamp,
    events::v1::{Attachment, Faq, Interpretation, PolicyContent},
};
use zhida_runtime::FieldViolations;

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_SUMMARY_CHARS: usize = 1_000;
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_TAGS: usize = 20;
pub const MAX_DOCUMENT_NUMBER_CHARS: usize = 50;
pub const MAX_URL_BYTES: usize = 2048;
pub const MAX_ATTACHMENTS: usize = 20;
pub const MAX_ATTACHMENT_NAME_CHARS: usize = 200;
pub const MAX_ATTACHMENT_BYTES: u64 = 1 << 30;
pub const MAX_FAQS: usize = 50;
pub const MAX_QUESTION_CHARS: usize = 500;
pub const MAX_ANSWER_CHARS: usize = 5_000;
pub const MAX_REASON_CHARS: usize = 500;

/// Checks `content` (at `at`, e.g. `content`) against the catalogue's active `tags` and the
/// `industries` audience rules may name; the accepted content is normalised in place.
/// `interpretation_id` is what the policy's interpretation is called (assigned, never the
/// client's).
pub fn check_content(
    bad: &mut FieldViolations,
    at: &str,
    content: &mut PolicyContent,
    tags: &Tags,
    industries: &Industries,
    policy_id: &str,
) {
    let field = |name: &str| format!("{at}.{name}");
    content.title = content.title.trim().to_string();
    if content.title.is_empty() {
        bad.add(field("title"), "required");
    } else if content.title.chars().count() > MAX_TITLE_CHARS {
        bad.add(
            field("title"),
            format!("at most {MAX_TITLE_CHARS} characters"),
        );
    } else if content.title.chars().any(char::is_control) {
        bad.add(
            field("title"),
            "must not contain control characters (CR, LF, tab, …): it becomes an email subject",
        );
    }
    content.summary = content.summary.trim().to_string();
    if content.summary.chars().count() > MAX_SUMMARY_CHARS {
        bad.add(
            field("summary"),
            format!("at most {MAX_SUMMARY_CHARS} characters"),
        );
    } else if has_control_but_newline(&content.summary) {
        bad.add(
            field("summary"),
            "must not contain control characters other than line breaks",
        );
    }
    check_text(bad, &field("body"), &content.body, true);
    if content.tags.is_empty() || content.tags.len() > MAX_TAGS {
        bad.add(field("tags"), format!("1–{MAX_TAGS} tags required"));
    }
    for (i, tag) in content.tags.iter().enumerate() {
        if !tags.contains(tag) {
            bad.add(
                format!("{at}.tags[{i}]"),
                format!("{tag:?} is not in the tag catalogue (ListTags): {tags}"),
            );
        } else if !tags.is_active(tag) {
            bad.add(
                format!("{at}.tags[{i}]"),
                format!("{tag:?} is retired: no new policies may use it"),
            );
        }
    }
    content.tags.sort();
    content.tags.dedup();
    content.document_number = content.document_number.trim().to_string();
    if !content.document_number.is_empty() && !is_document_number(&content.document_number) {
        bad.add(
            field("document_number"),
            format!(
                "a 文号 like 杨府发〔2023〕5号: issuer, year in 〔〕, number, 号 \
                 (at most {MAX_DOCUMENT_NUMBER_CHARS} characters)"
            ),
        );
    }
    for (name, at) in [
        ("valid_from", &content.valid_from),
        ("valid_until", &content.valid_until),
    ] {
        if let Some(t) = at
            && !is_valid_timestamp(t)
        {
            bad.add(field(name), "not a valid timestamp");
        }
    }
    if let (Some(from), Some(until)) = (&content.valid_from, &content.valid_until)
        && (until.seconds, until.nanos) <= (from.seconds, from.nanos)
    {
        bad.add(field("valid_until"), "must be after valid_from");
    }
    content.service_url = content.service_url.trim().to_string();
    if !content.service_url.is_empty() && !is_https_url(&content.service_url) {
        bad.add(
            field("service_url"),
            format!("must be an https:// URL of at most {MAX_URL_BYTES} bytes without spaces"),
        );
    }
    if content.attachments.len() > MAX_ATTACHMENTS {
        bad.add(
            field("attachments"),
            format!("at most {MAX_ATTACHMENTS} attachments"),
        );
    }
    for (i, attachment) in content.attachments.iter_mut().enumerate() {
        check_attachment(bad, &format!("{at}.attachments[{i}]"), attachment);
    }
    if let Some(interpretation) = &mut content.interpretation {
        check_interpretation(bad, &field("interpretation"), interpretation, policy_id);
    }
    if !content.audience.trim().is_empty() {
        if let Err(e) = zhida_audience::Rule::parse(&content.audience, industries) {
            bad.add(field("audience"), e.to_string());
        }
    } else {
        content.audience.clear();
    }
}

/// Checks the FAQs (问答) at `at`; trims them in place.
pub fn check_faqs(bad: &mut FieldViolations, at: &str, faqs: &mut [Faq]) {
    if faqs.len() > MAX_FAQS {
        bad.add(at, format!("at most {MAX_FAQS} questions"));
    }
    for (i, faq) in faqs.iter_mut().enumerate() {
        faq.question = faq.question.trim().to_string();
        faq.answer = faq.answer.trim().to_string();
        for (name, text, max) in [
            ("question", &faq.question, MAX_QUESTION_CHARS),
            ("answer", &faq.answer, MAX_ANSWER_CHARS),
        ] {
            let field = format!("{at}[{i}].{name}");
            if text.is_empty() {
                bad.add(field, "required");
            } else if text.chars().count() > max {
                bad.add(field, format!("at most {max} characters"));
            } else if has_control_but_newline(text) {
                bad.add(
                    field,
                    "must not contain control characters other than line breaks",
                );
            }
        }
    }
}

/// A required one-line reason or summary (a withdrawal's reason, a revision's "what
/// changed"): it is told to recipients.
pub fn check_reason(bad: &mut FieldViolations, field: &str, text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        bad.add(
            field,
            "required: it is told to everyone who received the policy",
        );
    } else if text.chars().count() > MAX_REASON_CHARS {
        bad.add(field, format!("at most {MAX_REASON_CHARS} characters"));
    } else if text.chars().any(char::is_control) {
        bad.add(field, "one line, without control characters");
    }
    text.to_string()
}

/// The id of `policy_id`'s interpretation (解读).
pub fn interpretation_id(policy_id: &str) -> String {
    format!("{policy_id}.jd")
}

fn check_interpretation(
    bad: &mut FieldViolations,
    at: &str,
    interpretation: &mut Interpretation,
    policy_id: &str,
) {
    let id = interpretation_id(policy_id);
    if !interpretation.interpretation_id.is_empty() && interpretation.interpretation_id != id {
        bad.add(
            format!("{at}.interpretation_id"),
            format!("assigned by the publisher: leave empty or {id:?}"),
        );
    }
    if !interpretation.policy_id.is_empty() && interpretation.policy_id != policy_id {
        bad.add(
            format!("{at}.policy_id"),
            "an interpretation explains the policy it is part of: leave empty",
        );
    }
    interpretation.interpretation_id = id;
    interpretation.policy_id = policy_id.to_string();
    interpretation.title = interpretation.title.trim().to_string();
    if interpretation.title.chars().count() > MAX_TITLE_CHARS
        || interpretation.title.chars().any(char::is_control)
    {
        bad.add(
            format!("{at}.title"),
            format!("at most {MAX_TITLE_CHARS} characters, no control characters"),
        );
    }
    check_text(bad, &format!("{at}.text"), &interpretation.text, true);
}

fn check_attachment(bad: &mut FieldViolations, at: &str, attachment: &mut Attachment) {
    attachment.name = attachment.name.trim().to_string();
    if attachment.name.is_empty()
        || attachment.name.chars().count() > MAX_ATTACHMENT_NAME_CHARS
        || attachment
            .name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        bad.add(
            format!("{at}.name"),
            format!(
                "required: a file name of 1–{MAX_ATTACHMENT_NAME_CHARS} characters without \
                 slashes or control characters"
            ),
        );
    }
    let media_type = attachment.media_type.trim().to_ascii_lowercase();
    let well_formed = media_type.split_once('/').is_some_and(|(kind, sub)| {
        let token = |s: &str| {
            !s.is_empty()
                && s.len() <= 127
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        token(kind) && token(sub)
    });
    if !well_formed {
        bad.add(
            format!("{at}.media_type"),
            "required: a media type such as application/pdf",
        );
    }
    attachment.media_type = media_type;
    if attachment.size == 0 || attachment.size > MAX_ATTACHMENT_BYTES {
        bad.add(
            format!("{at}.size"),
            format!("the file's size in bytes: 1–{MAX_ATTACHMENT_BYTES}"),
        );
    }
    attachment.sha256 = attachment.sha256.trim().to_ascii_lowercase();
    if attachment.sha256.len() != 64 || !attachment.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        bad.add(
            format!("{at}.sha256"),
            "the file's SHA-256: 64 hexadecimal digits",
        );
    }
    attachment.url = attachment.url.trim().to_string();
    if !attachment.url.is_empty() && !is_https_url(&attachment.url) {
        bad.add(
            format!("{at}.url"),
            "must be an https:// URL without spaces",
        );
    }
    check_text(bad, &format!("{at}.text"), &attachment.text, false);
}

fn check_text(bad: &mut FieldViolations, field: &str, text: &str, required: bool) {
    if required && text.trim().is_empty() {
        bad.add(field, "required");
    } else if text.len() > MAX_BODY_BYTES {
        bad.add(
            field,
            format!("at most {MAX_BODY_BYTES} bytes, got {}", text.len()),
        );
    } else if text.contains('\0') {
        bad.add(field, "must not contain NUL characters");
    }
}

fn has_control_but_newline(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r')
}

fn is_https_url(url: &str) -> bool {
    url.len() <= MAX_URL_BYTES
        && url
            .strip_prefix("https://")
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_valid_timestamp(t: &Timestamp) -> bool {
    (0..1_000_000_000).contains(&t.nanos)
        && chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32).is_some()
}

/// 文号: issuer abbreviation, the year in 〔〕 (or [] / 【】 as often typed), a number, 号.
/// E.g. 杨府发〔2023〕5号, 杨人社规〔2023〕2号.
fn is_document_number(text: &str) -> bool {
    if text.chars().count() > MAX_DOCUMENT_NUMBER_CHARS || text.chars().any(char::is_whitespace) {
        return false;
    }
    let Some(open) = text.find(['〔', '[', '【']) else {
        return false;
    };
    let issuer = &text[..open];
    let rest = &text[open..];
    let rest = rest
        .strip_prefix('〔')
        .or_else(|| rest.strip_prefix('['))
        .or_else(|| rest.strip_prefix('【'))
        .unwrap_or(rest);
    let Some(close) = rest.find(['〕', ']', '】']) else {
        return false;
    };
    let year = &rest[..close];
    let after = &rest[close..];
    let number = after
        .trim_start_matches(['〕', ']', '】'])
        .strip_suffix('号')
        .unwrap_or("");
    !issuer.is_empty()
        && year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && !number.is_empty()
        && number.len() <= 6
        && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use zhida_catalogue::Catalogue;

    use super::*;

    pub(crate) fn content() -> PolicyContent {
        PolicyContent {
            title: " 杨浦区高校毕业生就业见习补贴实施办法 ".into(),
            summary: "见习单位按月领取见习补贴。".into(),
            body: "第一条 为促进高校毕业生就业……".into(),
            tags: vec!["employment".into(), "graduates".into(), "employment".into()],
            document_number: "杨人社规〔2023〕2号".into(),
            valid_from: Some(Timestamp {
                seconds: 1_672_531_200,
                nanos: 0,
            }),
            valid_until: Some(Timestamp {
                seconds: 1_767_225_600,
                nanos: 0,
            }),
            service_url: "https://zwdt.sh.gov.cn/".into(),
            attachments: vec![Attachment {
                name: "申请表.pdf".into(),
                media_type: "Application/PDF".into(),
                size: 52_431,
                sha256: "AB".repeat(32),
                url: String::new(),
                text: "申请人签名".into(),
            }],
            interpretation: Some(Interpretation {
                title: "一图读懂见习补贴".into(),
                text: "谁可以申请？".into(),
                ..Interpretation::default()
            }),
            audience: r#"{"citizen": {"groups": ["高校毕业生"]}}"#.into(),
            urgent: false,
        }
    }

    fn check(mut c: PolicyContent) -> Result<PolicyContent, Vec<String>> {
        let catalogue = Catalogue::yangpu();
        let mut bad = FieldViolations::new();
        check_content(
            &mut bad,
            "content",
            &mut c,
            &catalogue.tags,
            &catalogue.industries,
            "pol-1",
        );
        if bad.is_empty() {
            Ok(c)
        } else {
            Err(bad.violations().iter().map(|(f, _)| f.clone()).collect())
        }
    }

    #[test]
    fn valid_content_is_normalised() {
        let c = check(content()).expect("valid");
        assert_eq!(c.title, "杨浦区高校毕业生就业见习补贴实施办法");
        assert_eq!(c.tags, ["employment", "graduates"]);
        assert_eq!(c.attachments[0].media_type, "application/pdf");
        assert_eq!(c.attachments[0].sha256, "ab".repeat(32));
        let interpretation = c.interpretation.expect("kept");
        assert_eq!(interpretation.interpretation_id, "pol-1.jd");
        assert_eq!(interpretation.policy_id, "pol-1", "linked back");
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut c = content();
        c.title = "Subject\r\nBcc: everyone@example.com".into();
        c.body = String::new();
        c.tags = vec!["blockchain".into()];
        c.document_number = "第5号".into();
        c.valid_until = Some(Timestamp {
            seconds: 1,
            nanos: 0,
        });
        c.service_url = "http://zwdt.sh.gov.cn/".into();
        c.attachments[0].sha256 = "xyz".into();
        c.attachments[0].name = "../etc/passwd".into();
        c.interpretation.as_mut().expect("set").policy_id = "pol-other".into();
        c.audience = r#"{"enterprise": {"industry": [{"industry": "C99"}]}}"#.into();
        assert_eq!(
            check(c).expect_err("invalid"),
            [
                "content.title",
                "content.body",
                "content.tags[0]",
                "content.document_number",
                "content.valid_until",
                "content.service_url",
                "content.attachments[0].name",
                "content.attachments[0].sha256",
                "content.interpretation.policy_id",
                "content.audience",
            ]
        );
    }

    #[test]
    fn document_numbers_take_the_usual_brackets() {
        for ok in [
            "杨府发〔2023〕5号",
            "杨人社规[2023]12号",
            "杨府办【2024】101号",
        ] {
            assert!(is_document_number(ok), "{ok}");
        }
        for bad in [
            "〔2023〕5号",
            "杨府发〔23〕5号",
            "杨府发〔2023〕号",
            "杨府发2023 5号",
        ] {
            assert!(!is_document_number(bad), "{bad}");
        }
    }

    #[test]
    fn faqs_need_both_halves() {
        let mut faqs = vec![
            Faq {
                question: " 谁可以申请？ ".into(),
                answer: "毕业两年内的高校毕业生。".into(),
            },
            Faq {
                question: "怎么申请？".into(),
                answer: " ".into(),
            },
        ];
        let mut bad = FieldViolations::new();
        check_faqs(&mut bad, "faqs", &mut faqs);
        let fields: Vec<&str> = bad.violations().iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["faqs[1].answer"]);
        assert_eq!(faqs[0].question, "谁可以申请？");
    }
}
