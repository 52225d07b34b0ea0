//! Message templates with `${param}` placeholders, for every channel: parsed once at start
//! against the parameters their use allows (a template that names any other stops the
//! process, naming the file and the parameter), then filled in one pass, so a value is
//! never read as a template. Pure: no I/O.
//!
//! Two rules beyond substitution:
//! - a line that names parameters, all of them empty in this rendering, is left out with
//!   its line break (`在线办理：${service_url}` when a policy has no service link);
//! - filling for HTML ([`Escape::Html`]) escapes every [`Value::Text`] (and turns its line
//!   breaks into `<br>`); only [`Value::Markup`], markup this crate rendered itself from
//!   another template, goes in as it is.
//!
//! Templates are versioned files named `<kind>.v<version>.<language>.<ext>`
//! (`policy-published.v1.zh.txt`); the name without the extension identifies what was
//! rendered (`policy-published.v1.zh`).

use std::fmt;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The file it came from, for errors and for what a message says it was rendered from.
    file: String,
    lines: Vec<Line>,
}

#[derive(Debug, Clone)]
struct Line {
    parts: Vec<Part>,
    /// Whether the line ended with a line break.
    newline: bool,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Param(&'static str),
}

/// A value to fill in.
#[derive(Debug, Clone)]
pub enum Value {
    /// Text from outside (a department, a profile): escaped when filling HTML.
    Text(String),
    /// HTML this process rendered from a template itself (every value in it escaped).
    Markup(String),
}

impl Value {
    fn is_empty(&self) -> bool {
        match self {
            Value::Text(s) | Value::Markup(s) => s.is_empty(),
        }
    }
}

/// The values of one rendering, by parameter name; a parameter without a value is empty.
#[derive(Debug, Clone, Default)]
pub struct Values(Vec<(&'static str, Value)>);

impl Values {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to a text value.
    pub fn text(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.0.push((name, Value::Text(value.into())));
        self
    }

    /// Sets `name` to markup rendered by this process.
    pub fn markup(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.0.push((name, Value::Markup(value.into())));
        self
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

/// How values are filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As they are (plain text, SMS).
    None,
    /// HTML-escaped, line breaks as `<br>`.
    Html,
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {file}, line {line}: {problem}")]
pub struct TemplateError {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub problem: Problem,
}

/// What is wrong in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `${name}` is not a parameter of this template's kind.
    UnknownParam {
        name: String,
        allowed: Vec<&'static str>,
    },
    /// `${` without its `}`.
    Unclosed,
    /// The template must name this parameter and does not.
    Missing(&'static str),
    /// Anything else the template's user checks (e.g. a missing `Subject:` line).
    Other(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UnknownParam { name, allowed } => {
                write!(f, "unknown parameter ${{{name}}}; allowed: ")?;
                let allowed: Vec<String> = allowed.iter().map(|a| format!("${{{a}}}")).collect();
                f.write_str(&allowed.join(", "))
            }
            Problem::Unclosed => f.write_str("`${` without a closing `}`"),
            Problem::Missing(name) => write!(f, "must contain ${{{name}}}"),
            Problem::Other(what) => f.write_str(what),
        }
    }
}

impl Template {
    /// Parses `text` (from `file`), whose parameters must be among `allowed`.
    pub fn parse(file: &str, text: &str, allowed: &[&'static str]) -> Result<Self, TemplateError> {
        let error = |line: usize, problem| TemplateError {
            file: file.to_string(),
            line: line + 1,
            problem,
        };
        let mut lines = Vec::new();
        let mut rest = text;
        let mut number = 0;
        while !rest.is_empty() {
            let (line, newline, next) = match rest.find('\n') {
                Some(end) => (&rest[..end], true, &rest[end + 1..]),
                None => (rest, false, ""),
            };
            let mut parts = Vec::new();
            let mut tail = line;
            while let Some(start) = tail.find("${") {
                if start > 0 {
                    parts.push(Part::Text(tail[..start].to_string()));
                }
                let after = &tail[start + 2..];
                let end = after
                    .find('}')
                    .ok_or_else(|| error(number, Problem::Unclosed))?;
                let name = &after[..end];
                let param = allowed.iter().find(|a| **a == name).ok_or_else(|| {
                    error(
                        number,
                        Problem::UnknownParam {
                            name: name.to_string(),
                            allowed: allowed.to_vec(),
                        },
                    )
                })?;
                parts.push(Part::Param(param));
                tail = &after[end + 1..];
            }
            if !tail.is_empty() {
                parts.push(Part::Text(tail.to_string()));
            }
            lines.push(Line { parts, newline });
            rest = next;
            number += 1;
        }
        Ok(Self {
            file: file.to_string(),
            lines,
        })
    }

    /// The file it came from (`policy-published.v1.zh.txt`).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether the template names `param`.
    pub fn uses(&self, param: &str) -> bool {
        self.lines
            .iter()
            .flat_map(|l| &l.parts)
            .any(|p| matches!(p, Part::Param(name) if *name == param))
    }

    /// An error about this template, for its user's own checks.
    pub fn error(&self, problem: Problem) -> TemplateError {
        TemplateError {
            file: self.file.clone(),
            line: 1,
            problem,
        }
    }

    /// Refuses the template unless it names every one of `params`.
    pub fn require(self, params: &[&'static str]) -> Result<Self, TemplateError> {
        match params.iter().find(|p| !self.uses(p)) {
            Some(missing) => Err(self.error(Problem::Missing(missing))),
            None => Ok(self),
        }
    }

    /// The template's first line, when it is `<label><rest>`: the rest as a template of
    /// its own, and the template after it (with a blank line after the first dropped).
    /// For templates that start with a header, like email's `Subject: …`.
    pub fn split_header(mut self, label: &str) -> Result<(Self, Self), TemplateError> {
        let first = match self.lines.first() {
            Some(Line { parts, .. }) => match parts.first() {
                Some(Part::Text(text)) if text.starts_with(label) => {
                    let mut parts = parts.clone();
                    parts[0] = Part::Text(text[label.len()..].to_string());
                    parts.retain(|p| !matches!(p, Part::Text(t) if t.is_empty()));
                    parts
                }
                _ => {
                    return Err(
                        self.error(Problem::Other(format!("must start with a {label:?} line")))
                    );
                }
            },
            None => return Err(self.error(Problem::Other("is empty".into()))),
        };
        self.lines.remove(0);
        if self.lines.first().is_some_and(|l| l.parts.is_empty()) {
            self.lines.remove(0);
        }
        let header = Self {
            file: self.file.clone(),
            lines: vec![Line {
                parts: first,
                newline: false,
            }],
        };
        Ok((header, self))
    }

    /// Fills the template with `values`.
    pub fn render(&self, values: &Values, escape: Escape) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let mut named = false;
            let mut filled = false;
            for part in &line.parts {
                if let Part::Param(name) = part {
                    named = true;
                    filled |= values.get(name).is_some_and(|v| !v.is_empty());
                }
            }
            if named && !filled {
                continue;
            }
            for part in &line.parts {
                match part {
                    Part::Text(text) => out.push_str(text),
                    Part::Param(name) => match (values.get(name), escape) {
                        (None, _) => {}
                        (Some(Value::Text(text) | Value::Markup(text)), Escape::None) => {
                            out.push_str(text)
                        }
                        (Some(Value::Markup(markup)), Escape::Html) => out.push_str(markup),
                        (Some(Value::Text(text)), Escape::Html) => html_escape(text, &mut out),
                    },
                }
            }
            if line.newline {
                out.push('\n');
            }
        }
        out
    }
}

/// Appends `text` to `out` with `& < > " '` escaped and line breaks as `<br>`, so it is
/// safe in element content and in quoted attribute values.
pub fn html_escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: &[&str] = &["name", "title", "link", "items"];

    #[test]
    fn an_unknown_parameter_is_refused_naming_the_file_line_and_parameter() {
        let err = Template::parse("notice.v1.zh.txt", "您好 ${name}\n《${titel}》\n", ALLOWED)
            .expect_err("titel is not a parameter");
        assert_eq!(err.file, "notice.v1.zh.txt");
        assert_eq!(err.line, 2);
        let text = err.to_string();
        assert!(
            text.contains("notice.v1.zh.txt") && text.contains("${titel}"),
            "{text}"
        );
        assert!(text.contains("${title}"), "says what is allowed: {text}");
        let err = Template::parse("x.txt", "a ${name", ALLOWED).expect_err("unclosed");
        assert_eq!(err.problem, Problem::Unclosed);
    }

    #[test]
    fn values_are_filled_once_and_never_read_as_templates() {
        let t = Template::parse("t.txt", "${name}：${title}。$5 {x}", ALLOWED).expect("parses");
        let values = Values::new().text("name", "${title}").text("title", "补贴");
        assert_eq!(t.render(&values, Escape::None), "${title}：补贴。$5 {x}");
    }

    #[test]
    fn lines_whose_parameters_are_all_empty_are_left_out() {
        let t = Template::parse(
            "t.txt",
            "标题：${title}\n办理：${link}\n固定\n${name}${link}\n",
            ALLOWED,
        )
        .expect("parses");
        let values = Values::new().text("title", "T").text("name", "N");
        assert_eq!(t.render(&values, Escape::None), "标题：T\n固定\nN\n");
    }

    #[test]
    fn html_escapes_every_text_value_but_not_own_markup() {
        let t = Template::parse(
            "t.html",
            "<a href=\"${link}\">${title}</a>${items}",
            ALLOWED,
        )
        .expect("parses");
        let values = Values::new()
            .text("link", "https://x.cn/?a=1&b=\"><script>")
            .text("title", "<img src=x onerror=alert(1)>'\nnext")
            .markup("items", "<li>ok</li>");
        assert_eq!(
            t.render(&values, Escape::Html),
            "<a href=\"https://x.cn/?a=1&amp;b=&quot;&gt;&lt;script&gt;\">\
             &lt;img src=x onerror=alert(1)&gt;&#39;<br>\nnext</a><li>ok</li>"
        );
    }

    #[test]
    fn a_header_line_splits_off_and_required_parameters_are_checked() {
        let t = Template::parse("t.txt", "Subject: 《${title}》\n\n正文 ${name}\n", ALLOWED)
            .expect("parses");
        let (subject, body) = t.split_header("Subject: ").expect("has a subject");
        let values = Values::new().text("title", "T").text("name", "N");
        assert_eq!(subject.render(&values, Escape::None), "《T》");
        assert_eq!(body.render(&values, Escape::None), "正文 N\n");
        let err = body.require(&["link"]).expect_err("no ${link}");
        assert!(err.to_string().contains("must contain ${link}"), "{err}");
        let err = Template::parse("t.txt", "正文\n", ALLOWED)
            .expect("parses")
            .split_header("Subject: ")
            .expect_err("no subject line");
        assert!(err.to_string().contains("t.txt"), "{err}");
    }
}
