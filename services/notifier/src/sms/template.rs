//! The Chinese SMS model: one approved signature (签名) in front of one of a few approved
//! templates (模板) whose fixed text never changes and whose parameters are the only
//! variable parts. Pure: no I/O.
//!
//! Carriers and SMS clouds in China accept a message only under a registered signature
//! and, for notices, only as an approved template, so a policy's SMS is never rendered
//! from the policy's free body text: a template may name `${title}`, `${link}`,
//! `${department}` and `${name}`, nothing else, and [`SmsTemplates::new`] refuses any
//! other parameter when the process starts.
//!
//! Parameter values come from departments and citizens, so [`SmsTemplates::render`]
//! cleans them before they are filled in: control and invisible formatting characters
//! go (a line break becomes a space), `{`/`}` become full-width `｛`/`｝` so no
//! `${…}` or `{1}` placeholder syntax survives into a provider that renders templates
//! itself, and `【`/`】` become `〔`/`〕` so the message carries exactly one signature.
//! Filling is one pass over the parsed template, so a value is never read as a
//! template. The link is kept whole (or refused); the title is shortened with `…` until
//! the message fits `max_segments` SMS segments, counted by [`zhida_smpp::segments`].

use std::collections::BTreeMap;
use std::fmt;

use super::TemplateConfig;

/// Characters allowed inside the signature's brackets.
const SIGNATURE_CHARS: std::ops::RangeInclusive<usize> = 2..=12;
/// What a shortened title ends with.
const ELLIPSIS: char = '…';

/// A parameter a template may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Param {
    /// `${title}`: the policy's title, shortened to fit.
    Title,
    /// `${link}`: the short link to the policy page, never shortened.
    Link,
    /// `${department}`: the issuing department.
    Department,
    /// `${name}`: the recipient's name (personal data: never log a rendered SMS).
    Name,
}

impl Param {
    const ALL: [Param; 4] = [Param::Title, Param::Link, Param::Department, Param::Name];

    /// The name inside `${…}`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Param::Title => "title",
            Param::Link => "link",
            Param::Department => "department",
            Param::Name => "name",
        }
    }

    fn parse(name: &str) -> Option<Param> {
        Param::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// The values a notice fills in. `name` is `None` when the recipient has no name on
/// record; a template that names `${name}` then cannot be rendered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params<'a> {
    /// The policy's title.
    pub(crate) title: &'a str,
    /// An absolute `http(s)` link of printable ASCII (a short link to the policy page).
    pub(crate) link: &'a str,
    /// The issuing department.
    pub(crate) department: &'a str,
    /// The recipient's name, if known.
    pub(crate) name: Option<&'a str>,
}

impl Params<'_> {
    fn get(&self, param: Param) -> Option<&str> {
        match param {
            Param::Title => Some(self.title),
            Param::Link => Some(self.link),
            Param::Department => Some(self.department),
            Param::Name => self.name,
        }
    }
}

/// An SMS ready to be split into segments and submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RenderedSms {
    /// The template's id.
    pub(crate) template: String,
    /// The language of the template that was used (after any fallback).
    pub(crate) language: String,
    /// The signature followed by the filled template: the whole text the handset shows.
    pub(crate) text: String,
    /// Each parameter the template names, with the value as filled in (cleaned, the
    /// title perhaps shortened): what an SMS cloud's template API would be sent.
    pub(crate) params: BTreeMap<&'static str, String>,
    /// How many SMS segments `text` takes (at least 1, at most `max_segments`).
    pub(crate) segments: u8,
}

/// Where in the configuration a [`TemplateError`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// The signature.
    Signature,
    /// The segment limit.
    MaxSegments,
    /// The list of templates as a whole.
    Templates,
    /// One template's field.
    Template {
        /// Its position in the list.
        index: usize,
        /// Its id.
        id: String,
        /// Its language.
        language: String,
        /// The field at fault.
        field: Field,
    },
}

/// A field of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// `id`.
    Id,
    /// `language`.
    Language,
    /// `text`.
    Text,
}

impl Field {
    /// The configuration key of the field.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Language => "language",
            Field::Text => "text",
        }
    }
}

