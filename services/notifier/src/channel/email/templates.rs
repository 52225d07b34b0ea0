//! The email templates: a notice (`policy-published`), the notices about a policy received
//! earlier (`policy-revised`, `policy-withdrawn`) and a daily digest (`digest`, whose
//! policies are each rendered from `digest-item`), each as a plain-text file that starts
//! with its `Subject:` line and an HTML file, in every language Zhida writes (zh, the
//! default, and en). The files live in `services/notifier/templates/email/`, versioned in
//! their names, and are built into the binary; [`EmailTemplates::embedded`] parses and
//! checks them all at start.

use crate::templates::{Problem, Template, TemplateError};

/// The version of the templates in use; a new wording is a new version (new files), so
/// what a message says it was rendered from (`X-Zhida-Template`) stays meaningful.
const VERSION: &str = "v1";

/// The languages there are templates for; the first is the default.
pub const LANGUAGES: [&str; 2] = ["zh", "en"];

/// Parameters of a notice.
pub const NOTICE: &[&str] = &[
    "name",
    "title",
    "department",
    "body",
    "service_url",
    "reason",
    "policy_id",
    "unsubscribe_url",
];
/// Parameters of a revision or withdrawal notice (`change_summary`: what changed, or the
/// reason of the withdrawal).
pub const CHANGE_NOTICE: &[&str] = &[
    "name",
    "title",
    "department",
    "change_summary",
    "version",
    "service_url",
    "policy_id",
    "unsubscribe_url",
];
/// Parameters of a digest (`items`: its policies, each rendered from `digest-item`).
pub const DIGEST: &[&str] = &["name", "count", "items", "unsubscribe_url"];
/// Parameters of one policy in a digest.
pub const DIGEST_ITEM: &[&str] = &[
    "n",
    "title",
    "department",
    "summary",
    "service_url",
    "reason",
    "policy_id",
];

macro_rules! files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../templates/email/", $name)))),*]
    };
}

/// Every template file, built into the binary.
const EMBEDDED: &[(&str, &str)] = files![
    "policy-published.v1.zh.txt",
    "policy-published.v1.zh.html",
    "policy-published.v1.en.txt",
    "policy-published.v1.en.html",
    "policy-revised.v1.zh.txt",
    "policy-revised.v1.zh.html",
    "policy-revised.v1.en.txt",
    "policy-revised.v1.en.html",
    "policy-withdrawn.v1.zh.txt",
    "policy-withdrawn.v1.zh.html",
    "policy-withdrawn.v1.en.txt",
    "policy-withdrawn.v1.en.html",
    "digest.v1.zh.txt",
    "digest.v1.zh.html",
    "digest.v1.en.txt",
    "digest.v1.en.html",
    "digest-item.v1.zh.txt",
    "digest-item.v1.zh.html",
    "digest-item.v1.en.txt",
    "digest-item.v1.en.html",
];

/// One message's templates.
#[derive(Debug, Clone)]
pub struct MessageTemplates {
    /// What it is rendered from, e.g. `policy-published.v1.zh`.
    pub id: String,
    pub subject: Template,
    pub text: Template,
    pub html: Template,
}

/// A digest's policy, as text and as HTML.
#[derive(Debug, Clone)]
pub struct ItemTemplates {
    pub text: Template,
    pub html: Template,
}

/// Everything one language needs.
#[derive(Debug, Clone)]
pub struct LanguageTemplates {
    pub language: &'static str,
    pub notice: MessageTemplates,
    /// "政策已更新：…" to whoever received an earlier version.
    pub revision: MessageTemplates,
    /// "政策已撤回：…" to whoever received the policy.
    pub withdrawal: MessageTemplates,
    pub digest: MessageTemplates,
    pub digest_item: ItemTemplates,
}

/// The templates of every language.
#[derive(Debug, Clone)]
pub struct EmailTemplates(Vec<LanguageTemplates>);

impl EmailTemplates {
    /// The templates built into the binary, parsed and checked.
    pub fn embedded() -> Result<Self, TemplateError> {
        Self::from_files(EMBEDDED)
    }

