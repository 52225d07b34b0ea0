//! The review gate's automatic checks (先审查后公开): what a reviewer must see, and
//! acknowledge, before a policy can be published.
//!
//! [`Screen::scan`] reads one field of a policy (title, body, an attachment's text, the
//! interpretation …) and returns a [`Finding`] for each
//!
//! - **resident identity number** (公民身份号码): 18 characters, 17 digits and a digit or
//!   `X`, with a real birth date and the GB 11643-1999 check character
//!   ([`checks::resident_id_valid`]);
//! - **mobile number**: mainland, eleven digits `1[3-9]…`, written `13812345678`,
//!   `138 1234 5678` or `138-1234-5678`, optionally after `86`, `+86`, `0086`, `(+86)`;
//! - **bank card number**: 16–19 digits, in one run or in groups of four joined by spaces
//!   or dashes, passing Luhn ([`checks::luhn_valid`]);
//! - **email address**: ASCII `local@domain.tld`;
//! - **unified social credit code** (统一社会信用代码, GB 32100-2015) of a named firm
//!   ([`checks::credit_code_valid`]);
//! - **forbidden word** from the configured list.
//!
//! Each finding carries its field, its position in chars and an excerpt in which the match
//! is masked (`138****5678`) — so findings can be logged, stored and shown without
//! spreading what they point at.
//!
//! # What it deliberately does not flag
//!
//! A number is only reported when its check digit (ID, card, credit code) or its shape
//! (mobile) holds, and only as a whole: digits that run on into more digits (directly, or
//! through the same separator, or through a decimal point) are not a match. So:
//!
//! - an 18-digit number whose ID check character is wrong is not an ID. It is still a
//!   bank card if it passes Luhn (18 digits is a card length, and Luhn passes for one
//!   number in ten) — the reviewer sees it as a possible card;
//! - dates and times (`20230512`, `2023-05-12 13:30`, `13/05/2023`) are not mobiles;
//! - hotlines (`12345`, `10086`) and landlines (`021-65432100`, `(021) 6543 2100`) are
//!   not flagged: the numbers a policy prints are those of public offices, and there is no
//!   way to tell a private landline from one by its digits;
//! - 15-digit IDs issued before 1999 (no check digit: any 15 digits would match),
//!   passport numbers, names and addresses are not looked for;
//! - obfuscated emails (`zhang[at]example.com`) and ones with non-ASCII characters are
//!   not found; credit codes are found in upper case only, as printed on licences.
//!
//! # Overlaps
//!
//! One stretch of text is one kind of personal data: a valid resident ID is never also
//! reported as a bank card or a credit code; a credit code wins over a card or mobile
//! inside it; digits inside an email's span (`13812345678@163.com`) are reported as the
//! email only. Forbidden words are reported independently of personal data, every
//! occurrence (also overlapping ones), the longest word where several start at one place.
//!
//! # Full-width characters
//!
//! Full-width forms (`１３８１２３４５６７８`, `Ｘ`, `＠`, `－`, the ideographic space) are
//! read as their ASCII counterparts, for every check including forbidden words. The
//! folding is one char for one char, so positions are positions in the original text.
//!
//! # Example
//!
//! ```
//! use zhida_screen::{Kind, Screen};
//!
//! let screen = Screen::new(&["内部资料".to_owned()]).expect("no blank words");
//! let findings = screen.scan("body", "（内部资料）联系人手机13812345678，日期2023-05-12。");
//! let kinds: Vec<Kind> = findings.iter().map(|f| f.kind).collect();
//! assert_eq!(kinds, [Kind::ForbiddenWord, Kind::Mobile]);
//! assert_eq!(findings[1].id(), "body:mobile:11");
//! // 12 chars of context each side; the forbidden word in it starred too.
//! assert_eq!(findings[1].excerpt, "（****）联系人手机138****5678，日期2023-05-1…");
//! ```
//!
//! Pure: no I/O, no dependencies; never panics, and scans in time linear in the text
//! (times the number of forbidden words sharing a first character).

pub mod checks;
mod scan;
mod words;

#[cfg(test)]
mod tests;

use std::fmt;

/// What a [`Finding`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An 18-character resident identity number (公民身份号码) with a valid check character.
    ResidentId,
    /// A mainland mobile number, with its country prefix if written.
    Mobile,
    /// A bank card number passing Luhn.
    BankCard,
    /// An email address.
    Email,
    /// A unified social credit code (统一社会信用代码) with a valid check character.
    CreditCode,
    /// A word from the configured forbidden list.
    ForbiddenWord,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 6] = [
        Kind::ResidentId,
        Kind::Mobile,
        Kind::BankCard,
        Kind::Email,
        Kind::CreditCode,
        Kind::ForbiddenWord,
    ];

    /// The kind's stable snake_case name, as used in [`Finding::id`]: `resident_id`,
    /// `mobile`, `bank_card`, `email`, `credit_code`, `forbidden_word`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ResidentId => "resident_id",
            Kind::Mobile => "mobile",
            Kind::BankCard => "bank_card",
            Kind::Email => "email",
            Kind::CreditCode => "credit_code",
            Kind::ForbiddenWord => "forbidden_word",
        }
    }

    /// Whether the kind is personal data (everything but credit codes and forbidden words).
    pub fn is_personal(self) -> bool {
        matches!(
            self,
            Kind::ResidentId | Kind::Mobile | Kind::BankCard | Kind::Email
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing the reviewer must look at.
///
/// Contains no personal data in clear: `excerpt` is masked, and so are other findings that
/// fall into its context. It can be logged and put on events as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub kind: Kind,
    /// The field scanned, as passed to [`Screen::scan`] (`title`, `body`,
    /// `attachments[2].text` …).
    pub field: String,
    /// Where the match starts, in chars (Unicode scalar values) of the field's text.
    pub start: usize,
    /// Where the match ends, in chars, exclusive.
    pub end: usize,
    /// Up to 12 chars of context each side (`…` where cut), the match replaced by a
    /// mask keeping a hint: `138****5678`, `3101**********123X`, `6222***********0128`,
    /// `z***@example.com`, `9135**********0Y43` for credit codes, `**` for a forbidden
    /// word. Line breaks and other whitespace in the context are spaces.
    pub excerpt: String,
}

impl Finding {
    /// `<field>:<kind name>:<start>`, e.g. `body:mobile:42`: stable for the same text, and
    /// unique among the findings of one [`Screen::scan`] (matches of one kind never start
    /// at the same place). What a reviewer's acknowledgement refers to.
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.field, self.kind.name(), self.start)
    }
}