/// What is wrong with a signature or template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Problem {
    /// A parameter other than the four allowed, e.g. `${body}`.
    #[error(
        "unknown parameter {0}; a template may use only ${{title}}, ${{link}}, ${{department}} and ${{name}}"
    )]
    UnknownParameter(String),
    /// `${` without its `}`.
    #[error("`${{` without a closing `}}`")]
    Unclosed,
    /// The text is all parameters (or blank).
    #[error("has no fixed text: an approved template is fixed text with parameters")]
    NoFixedText,
    /// Even with every parameter empty the message needs too many segments.
    #[error(
        "with the signature and every parameter empty it needs {needed} SMS segments, more than max_segments = {max}"
    )]
    TooLong {
        /// Segments needed.
        needed: usize,
        /// The limit.
        max: u8,
    },
    /// `【` or `】` in a template: the signature would appear twice.
    #[error("must not contain 【 or 】: the signature is added once, in front")]
    Brackets,
    /// A control character in fixed text.
    #[error("must not contain control characters")]
    Control,
    /// An empty id or a language that is not a tag such as `zh` or `en`.
    #[error(
        "must be a non-empty tag of ASCII letters, digits, `-` and `_`, such as `zh` or `policy-published`"
    )]
    NotATag,
    /// The same (id, language) twice.
    #[error("the same id and language as an earlier template")]
    Duplicate,
    /// Not `【…】` with 2–12 plain characters inside.
    #[error(
        "must be 【…】 with 2 to 12 characters inside and no brackets, spaces or control characters, e.g. 【杨浦区政务】"
    )]
    Signature,
    /// `max_segments` is 0.
    #[error("must be at least 1")]
    NoSegments,
    /// No template at all.
    #[error("at least one template is needed")]
    NoTemplates,
}

/// A signature or template the carrier would not accept, or that could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    /// Where it is.
    pub(crate) place: Place,
    /// What is wrong.
    pub(crate) problem: Problem,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Place::Signature => write!(f, "SMS signature: {}", self.problem),
            Place::MaxSegments => write!(f, "SMS max_segments: {}", self.problem),
            Place::Templates => write!(f, "SMS templates: {}", self.problem),
            Place::Template {
                id,
                language,
                field,
                ..
            } => write!(
                f,
                "SMS template {id} ({language}) {}: {}",
                field.key(),
                self.problem
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// Why a notice cannot become an SMS; rendering again will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RenderError {
    /// No template has this id.
    #[error("no SMS template {0}")]
    UnknownTemplate(String),
    /// The template names a parameter the notice does not have (`${name}` for a
    /// recipient without a name).
    #[error("SMS template {template} needs ${{{parameter}}}, which this notice does not have")]
    MissingParameter {
        /// The template's id.
        template: String,
        /// The parameter's name.
        parameter: &'static str,
    },
    /// The link is not an absolute `http(s)` link of printable ASCII.
    #[error("the SMS link is not an http(s) link of printable ASCII")]
    InvalidLink,
    /// Even with the title cut to `…` the message needs too many segments (a long link
    /// or department).
    #[error(
        "the SMS from template {template} needs {needed} segments even with the title shortened, more than {max}"
    )]
    TooLong {
        /// The template's id.
        template: String,
        /// Segments needed with the shortest title.
        needed: usize,
        /// The limit.
        max: u8,
    },
}

/// A template, parsed.
#[derive(Debug, Clone)]
struct Template {
    id: String,
    language: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Param(Param),
}

impl Template {
    fn params(&self) -> impl Iterator<Item = Param> + '_ {
        self.parts.iter().filter_map(|part| match part {
            Part::Param(p) => Some(*p),
            Part::Text(_) => None,
        })
    }

    /// The template with `value` for each parameter.
    fn fill(&self, value: impl Fn(Param) -> String) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => text.clone(),
                Part::Param(p) => value(*p),
            })
            .collect()
    }
}

/// The signature and the approved templates, checked once at start.
#[derive(Debug, Clone)]
pub(crate) struct SmsTemplates {
    signature: String,
    max_segments: u8,
    templates: Vec<Template>,
}

