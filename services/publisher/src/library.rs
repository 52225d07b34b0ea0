//! The library's pure parts: policy ids, the review gate over a policy's text, list
//! filters and page tokens.

use zhida_proto::events::v1::{
    Faq, FindingKind, Policy, PolicyContent, PolicyStatus, ReviewFinding,
};
use zhida_runtime::FieldViolations;
use zhida_screen::{Finding, Kind, Screen};

/// Namespace of policy ids derived from (department, request id).
const POLICY_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x7a68_6964_615f_706f_6c69_6379_5f69_6473);

/// `pol-<uuid v5>` of the department and its request id: a retried CreateDraft names the
/// same policy, and two departments' request ids never collide.
pub fn policy_id(department: &str, request_id: &str) -> String {
    let name = format!("{department}\u{1f}{request_id}");
    format!(
        "pol-{}",
        uuid::Uuid::new_v5(&POLICY_NAMESPACE, name.as_bytes())
    )
}

/// The review gate (先审查后公开) over everything a version publishes: title, summary,
/// body, the interpretation, attachments' names and text, in that order.
pub fn screen(screen: &Screen, content: &PolicyContent) -> Vec<ReviewFinding> {
    let mut found = Vec::new();
    let mut scan = |field: String, text: &str| {
        found.extend(screen.scan(&field, text).into_iter().map(finding));
    };
    scan("title".into(), &content.title);
    scan("summary".into(), &content.summary);
    scan("body".into(), &content.body);
    if let Some(i) = &content.interpretation {
        scan("interpretation.title".into(), &i.title);
        scan("interpretation.text".into(), &i.text);
    }
    for (n, a) in content.attachments.iter().enumerate() {
        scan(format!("attachments[{n}].name"), &a.name);
        scan(format!("attachments[{n}].text"), &a.text);
    }
    found
}

/// The same gate over FAQs (`faqs[i].question` / `.answer`).
pub fn screen_faqs(screen: &Screen, faqs: &[Faq]) -> Vec<ReviewFinding> {
    let mut found = Vec::new();
    for (n, faq) in faqs.iter().enumerate() {
        for (part, text) in [("question", &faq.question), ("answer", &faq.answer)] {
            found.extend(
                screen
                    .scan(&format!("faqs[{n}].{part}"), text)
                    .into_iter()
                    .map(finding),
            );
        }
    }
    found
}

fn finding(f: Finding) -> ReviewFinding {
    ReviewFinding {
        finding_id: f.id(),
        kind: match f.kind {
            Kind::ResidentId => FindingKind::ResidentId,
            Kind::Mobile => FindingKind::Mobile,
            Kind::BankCard => FindingKind::BankCard,
            Kind::Email => FindingKind::Email,
            Kind::CreditCode => FindingKind::CreditCode,
            Kind::ForbiddenWord => FindingKind::ForbiddenWord,
        } as i32,
        field: f.field,
        start: u32::try_from(f.start).unwrap_or(u32::MAX),
        end: u32::try_from(f.end).unwrap_or(u32::MAX),
        excerpt: f.excerpt,
        acknowledged_by: String::new(),
    }
}

/// `ListPolicies` filters, checked.
#[derive(Debug, Default)]
pub struct Filter {
    department: String,
    tag: String,
    status: Option<PolicyStatus>,
    /// Seconds: the district day's first and last second.
    valid_on: Option<(i64, i64)>,
}

impl Filter {
    pub fn parse(
        bad: &mut FieldViolations,
        request: &zhida_proto::policy::v1::ListPoliciesRequest,
    ) -> Self {
        let status = match PolicyStatus::try_from(request.status) {
            Ok(PolicyStatus::Unspecified) => None,
            Ok(status) => Some(status),
            Err(_) => {
                bad.add(
                    "status",
                    format!("{} is not a PolicyStatus", request.status),
                );
                None
            }
        };
        let valid_on =
            parse_date(bad, "valid_on", &request.valid_on).map(|start| (start, start + 86_399));
        Self {
            department: request.department.trim().to_string(),
            tag: request.tag.trim().to_string(),
            status,
            valid_on,
        }
    }

    /// Whether `policy` (as the caller sees it) passes.
    pub fn keeps(&self, policy: &Policy) -> bool {
        let content = policy.content.as_ref();
        (self.department.is_empty() || policy.department == self.department)
            && (self.tag.is_empty() || content.is_some_and(|c| c.tags.contains(&self.tag)))
            && self.status.is_none_or(|s| policy.status == s as i32)
            && self.valid_on.is_none_or(|(first, last)| {
                content.is_some_and(|c| {
                    c.valid_from.is_none_or(|f| f.seconds <= last)
                        && c.valid_until.is_none_or(|u| u.seconds >= first)
                })
            })
    }
}