/// A match before it becomes a [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    kind: Kind,
    start: usize,
    end: usize,
}

impl Span {
    pub(crate) fn new(kind: Kind, start: usize, end: usize) -> Self {
        Self { kind, start, end }
    }
}

/// The checks with their configuration (the forbidden words), built once and shared:
/// scanning takes `&self`, so one `Screen` serves any number of concurrent reviews.
#[derive(Debug, Clone, Default)]
pub struct Screen {
    words: words::Words,
}

impl Screen {
    /// A screen for `forbidden_words`: each trimmed, matched as an exact substring with
    /// ASCII case and full-width forms ignored; duplicates (after that folding) are dropped.
    ///
    /// Errors, naming the offending index (`forbidden_words[3]: …`), for a word that is
    /// empty or only whitespace.
    pub fn new(forbidden_words: &[String]) -> Result<Self, String> {
        Ok(Self {
            words: words::Words::new(forbidden_words)?,
        })
    }

    /// Everything to review in `text`, the content of `field`, sorted by `start` (then
    /// `end`, then kind). Positions are in chars of `text`.
    pub fn scan(&self, field: &str, text: &str) -> Vec<Finding> {
        let original: Vec<char> = text.chars().collect();
        let folded: Vec<char> = original.iter().map(|&c| fold(c)).collect();
        let mut spans = scan::personal(&folded);
        let keys: Vec<char> = original.iter().map(|&c| words::key(c)).collect();
        spans.extend(self.words.find(&keys));
        spans.sort_by_key(|s| (s.start, s.end, s.kind));

        let mut covered = vec![false; original.len()];
        for s in &spans {
            covered[s.start..s.end].fill(true);
        }
        spans
            .iter()
            .map(|s| Finding {
                kind: s.kind,
                field: field.to_owned(),
                start: s.start,
                end: s.end,
                excerpt: excerpt(&original, &folded, &covered, s),
            })
            .collect()
    }
}

/// Full-width forms (U+FF01–U+FF5E) as their ASCII counterparts, the ideographic space as
/// a space; every other char as it is.
pub(crate) fn fold(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Chars of context shown each side of a match.
const CONTEXT: usize = 12;

fn excerpt(original: &[char], folded: &[char], covered: &[bool], s: &Span) -> String {
    let from = s.start.saturating_sub(CONTEXT);
    let to = (s.end + CONTEXT).min(original.len());
    let context = |i: usize| match original[i] {
        _ if covered[i] => '*',
        c if c.is_whitespace() || c.is_control() => ' ',
        c => c,
    };
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    out.extend((from..s.start).map(context));
    out.push_str(&mask(s.kind, &folded[s.start..s.end]));
    out.extend((s.end..to).map(context));
    if to < original.len() {
        out.push('…');
    }
    out
}

/// The match as shown: enough to recognise it, not enough to use it.
fn mask(kind: Kind, m: &[char]) -> String {
    let digits: Vec<char> = m.iter().copied().filter(char::is_ascii_digit).collect();
    match kind {
        Kind::ResidentId | Kind::CreditCode => keep_ends(m, 4, 4),
        Kind::BankCard => keep_ends(&digits, 4, 4),
        Kind::Mobile => {
            let national = &digits[digits.len().saturating_sub(11)..];
            let prefix = if digits.len() > 11 { "+86 " } else { "" };
            format!("{prefix}{}", keep_ends(national, 3, 4))
        }
        Kind::Email => {
            let at = m.iter().position(|&c| c == '@').unwrap_or(0);
            let domain: String = m[at..].iter().collect();
            match m[..at] {
                [first, _, ..] => format!("{first}***{domain}"),
                _ => format!("***{domain}"),
            }
        }
        Kind::ForbiddenWord => "*".repeat(m.len()),
    }
}

/// `c` with all but its first `head` and last `tail` chars starred (all starred when it
/// is not longer than those).
fn keep_ends(c: &[char], head: usize, tail: usize) -> String {
    if c.len() <= head + tail {
        return "*".repeat(c.len());
    }
    let mut out: String = c[..head].iter().collect();
    out.push_str(&"*".repeat(c.len() - head - tail));
    out.extend(&c[c.len() - tail..]);
    out
}