impl SmsTemplates {
    /// Checks and parses the signature and every template: the signature must be
    /// `【…】` with 2–12 characters inside; each template needs an id, a language, fixed
    /// text without `【】` or control characters, only known parameters, and must fit
    /// `max_segments` with every parameter empty. The first problem is the error.
    pub(crate) fn new(
        signature: &str,
        templates: &[TemplateConfig],
        max_segments: u8,
    ) -> Result<SmsTemplates, TemplateError> {
        let fail = |place, problem| Err(TemplateError { place, problem });
        if !valid_signature(signature) {
            return fail(Place::Signature, Problem::Signature);
        }
        if max_segments == 0 {
            return fail(Place::MaxSegments, Problem::NoSegments);
        }
        if templates.is_empty() {
            return fail(Place::Templates, Problem::NoTemplates);
        }
        let mut parsed: Vec<Template> = Vec::with_capacity(templates.len());
        for (index, config) in templates.iter().enumerate() {
            let at = |field| Place::Template {
                index,
                id: config.id.clone(),
                language: config.language.clone(),
                field,
            };
            if !is_tag(&config.id) {
                return fail(at(Field::Id), Problem::NotATag);
            }
            if !is_tag(&config.language) {
                return fail(at(Field::Language), Problem::NotATag);
            }
            if parsed
                .iter()
                .any(|t| t.id == config.id && t.language == config.language)
            {
                return fail(at(Field::Id), Problem::Duplicate);
            }
            let template = parse(config).map_err(|problem| TemplateError {
                place: at(Field::Text),
                problem,
            })?;
            let bare = format!("{signature}{}", template.fill(|_| String::new()));
            if let Err(too_long) = zhida_smpp::segments(&bare, 0, max_segments) {
                let problem = Problem::TooLong {
                    needed: too_long.needed,
                    max: max_segments,
                };
                return fail(at(Field::Text), problem);
            }
            parsed.push(template);
        }
        Ok(SmsTemplates {
            signature: signature.to_owned(),
            max_segments,
            templates: parsed,
        })
    }

    /// The signature every SMS starts with.
    pub(crate) fn signature(&self) -> &str {
        &self.signature
    }

    /// The SMS for template `id` in `language`, or, when that template has no version in
    /// `language`, in the language configured first for `id`. Values are cleaned (see the
    /// module documentation); the title is shortened with `…` as far as needed to fit
    /// `max_segments`.
    pub(crate) fn render(
        &self,
        id: &str,
        language: &str,
        params: &Params<'_>,
    ) -> Result<RenderedSms, RenderError> {
        let template = self
            .templates
            .iter()
            .find(|t| t.id == id && t.language == language)
            .or_else(|| self.templates.iter().find(|t| t.id == id))
            .ok_or_else(|| RenderError::UnknownTemplate(id.to_owned()))?;
        let mut values = BTreeMap::new();
        for param in template.params() {
            let raw = params
                .get(param)
                .ok_or_else(|| RenderError::MissingParameter {
                    template: template.id.clone(),
                    parameter: param.name(),
                })?;
            let value = match param {
                Param::Link => clean_link(raw).ok_or(RenderError::InvalidLink)?,
                _ => clean(raw),
            };
            values.insert(param, value);
        }
        let text_with = |values: &BTreeMap<Param, String>| {
            let body = template.fill(|p| values.get(&p).cloned().unwrap_or_default());
            format!("{}{body}", self.signature)
        };
        let count = |text: &str| zhida_smpp::segments(text, 0, self.max_segments);

        let mut text = text_with(&values);
        let mut fitted = count(&text);
        if let (Err(_), Some(title)) = (&fitted, values.get(&Param::Title).cloned()) {
            // Binary search for the longest prefix of the title that fits: the segment
            // count never falls as the text grows, so "fits" is monotone in the length.
            let chars: Vec<char> = title.chars().collect();
            let shortened = |keep: usize| {
                let mut short: String = chars[..keep].iter().collect();
                short.truncate(short.trim_end().len());
                short.push(ELLIPSIS);
                short
            };
            let with_title = |short: String| {
                let mut values = values.clone();
                values.insert(Param::Title, short);
                values
            };
            let (mut fits, mut too_long) = (None, chars.len());
            let mut low = 0;
            while low < too_long {
                let keep = low + (too_long - low) / 2;
                let candidate = with_title(shortened(keep));
                if count(&text_with(&candidate)).is_ok() {
                    fits = Some(candidate);
                    low = keep + 1;
                } else {
                    too_long = keep;
                }
            }
            // Nothing fits: the text with the shortest title says how many are needed.
            values = fits.unwrap_or_else(|| with_title(shortened(0)));
            text = text_with(&values);
            fitted = count(&text);
        }
        let segments = fitted.map_err(|too_long| RenderError::TooLong {
            template: template.id.clone(),
            needed: too_long.needed,
            max: self.max_segments,
        })?;
        Ok(RenderedSms {
            template: template.id.clone(),
            language: template.language.clone(),
            text,
            params: values.into_iter().map(|(p, v)| (p.name(), v)).collect(),
            // At most max_segments, a u8.
            segments: u8::try_from(segments.len()).unwrap_or(u8::MAX),
        })
    }
}