/// A district date `YYYY-MM-DD` as the Unix second its day starts; empty: none.
pub fn parse_date(bad: &mut FieldViolations, field: &str, text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => Some(
            date.and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc()
                .timestamp()
                - i64::from(zhida_runtime::district::UTC_OFFSET_SECONDS),
        ),
        Err(_) => {
            bad.add(field, "a date YYYY-MM-DD");
            None
        }
    }
}

/// The opaque token of a position in the newest-first order.
pub fn page_token(position: &(i64, String)) -> String {
    format!("{}.{}", position.0, position.1)
}

/// The position a page token names; a token this service did not write is refused.
pub fn parse_page_token(bad: &mut FieldViolations, token: &str) -> Option<(i64, String)> {
    if token.is_empty() {
        return None;
    }
    let parsed = token
        .split_once('.')
        .and_then(|(created, id)| Some((created.parse().ok()?, id.to_string())))
        .filter(|(_, id): &(i64, String)| id.starts_with("pol-"));
    if parsed.is_none() {
        bad.add("page_token", "not a page token from ListPolicies");
    }
    parsed
}

#[cfg(test)]
mod tests {
    use zhida_proto::{Timestamp, events::v1::Interpretation};

    use super::*;

    #[test]
    fn policy_ids_are_stable_per_department_and_request() {
        assert_eq!(policy_id("区科委", "r-1"), policy_id("区科委", "r-1"));
        assert_ne!(policy_id("区科委", "r-1"), policy_id("区人社局", "r-1"));
    }

    #[test]
    fn the_gate_reads_every_published_text() {
        let gate = Screen::new(&["绝密".to_string()]).expect("words");
        let content = PolicyContent {
            title: "通知".into(),
            body: "联系人：张三，电话13812345678。".into(),
            interpretation: Some(Interpretation {
                text: "本文件绝密".into(),
                ..Interpretation::default()
            }),
            attachments: vec![zhida_proto::events::v1::Attachment {
                text: "邮箱 zhang.san@example.com".into(),
                ..Default::default()
            }],
            ..PolicyContent::default()
        };
        let found = screen(&gate, &content);
        let fields: Vec<(&str, i32)> = found.iter().map(|f| (f.field.as_str(), f.kind)).collect();
        assert_eq!(
            fields,
            [
                ("body", FindingKind::Mobile as i32),
                ("interpretation.text", FindingKind::ForbiddenWord as i32),
                ("attachments[0].text", FindingKind::Email as i32),
            ]
        );
        assert!(
            !found[0].excerpt.contains("13812345678"),
            "masked: {}",
            found[0].excerpt
        );
    }

    #[test]
    fn filters_combine() {
        let mut bad = FieldViolations::new();
        let filter = Filter::parse(
            &mut bad,
            &zhida_proto::policy::v1::ListPoliciesRequest {
                tag: "employment".into(),
                valid_on: "2023-06-01".into(),
                status: PolicyStatus::Published as i32,
                ..Default::default()
            },
        );
        assert!(bad.is_empty());
        let policy = |tags: &[&str], until: i64| Policy {
            status: PolicyStatus::Published as i32,
            content: Some(PolicyContent {
                tags: tags.iter().map(|t| t.to_string()).collect(),
                valid_until: Some(Timestamp {
                    seconds: until,
                    nanos: 0,
                }),
                ..PolicyContent::default()
            }),
            ..Policy::default()
        };
        assert!(filter.keeps(&policy(&["employment"], 1_800_000_000)));
        assert!(!filter.keeps(&policy(&["housing"], 1_800_000_000)));
        assert!(
            !filter.keeps(&policy(&["employment"], 1_600_000_000)),
            "expired before"
        );
        let mut bad = FieldViolations::new();
        assert_eq!(parse_page_token(&mut bad, "garbage"), None);
        assert_eq!(parse_date(&mut bad, "valid_on", "2023-13-01"), None);
        assert_eq!(bad.violations().len(), 2);
        let position = (42, "pol-x".to_string());
        let mut bad = FieldViolations::new();
        assert_eq!(
            parse_page_token(&mut bad, &page_token(&position)),
            Some(position)
        );
    }
}
