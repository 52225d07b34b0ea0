//! Chinese word segmentation for the index: jieba's search mode as a tantivy tokenizer.
//!
//! Documents are cut in search mode (each word, plus the dictionary words inside it: 人才公寓
//! gives 人才, 公寓 and, as a domain word, 人才公寓), queries in default mode (the words
//! alone), so every query word is among a document's tokens when the document holds the same
//! text. ASCII is lower-cased; tokens of only punctuation, symbols or whitespace are dropped.

use std::sync::{Arc, OnceLock};

use jieba_rs::{Jieba, TokenizeMode};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// The name the index registers [`JiebaTokenizer`] under.
pub const NAME: &str = "zhida_jieba";

/// Words of the district's policies that jieba's stock dictionary splits, so that a query for
/// one of them ranks the documents holding it whole above those holding its parts apart.
const DOMAIN_WORDS: [&str; 16] = [
    "人才公寓",
    "稳岗补贴",
    "专精特新",
    "就业见习",
    "一网通办",
    "一件事",
    "五角场",
    "杨浦区",
    "区科委",
    "区人社局",
    "区商务委",
    "区发改委",
    "区房管局",
    "区民政局",
    "创业担保贷款",
    "以工代训",
];

/// One dictionary for the process: loading it takes a few hundred milliseconds and tens of
/// megabytes, and it never changes after [`DOMAIN_WORDS`] are added.
pub fn jieba() -> Arc<Jieba> {
    static JIEBA: OnceLock<Arc<Jieba>> = OnceLock::new();
    JIEBA
        .get_or_init(|| {
            let mut jieba = Jieba::new();
            for word in DOMAIN_WORDS {
                jieba.add_word(word, None, None);
            }
            Arc::new(jieba)
        })
        .clone()
}

/// Whether `word` is worth a token: it holds a letter or a digit (CJK ideographs count).
fn searchable(word: &str) -> bool {
    word.chars().any(char::is_alphanumeric)
}

/// `text` cut into index tokens (search mode, HMM on), with byte offsets into `text`.
pub fn index_tokens(jieba: &Jieba, text: &str) -> Vec<Token> {
    jieba
        .tokenize(text, TokenizeMode::Search, true)
        .into_iter()
        .filter(|t| searchable(t.word))
        .enumerate()
        .map(|(position, t)| Token {
            offset_from: t.byte_start,
            offset_to: t.byte_end,
            position,
            text: t.word.to_lowercase(),
            position_length: 1,
        })
        .collect()
}

/// One word of a user's query, and the dictionary words inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryWord {
    /// Lower-cased.
    pub word: String,
    /// The 2- and 3-character dictionary words inside `word` (search mode's extra tokens),
    /// lower-cased: a document whose text around the word was cut differently (社会保障局 as
    /// 社会 | 保障局, so no 社会保障) still holds all of them.
    pub parts: Vec<String>,
}

/// The words of a user's query (default mode, HMM on) without repeats, each with its parts.
pub fn query_words(jieba: &Jieba, text: &str) -> Vec<QueryWord> {
    let mut words: Vec<QueryWord> = Vec::new();
    for token in jieba.tokenize(text, TokenizeMode::Default, true) {
        if !searchable(token.word) {
            continue;
        }
        let word = token.word.to_lowercase();
        if words.iter().any(|w| w.word == word) {
            continue;
        }
        let mut parts: Vec<String> = Vec::new();
        for part in jieba.tokenize(token.word, TokenizeMode::Search, true) {
            let part = part.word.to_lowercase();
            if part != word && searchable(&part) && !parts.contains(&part) {
                parts.push(part);
            }
        }
        words.push(QueryWord { word, parts });
    }
    words
}

/// The tantivy side of [`index_tokens`]; cheap to clone (the dictionary is shared).
#[derive(Clone)]
pub struct JiebaTokenizer {
    jieba: Arc<Jieba>,
}

impl JiebaTokenizer {
    pub fn new(jieba: Arc<Jieba>) -> Self {
        Self { jieba }
    }
}

impl Tokenizer for JiebaTokenizer {
    type TokenStream<'a> = JiebaTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> JiebaTokenStream {
        JiebaTokenStream {
            tokens: index_tokens(&self.jieba, text),
            next: 0,
            none: Token::default(),
        }
    }
}

/// Tokens for highlighting a search's words: each occurrence of one of them (longest first,
/// ASCII case ignored), and every other character a token of its own with empty text.
///
/// Search-mode tokens cannot serve here: they overlap and are not in offset order, and
/// tantivy's fragment selection (which starts a fragment at a token and ends it at the last
/// one's end) needs tokens whose starts and ends both only grow. Occurrences of the words are
/// what the index matched, and finding them needs no second segmentation.
#[derive(Clone)]
pub struct HighlightTokenizer {
    /// Lower-cased, longest first.
    words: Arc<Vec<String>>,
}

