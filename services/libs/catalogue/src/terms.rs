//! [`Terms`]: a closed list of values a field may take, such as the streets.

use std::fmt;

/// A closed list of values, in the order people see them. Displayed as the values
/// separated by spaces, for messages that say what would have been accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms(&'static [&'static str]);

impl Terms {
    /// The list `values`.
    pub const fn new(values: &'static [&'static str]) -> Self {
        Self(values)
    }

    /// Whether `value` is one of the terms (exactly: no trimming, no case folding).
    pub fn contains(&self, value: &str) -> bool {
        self.0.contains(&value)
    }

    /// The terms, in order.
    pub fn as_slice(&self) -> &'static [&'static str] {
        self.0
    }

    /// How many terms there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Terms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_match_whole_values_and_list_themselves_for_messages() {
        let sizes = Terms::new(&["大", "中", "小", "微"]);
        assert!(sizes.contains("小"));
        assert!(!sizes.contains("小 "));
        assert!(!sizes.contains(""));
        assert_eq!(sizes.to_string(), "大 中 小 微");
    }
}