    /// Parses and checks `files` (name, content): every kind in every language must be
    /// there, name only its kind's parameters, and carry the unsubscribe link.
    pub fn from_files(files: &[(&str, &str)]) -> Result<Self, TemplateError> {
        let file = |name: String, allowed: &[&'static str]| {
            let text = files
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, text)| *text)
                .ok_or_else(|| TemplateError {
                    file: name.clone(),
                    line: 0,
                    problem: Problem::Other("is missing".into()),
                })?;
            Template::parse(&name, text, allowed)
        };
        let message = |kind: &str, language: &str, allowed: &[&'static str]| {
            let id = format!("{kind}.{VERSION}.{language}");
            let (subject, text) = file(format!("{id}.txt"), allowed)?
                .require(&["unsubscribe_url"])?
                .split_header("Subject: ")?;
            let html = file(format!("{id}.html"), allowed)?.require(&["unsubscribe_url"])?;
            Ok::<_, TemplateError>(MessageTemplates {
                id,
                subject,
                text,
                html,
            })
        };
        let mut languages = Vec::new();
        for language in LANGUAGES {
            let item = format!("digest-item.{VERSION}.{language}");
            languages.push(LanguageTemplates {
                language,
                notice: message("policy-published", language, NOTICE)?,
                revision: message("policy-revised", language, CHANGE_NOTICE)?,
                withdrawal: message("policy-withdrawn", language, CHANGE_NOTICE)?,
                digest: message("digest", language, DIGEST)?.require_items()?,
                digest_item: ItemTemplates {
                    text: file(format!("{item}.txt"), DIGEST_ITEM)?,
                    html: file(format!("{item}.html"), DIGEST_ITEM)?,
                },
            });
        }
        Ok(Self(languages))
    }

    /// The templates for a profile's `language` (a BCP 47 tag: `en-GB` takes `en`); the
    /// default (zh) when it is empty or there are none in it.
    pub fn for_language(&self, language: &str) -> &LanguageTemplates {
        let primary = language
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.0
            .iter()
            .find(|t| t.language == primary)
            .unwrap_or(&self.0[0])
    }
}

impl MessageTemplates {
    /// A digest that does not list its policies would be empty.
    fn require_items(self) -> Result<Self, TemplateError> {
        let text = self.text.require(&["items"])?;
        let html = self.html.require(&["items"])?;
        Ok(Self { text, html, ..self })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_templates_parse_for_every_language() {
        let templates = EmailTemplates::embedded().expect("the shipped templates are valid");
        assert_eq!(templates.for_language("").language, "zh");
        assert_eq!(templates.for_language("en-GB").language, "en");
        assert_eq!(templates.for_language("EN").language, "en");
        assert_eq!(templates.for_language("fr").language, "zh", "fallback");
        assert_eq!(
            templates.for_language("en").notice.id,
            "policy-published.v1.en"
        );
        assert_eq!(
            templates.for_language("zh").revision.id,
            "policy-revised.v1.zh"
        );
        assert_eq!(
            templates.for_language("en").withdrawal.id,
            "policy-withdrawn.v1.en"
        );
    }

    fn replaced(name: &str, text: &'static str) -> Vec<(&'static str, &'static str)> {
        EMBEDDED
            .iter()
            .map(|(n, t)| (*n, if *n == name { text } else { *t }))
            .collect()
    }

    #[test]
    fn a_template_with_an_unknown_parameter_names_the_file_and_the_parameter() {
        let files = replaced(
            "policy-published.v1.en.html",
            "<p>${title}</p><p>${recipient_phone}</p><a href=\"${unsubscribe_url}\">x</a>",
        );
        let err = EmailTemplates::from_files(&files).expect_err("unknown parameter");
        let text = err.to_string();
        assert!(
            text.contains("policy-published.v1.en.html") && text.contains("${recipient_phone}"),
            "{text}"
        );
    }

    #[test]
    fn a_notice_without_its_unsubscribe_link_or_subject_is_refused() {
        let files = replaced("digest.v1.zh.html", "<ol>${items}</ol>");
        let err = EmailTemplates::from_files(&files).expect_err("no unsubscribe link");
        assert!(
            err.to_string().contains("digest.v1.zh.html")
                && err.to_string().contains("${unsubscribe_url}"),
            "{err}"
        );
        let files = replaced(
            "policy-published.v1.zh.txt",
            "${title}\n${unsubscribe_url}\n",
        );
        let err = EmailTemplates::from_files(&files).expect_err("no subject");
        assert!(err.to_string().contains("Subject"), "{err}");
        let files: Vec<_> = EMBEDDED
            .iter()
            .copied()
            .filter(|(n, _)| *n != "digest-item.v1.en.txt")
            .collect();
        let err = EmailTemplates::from_files(&files).expect_err("missing file");
        assert!(err.to_string().contains("digest-item.v1.en.txt"), "{err}");
    }
}