/// `【…】` with 2–12 characters inside, none of them a bracket, whitespace or control.
fn valid_signature(signature: &str) -> bool {
    let Some(inside) = signature
        .strip_prefix('【')
        .and_then(|rest| rest.strip_suffix('】'))
    else {
        return false;
    };
    SIGNATURE_CHARS.contains(&inside.chars().count())
        && inside
            .chars()
            .all(|c| !matches!(c, '【' | '】') && !c.is_whitespace() && !is_invisible(c))
}

/// A non-empty tag of ASCII letters, digits, `-` and `_` (a template id or a language).
fn is_tag(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The template's text as fixed parts and parameters.
fn parse(config: &TemplateConfig) -> Result<Template, Problem> {
    let mut parts = Vec::new();
    let mut rest = config.text.as_str();
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(Problem::Unclosed)?;
        let name = &after[..end];
        let param =
            Param::parse(name).ok_or_else(|| Problem::UnknownParameter(format!("${{{name}}}")))?;
        parts.push(Part::Param(param));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    let fixed: String = parts
        .iter()
        .filter_map(|part| match part {
            Part::Text(text) => Some(text.as_str()),
            Part::Param(_) => None,
        })
        .collect();
    if fixed.chars().any(|c| matches!(c, '【' | '】')) {
        return Err(Problem::Brackets);
    }
    if fixed.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(Problem::Control);
    }
    if fixed.trim().is_empty() {
        return Err(Problem::NoFixedText);
    }
    Ok(Template {
        id: config.id.clone(),
        language: config.language.clone(),
        parts,
    })
}

