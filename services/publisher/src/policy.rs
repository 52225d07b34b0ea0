//! A policy as the publisher accepts it: [`NewPolicy::parse`] is the only way to build one,
//! and it reports every bad field at once.

use zhida_catalogue::Catalogue;
use zhida_proto::policy::v1::PublishPolicyRequest;
use zhida_runtime::FieldViolations;

/// A validated policy, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPolicy {
    /// `pol-<uuid v5 of request_id>`: the same request always names the same policy.
    pub id: String,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub department: String,
    pub service_url: String,
    /// The audience rule as sent (validated), or empty.
    pub audience: String,
    /// Goes out by SMS even in quiet hours.
    pub urgent: bool,
}

const MAX_TITLE_CHARS: usize = 200;
const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_TAGS: usize = 20;
const MAX_DEPARTMENT_CHARS: usize = 100;
const MAX_URL_BYTES: usize = 2048;
const MAX_REQUEST_ID_BYTES: usize = 128;

/// Namespace of policy ids derived from request ids.
const POLICY_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x7a68_6964_615f_706f_6c69_6379_5f69_6473);

impl NewPolicy {
    /// Checks `request`, its tags and audience rule against `catalogue`.
    pub fn parse(
        request: PublishPolicyRequest,
        catalogue: &Catalogue,
    ) -> Result<Self, FieldViolations> {
        let mut bad = FieldViolations::new();
        let request_id = request.request_id.trim();
        if request_id.is_empty()
            || request_id.len() > MAX_REQUEST_ID_BYTES
            || !request_id.bytes().all(|b| b.is_ascii_graphic())
        {
            bad.add(
                "request_id",
                format!("required: 1–{MAX_REQUEST_ID_BYTES} printable ASCII characters"),
            );
        }
        let title = request.title.trim();
        if title.is_empty() {
            bad.add("title", "required");
        } else if title.chars().count() > MAX_TITLE_CHARS {
            bad.add("title", format!("at most {MAX_TITLE_CHARS} characters"));
        } else if title.chars().any(char::is_control) {
            bad.add(
                "title",
                "must not contain control characters (CR, LF, tab, …): it becomes an email subject",
            );
        }
        if request.body.trim().is_empty() {
            bad.add("body", "required");
        } else if request.body.len() > MAX_BODY_BYTES {
            bad.add(
                "body",
                format!("at most {MAX_BODY_BYTES} bytes, got {}", request.body.len()),
            );
        } else if request.body.contains('\0') {
            bad.add("body", "must not contain NUL characters");
        }
        if request.tags.is_empty() || request.tags.len() > MAX_TAGS {
            bad.add("tags", format!("1–{MAX_TAGS} tags required"));
        }
        for (i, tag) in request.tags.iter().enumerate() {
            if !catalogue.tags.contains(tag) {
                bad.add(
                    format!("tags[{i}]"),
                    format!(
                        "{tag:?} is not in the tag catalogue (ListTags): {}",
                        catalogue.tags
                    ),
                );
            }
        }
        let department = request.department.trim();
        if department.is_empty() {
            bad.add(
                "department",
                "required: the issuing department, e.g. 区人力资源社会保障局",
            );
        } else if department.chars().count() > MAX_DEPARTMENT_CHARS
            || department.chars().any(char::is_control)
        {
            bad.add(
                "department",
                format!("at most {MAX_DEPARTMENT_CHARS} characters, no control characters"),
            );
        }
        let url = request.service_url.trim();
        if !url.is_empty()
            && (!url.starts_with("https://")
                || url.len() > MAX_URL_BYTES
                || url.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            bad.add(
                "service_url",
                format!("must be an https:// URL of at most {MAX_URL_BYTES} bytes without spaces"),
            );
        }
        if !request.audience.trim().is_empty()
            && let Err(e) = zhida_audience::Rule::parse(&request.audience, &catalogue.industries)
        {
            bad.add("audience", e.to_string());
        }
        if !bad.is_empty() {
            return Err(bad);
        }
        let mut tags = request.tags;
        tags.sort();
        tags.dedup();
        Ok(Self {
            id: format!(
                "pol-{}",
                uuid::Uuid::new_v5(&POLICY_NAMESPACE, request_id.as_bytes())
            ),
            title: title.to_string(),
            body: request.body,
            tags,
            department: department.to_string(),
            service_url: url.to_string(),
            audience: if request.audience.trim().is_empty() {
                String::new()
            } else {
                request.audience
            },
            urgent: request.urgent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> PublishPolicyRequest {
        PublishPolicyRequest {
            request_id: "rsj-2023-017".into(),
            title: "杨浦区高校毕业生就业见习补贴".into(),
            body: "见习补贴标准……".into(),
            tags: vec!["employment".into(), "graduates".into(), "employment".into()],
            department: "区人力资源社会保障局".into(),
            service_url: "https://zwdt.sh.gov.cn/".into(),
            audience: r#"{"citizen": {"groups": ["高校毕业生"]}}"#.into(),
            urgent: true,
        }
    }

    fn parse(request: PublishPolicyRequest) -> Result<NewPolicy, FieldViolations> {
        NewPolicy::parse(request, &Catalogue::yangpu())
    }

    #[test]
    fn the_same_request_id_always_names_the_same_policy() {
        let a = parse(request()).expect("valid");
        let b = parse(request()).expect("valid");
        assert_eq!(a.id, b.id);
        assert_eq!(
            a.tags,
            ["employment", "graduates"],
            "tags are sorted and deduplicated"
        );
        assert!(a.urgent, "urgency is kept");
        let other = parse(PublishPolicyRequest {
            request_id: "other".into(),
            ..request()
        })
        .expect("valid");
        assert_ne!(a.id, other.id);
    }

    #[test]
    fn every_bad_field_is_reported_by_name() {
        let bad = parse(PublishPolicyRequest {
            request_id: String::new(),
            title: "Subject\r\nBcc: everyone@example.com".into(),
            body: "x".repeat(MAX_BODY_BYTES + 1),
            tags: vec!["Employment!".into(), "blockchain".into()],
            department: String::new(),
            service_url: "javascript:alert(1)".into(),
            audience: r#"{"enterprise": {"industry": [{"industry": "C99"}]}}"#.into(),
            urgent: false,
        })
        .expect_err("invalid");
        let fields: Vec<&str> = bad.violations().iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "request_id",
                "title",
                "body",
                "tags[0]",
                "tags[1]",
                "department",
                "service_url",
                "audience"
            ]
        );
        let (_, message) = &bad.violations()[4];
        assert!(message.contains("tag catalogue"), "{message}");
        let (_, message) = &bad.violations()[7];
        assert!(
            message.starts_with("$.enterprise.industry[0].industry: "),
            "says where: {message}"
        );
    }
}