impl HighlightTokenizer {
    pub fn new(words: &[String]) -> Self {
        let mut words: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        words.retain(|w| !w.is_empty());
        Self {
            words: Arc::new(words),
        }
    }
}

/// See [`HighlightTokenizer`].
pub fn highlight_tokens(words: &[String], text: &str) -> Vec<Token> {
    // ASCII lower-casing keeps every byte offset.
    let lower = text.to_ascii_lowercase();
    let mut tokens = Vec::new();
    let mut at = 0;
    while let Some(rest) = lower.get(at..).filter(|rest| !rest.is_empty()) {
        let (len, word) = match words.iter().find(|w| rest.starts_with(w.as_str())) {
            Some(word) => (word.len(), word.clone()),
            None => (rest.chars().next().map_or(1, char::len_utf8), String::new()),
        };
        tokens.push(Token {
            offset_from: at,
            offset_to: at + len,
            position: tokens.len(),
            text: word,
            position_length: 1,
        });
        at += len;
    }
    tokens
}

impl Tokenizer for HighlightTokenizer {
    type TokenStream<'a> = JiebaTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> JiebaTokenStream {
        JiebaTokenStream {
            tokens: highlight_tokens(&self.words, text),
            next: 0,
            none: Token::default(),
        }
    }
}

/// The tokens of one text, cut up front.
pub struct JiebaTokenStream {
    tokens: Vec<Token>,
    /// One past the current token; 0 before the first `advance`.
    next: usize,
    /// What `token` gives when there is no current token (tantivy never asks then).
    none: Token,
}

impl JiebaTokenStream {
    fn current(&self) -> Option<usize> {
        self.next.checked_sub(1).filter(|i| *i < self.tokens.len())
    }
}

impl TokenStream for JiebaTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        match self.current() {
            Some(i) => &self.tokens[i],
            None => &self.none,
        }
    }

    fn token_mut(&mut self) -> &mut Token {
        match self.current() {
            Some(i) => &mut self.tokens[i],
            None => &mut self.none,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_mode_offers_the_parts_of_a_word_with_byte_offsets() {
        let jieba = jieba();
        let text = "关于加强杨浦区人才公寓建设的实施意见";
        let tokens = index_tokens(&jieba, text);
        let words: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        for word in ["人才", "公寓", "人才公寓", "杨浦区", "实施", "意见"] {
            assert!(words.contains(&word), "{word} missing from {words:?}");
        }
        for token in &tokens {
            assert_eq!(&text[token.offset_from..token.offset_to], token.text);
        }
    }

    #[test]
    fn punctuation_is_dropped_and_ascii_lower_cased() {
        let jieba = jieba();
        let tokens = index_tokens(&jieba, "《AI 创新》—— 申报！");
        let words: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        assert!(words.contains(&"ai"), "{words:?}");
        assert!(
            words.iter().all(|w| w.chars().any(char::is_alphanumeric)),
            "{words:?}"
        );
        let words = query_words(&jieba, "（（ \" AND");
        assert_eq!(words.len(), 1);
        assert_eq!(words[0].word, "and");
        assert!(query_words(&jieba, "（（ \"！").is_empty());
    }

    #[test]
    fn query_words_carry_their_parts() {
        let jieba = jieba();
        let words = query_words(&jieba, "社会保障 社会保障 财政局");
        let found: Vec<(&str, Vec<&str>)> = words
            .iter()
            .map(|w| {
                (
                    w.word.as_str(),
                    w.parts.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("社会保障", vec!["社会", "保障"]),
                ("财政局", vec!["财政", "政局"])
            ]
        );
    }

    #[test]
    fn highlight_tokens_only_grow_and_cover_the_text() {
        let words = [
            "人力资源".to_string(),
            "gpu".to_string(),
            "人力".to_string(),
        ];
        let tokenizer = HighlightTokenizer::new(&words);
        let text = "区人力资源社会保障局与GPU厂商、人力公司";
        let tokens = highlight_tokens(&tokenizer.words, text);
        let mut end = 0;
        for token in &tokens {
            assert_eq!(token.offset_from, end);
            assert!(token.offset_to > token.offset_from);
            end = token.offset_to;
        }
        assert_eq!(end, text.len());
        let matched: Vec<&str> = tokens
            .iter()
            .filter(|t| !t.text.is_empty())
            .map(|t| &text[t.offset_from..t.offset_to])
            .collect();
        assert_eq!(matched, ["人力资源", "GPU", "人力"]);
    }
}