/// Formatting characters that change how text shows without showing themselves
/// (zero-width spaces and joiners, bidirectional overrides, word joiners, BOM): a
/// right-to-left override in a title could make a link read as another.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// A parameter value made safe to fill in: whitespace controls become a space, other
/// controls and invisible formatting characters go, runs of whitespace become one space,
/// braces become full-width and `【】` become `〔〕`.
fn clean(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut space = false;
    for c in value.chars() {
        let c = match c {
            '{' => '｛',
            '}' => '｝',
            '【' => '〔',
            '】' => '〕',
            c if c.is_whitespace() => ' ',
            c if c.is_control() || is_invisible(c) => continue,
            c => c,
        };
        if c == ' ' {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

/// The link without whitespace, controls and invisible characters, if what is left is
/// an absolute `http(s)` link of printable ASCII (a short link always is; an
/// internationalised one is written in punycode).
fn clean_link(value: &str) -> Option<String> {
    let link: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control() && !is_invisible(*c))
        .collect();
    let rest = link
        .strip_prefix("https://")
        .or_else(|| link.strip_prefix("http://"))?;
    let printable = link
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'{' | b'}'));
    (!rest.is_empty() && printable).then_some(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNATURE: &str = "【杨浦区政务】";
    const LINK: &str = "https://y.example/p/7Kq2";

    fn config(id: &str, language: &str, text: &str) -> TemplateConfig {
        TemplateConfig {
            id: id.into(),
            language: language.into(),
            text: text.into(),
        }
    }

    fn templates(text: &str, max_segments: u8) -> SmsTemplates {
        SmsTemplates::new(SIGNATURE, &[config("policy", "zh", text)], max_segments)
            .expect("valid template")
    }

    fn params<'a>(title: &'a str, link: &'a str) -> Params<'a> {
        Params {
            title,
            link,
            department: "区科委",
            name: None,
        }
    }

    fn units(text: &str) -> usize {
        text.encode_utf16().count()
    }

    #[test]
    fn a_notice_is_the_signature_and_the_filled_template() {
        let sms = templates("${department}发布《${title}》，详情：${link}", 3)
            .render("policy", "zh", &params("科技企业研发补贴", LINK))
            .expect("renders");
        assert_eq!(
            sms.text,
            "【杨浦区政务】区科委发布《科技企业研发补贴》，详情：https://y.example/p/7Kq2"
        );
        assert_eq!(sms.segments, 1);
        assert_eq!(
            (sms.template.as_str(), sms.language.as_str()),
            ("policy", "zh")
        );
        let names: Vec<_> = sms.params.keys().copied().collect();
        assert_eq!(names, ["department", "link", "title"]);
        assert_eq!(sms.params["title"], "科技企业研发补贴");
    }

    #[test]
    fn a_template_naming_body_or_an_unknown_parameter_is_refused_with_its_name() {
        let err = SmsTemplates::new(
            SIGNATURE,
            &[
                config("policy", "zh", "${title}：${link}"),
                config("policy", "en", "${title}: ${body} ${link}"),
            ],
            3,
        )
        .expect_err("${body} is not a parameter");
        assert_eq!(
            err.place,
            Place::Template {
                index: 1,
                id: "policy".into(),
                language: "en".into(),
                field: Field::Text
            }
        );
        assert_eq!(err.problem, Problem::UnknownParameter("${body}".into()));
        let shown = err.to_string();
        assert!(
            shown.starts_with("SMS template policy (en) text: unknown parameter ${body}"),
            "{shown}"
        );
    }

    #[test]
    fn templates_without_fixed_text_or_too_long_or_with_brackets_are_refused() {
        for (text, problem) in [
            ("${title}${link}", Problem::NoFixedText),
            ("  ", Problem::NoFixedText),
            ("${title", Problem::Unclosed),
            ("【杨浦】${title}${link}", Problem::Brackets),
            ("${title}\u{7}${link}", Problem::Control),
            (&"政".repeat(200), Problem::TooLong { needed: 4, max: 3 }),
        ] {
            let err = SmsTemplates::new(SIGNATURE, &[config("p", "zh", text)], 3).expect_err(text);
            assert_eq!(err.problem, problem, "{text}");
        }
        let err = SmsTemplates::new(
            SIGNATURE,
            &[config("p", "zh", "通知"), config("p", "zh", "公告")],
            3,
        )
        .expect_err("a duplicate");
        assert_eq!(err.problem, Problem::Duplicate, "{err}");
        let err =
            SmsTemplates::new(SIGNATURE, &[config("p", "", "通知")], 3).expect_err("no language");
        assert!(matches!(
            err.place,
            Place::Template {
                field: Field::Language,
                ..
            }
        ));
        let err = SmsTemplates::new(SIGNATURE, &[], 3).expect_err("no templates");
        assert_eq!(err.problem, Problem::NoTemplates);
        let err = SmsTemplates::new(SIGNATURE, &[config("p", "zh", "通知")], 0).expect_err("0");
        assert_eq!(err.place, Place::MaxSegments);
    }

    #[test]
    fn a_signature_is_two_to_twelve_characters_in_lenticular_brackets() {
        for good in ["【杨浦】", "【杨浦区政务】", "【上海市杨浦区人民政府办公】"]
        {
            assert!(valid_signature(good), "{good}");
        }
        for bad in [
            "杨浦区政务",
            "[杨浦区政务]",
            "【杨】",
            "【上海市杨浦区人民政府办公室】",
            "【杨浦 政务】",
            "【杨浦】【政务】",
            "【杨浦区政务】 ",
            "",
        ] {
            assert!(!valid_signature(bad), "{bad}");
            let err = SmsTemplates::new(bad, &[config("p", "zh", "通知")], 3).expect_err(bad);
            assert_eq!(err.place, Place::Signature);
        }
    }

    #[test]
    fn values_cannot_inject_placeholders_signatures_or_control_characters() {
        let sms = templates("${department}：${title} ${link}", 3)
            .render(
                "policy",
                "zh",
                &Params {
                    title: "【通知】关于${body}与{1}的\n补贴\u{202E}lmth.exe\u{7}",
                    link: " https://y.example/p/1\u{200B} ",
                    department: "区\t\t科委",
                    name: None,
                },
            )
            .expect("renders");
        assert_eq!(
            sms.params["title"],
            "〔通知〕关于$｛body｝与｛1｝的 补贴lmth.exe"
        );
        assert_eq!(sms.params["department"], "区 科委");
        assert_eq!(sms.params["link"], "https://y.example/p/1");
        assert_eq!(sms.text.matches('【').count(), 1);
        assert!(!sms.text.contains("${"));
        assert!(!sms.text.chars().any(char::is_control));
    }

    #[test]
    fn a_long_title_is_shortened_with_an_ellipsis_to_fit_and_the_link_is_kept_whole() {
        let title = "关于进一步支持杨浦区科技创新企业高质量发展的若干政策措施实施细则".repeat(8);
        let link = LINK;
        for max in [1, 2, 3] {
            let sms = templates("${department}发布《${title}》，详情：${link}", max)
                .render("policy", "zh", &params(&title, link))
                .expect("shortened to fit");
            assert_eq!(usize::from(sms.segments), usize::from(max));
            assert!(
                sms.text.ends_with(&format!("》，详情：{link}")),
                "{}",
                sms.text
            );
            assert!(sms.params["title"].ends_with('…'));
            assert!(title.starts_with(sms.params["title"].trim_end_matches('…')));
            // As long as possible: the text fills the segments, so one more character of
            // the title would not fit.
            let limit = if max == 1 { 70 } else { 67 * usize::from(max) };
            assert_eq!(units(&sms.text), limit);
        }
    }

    #[test]
    fn a_title_that_fits_is_left_alone_and_one_that_cannot_fit_is_an_error() {
        let sms = templates("${title}：${link}", 1)
            .render("policy", "zh", &params("补贴", LINK))
            .expect("fits");
        assert_eq!(sms.params["title"], "补贴");

        let long_link = format!("https://y.example/{}", "x".repeat(80));
        let err = templates("${title}：${link}", 1)
            .render("policy", "zh", &params("补贴", &long_link))
            .expect_err("the link alone is too long");
        assert!(
            matches!(
                err,
                RenderError::TooLong {
                    needed: 2,
                    max: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_missing_name_a_bad_link_or_an_unknown_template_is_a_render_error() {
        let sms = templates("${name}您好，${title}：${link}", 3);
        assert_eq!(
            sms.render("policy", "zh", &params("补贴", LINK)),
            Err(RenderError::MissingParameter {
                template: "policy".into(),
                parameter: "name"
            })
        );
        let named = Params {
            name: Some("张三"),
            ..params("补贴", LINK)
        };
        assert!(sms.render("policy", "zh", &named).is_ok());
        for link in [
            "y.example/p/1",
            "javascript:alert(1)",
            "https://",
            "https://例子.cn/p",
        ] {
            assert_eq!(
                sms.render("policy", "zh", &Params { link, ..named }),
                Err(RenderError::InvalidLink),
                "{link}"
            );
        }
        assert_eq!(
            sms.render("digest", "zh", &named),
            Err(RenderError::UnknownTemplate("digest".into()))
        );
    }

    #[test]
    fn a_language_without_its_own_version_falls_back_to_the_first_configured() {
        let templates = SmsTemplates::new(
            SIGNATURE,
            &[
                config("policy", "zh", "新政策：${title} ${link}"),
                config("policy", "en", "New policy: ${title} ${link}"),
            ],
            3,
        )
        .expect("valid");
        let render = |language| {
            templates
                .render("policy", language, &params("Grants", LINK))
                .expect("renders")
        };
        assert_eq!(
            render("en").text,
            format!("{SIGNATURE}New policy: Grants {LINK}")
        );
        let fallback = render("fr");
        assert_eq!(fallback.language, "zh");
        assert!(fallback.text.starts_with("【杨浦区政务】新政策"));
    }
}
