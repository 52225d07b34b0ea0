//! GB/T 4754-2017 国民经济行业分类 (with amendment No. 1 of 2019): a code is a section letter
//! A–T, then the division (2 digits), group (3) or class (4) code; each level lies within
//! the one above (`C3911` ⊂ `C391` ⊂ `C39` ⊂ `C`). [`Industries`] is the table of codes
//! that exist, with their names; [`is_code`] and [`is_within`] are the shape and the
//! hierarchy, which need no table. Provenance of the table: `data/README.md`.

use std::{collections::BTreeMap, sync::Arc};

/// The table as shipped: `code<TAB>name` per line, sorted.
const GBT4754_2017: &str = include_str!("../data/gbt4754-2017.tsv");

/// The codes of the standard that exist, with their names. Cheap to clone: clones share
/// one table.
#[derive(Debug, Clone)]
pub struct Industries(Arc<BTreeMap<&'static str, &'static str>>);

impl Industries {
    /// GB/T 4754-2017 with amendment No. 1 (2019): 20 sections, 97 divisions, 473 groups,
    /// 1,381 classes.
    pub fn gbt4754_2017() -> Self {
        Self(Arc::new(
            GBT4754_2017
                .lines()
                .filter_map(|line| line.split_once('\t'))
                .collect(),
        ))
    }

    /// The name of a code that exists (`I6513` → 应用软件开发), else `None`.
    pub fn name(&self, code: &str) -> Option<&str> {
        self.0.get(code).copied()
    }

    /// Whether `code` exists in the standard (well shaped is not enough: `C99` does not).
    pub fn contains(&self, code: &str) -> bool {
        self.0.contains_key(code)
    }
}

/// Shaped like a code: a section letter A–T alone, or with a 2-digit division, 3-digit
/// group or 4-digit class. Whether it exists: [`Industries::contains`].
pub fn is_code(code: &str) -> bool {
    let mut chars = code.chars();
    let section = chars.next().is_some_and(|c| ('A'..='T').contains(&c));
    let digits = chars.as_str();
    section && matches!(digits.len(), 0 | 2 | 3 | 4) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `code` is shaped like a code and is `ancestor` or lies below it, the way a
/// policy for a division covers its groups and classes: `C3911` is within `C39` and `C`.
pub fn is_within(code: &str, ancestor: &str) -> bool {
    is_code(code) && code.starts_with(ancestor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code one level up (`C3911` → `C391` → `C39` → `C`); a section has none.
    fn parent(code: &str) -> Option<&str> {
        match code.len() {
            5 | 4 => Some(&code[..code.len() - 1]),
            3 => Some(&code[..1]),
            _ => None,
        }
    }

    #[test]
    fn the_table_is_the_whole_standard_and_a_hierarchy() {
        let table = Industries::gbt4754_2017();
        let mut levels = [0; 6];
        for code in table.0.keys() {
            assert!(is_code(code), "{code}");
            levels[code.len()] += 1;
            if let Some(up) = parent(code) {
                assert!(
                    table.contains(up),
                    "{code} lies below {up}, which is missing"
                );
                assert!(is_within(code, up));
            }
        }
        // Sections, divisions, groups, classes (data/README.md).
        assert_eq!(
            [levels[1], levels[3], levels[4], levels[5]],
            [20, 97, 473, 1381]
        );
    }

    #[test]
    fn names_are_looked_up_by_code_and_missing_codes_are_rejected() {
        let table = Industries::gbt4754_2017();
        assert_eq!(table.name("I6513"), Some("应用软件开发"));
        assert_eq!(table.name("I"), Some("信息传输、软件和信息技术服务业"));
        assert_eq!(table.name("I6510"), None, "a group's class, not a code");
        assert!(!table.contains("C99"), "well shaped, but no such division");
        assert!(
            table.contains("S9291") && !table.contains("S9290"),
            "amendment No. 1"
        );
    }

    #[test]
    fn a_code_lies_within_itself_and_every_level_above() {
        for ancestor in ["C", "C39", "C391", "C3911"] {
            assert!(is_within("C3911", ancestor), "{ancestor}");
        }
        assert!(!is_within("C39", "C391"), "above, not within");
        assert!(!is_within("C3811", "C39"));
        assert!(!is_within("C39x", "C39"), "not a code");
        assert!(!is_within("C3", "C"), "one digit is no level");
        for bad in ["", "c39", "U10", "C3", "C39111", "39"] {
            assert!(!is_code(bad), "{bad}");
        }
    }
}
