//! The configured forbidden words and their search.

use std::collections::{HashMap, HashSet};

use crate::{Kind, Span, fold};

/// The words, folded (full-width forms to ASCII, ASCII lower-cased), indexed by their
/// first char, longest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Words {
    words: Vec<Vec<char>>,
    by_first: HashMap<char, Vec<usize>>,
}

/// How words and text are compared: full-width forms folded, ASCII case ignored.
pub(crate) fn key(c: char) -> char {
    fold(c).to_ascii_lowercase()
}

impl Words {
    pub(crate) fn new(list: &[String]) -> Result<Self, String> {
        let mut seen = HashSet::new();
        let mut words = Vec::new();
        for (i, word) in list.iter().enumerate() {
            let word = word.trim();
            if word.is_empty() {
                return Err(format!(
                    "forbidden_words[{i}]: a forbidden word cannot be empty or only whitespace"
                ));
            }
            let folded: Vec<char> = word.chars().map(key).collect();
            if seen.insert(folded.clone()) {
                words.push(folded);
            }
        }
        let mut by_first: HashMap<char, Vec<usize>> = HashMap::new();
        for (i, word) in words.iter().enumerate() {
            by_first.entry(word[0]).or_default().push(i);
        }
        for list in by_first.values_mut() {
            list.sort_by_key(|&i| std::cmp::Reverse(words[i].len()));
        }
        Ok(Self { words, by_first })
    }

    /// At every position of `t` (already passed through [`key`]), the longest word
    /// starting there.
    pub(crate) fn find(&self, t: &[char]) -> Vec<Span> {
        let mut found = Vec::new();
        if self.words.is_empty() {
            return found;
        }
        for (i, c) in t.iter().enumerate() {
            let Some(candidates) = self.by_first.get(c) else {
                continue;
            };
            if let Some(word) = candidates
                .iter()
                .map(|&w| &self.words[w])
                .find(|w| t[i..].starts_with(w))
            {
                found.push(Span::new(Kind::ForbiddenWord, i, i + word.len()));
            }
        }
        found
    }
}
