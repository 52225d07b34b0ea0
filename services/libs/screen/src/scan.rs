//! The personal-data scanners. Each works on the folded text (full-width forms already
//! mapped to ASCII, one char for one char) and returns char-offset spans.

use crate::{Kind, Span, checks};

/// Every resident ID, bank card, mobile, credit code and email in `t`, without overlaps
/// between them (see the crate docs for which kind wins), in no particular order.
pub(crate) fn personal(t: &[char]) -> Vec<Span> {
    let numbers = numbers(t);
    // Which number (index + 1) each char is part of; the scanners' spans do not overlap
    // within a scanner, so one slot per char is enough, and all of this stays linear.
    let mut owner = vec![0usize; t.len()];
    for (i, s) in numbers.iter().enumerate() {
        owner[s.start..s.end].fill(i + 1);
    }
    let mut dropped = vec![false; numbers.len()];
    let mut found = Vec::new();
    for code in credit_codes(t) {
        let under: Vec<usize> = owner[code.start..code.end]
            .iter()
            .filter(|&&o| o > 0)
            .map(|o| o - 1)
            .collect();
        if under.iter().any(|&i| numbers[i].kind == Kind::ResidentId) {
            continue;
        }
        for i in under {
            dropped[i] = true;
        }
        found.push(code);
    }
    found.extend(
        numbers
            .into_iter()
            .zip(dropped)
            .filter_map(|(s, dropped)| (!dropped).then_some(s)),
    );
    let emails = emails(t);
    let mut email_at = vec![0usize; t.len()];
    for (i, e) in emails.iter().enumerate() {
        email_at[e.start..e.end].fill(i + 1);
    }
    found.retain(|s| email_at[s.start] == 0 || email_at[s.start] != email_at[s.end - 1]);
    found.extend(emails);
    found
}

fn digit(t: &[char], i: usize) -> bool {
    t.get(i).is_some_and(char::is_ascii_digit)
}

/// Whether the digits starting at `start` continue digits before them, through `sep` or a
/// decimal point (`0.13812345678` is a fraction, not a mobile).
fn continued_before(t: &[char], start: usize, sep: Option<char>) -> bool {
    start >= 2 && (t[start - 1] == '.' || Some(t[start - 1]) == sep) && digit(t, start - 2)
}

/// Whether the digits ending at `end` go on after it, through `sep` or a decimal point.
fn continued_after(t: &[char], end: usize, sep: Option<char>) -> bool {
    t.get(end).is_some_and(|&c| c == '.' || Some(c) == sep) && digit(t, end + 1)
}

/// The maximal runs of ASCII digits, as `(start, end)`.
fn digit_groups(t: &[char]) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i].is_ascii_digit() {
            let start = i;
            while digit(t, i) {
                i += 1;
            }
            groups.push((start, i));
        } else {
            i += 1;
        }
    }
    groups
}

/// Resident IDs, bank cards and mobiles: at each digit group, left to right, the first of
/// those that starts there; the groups it uses are not looked at again.
fn numbers(t: &[char]) -> Vec<Span> {
    let groups = digit_groups(t);
    let mut found: Vec<Span> = Vec::new();
    let mut gi = 0;
    while gi < groups.len() {
        let floor = found.last().map_or(0, |s| s.end);
        match number_at(t, &groups, gi, floor) {
            Some((span, used)) => {
                found.push(span);
                gi += used;
            }
            None => gi += 1,
        }
    }
    found
}

/// The number starting at digit group `gi` and how many groups it uses; a mobile's `+86`
/// prefix may reach back before the group, but not before `floor`.
fn number_at(
    t: &[char],
    groups: &[(usize, usize)],
    gi: usize,
    floor: usize,
) -> Option<(Span, usize)> {
    let (s, e) = groups[gi];
    resident_id(t, s, e)
        .or_else(|| contiguous_card(t, s, e))
        .or_else(|| contiguous_mobile(t, s, e, floor))
        .map(|span| (span, 1))
        .or_else(|| grouped_card(t, groups, gi))
        .or_else(|| grouped_mobile(t, groups, gi, floor))
}

fn is_x(c: Option<&char>) -> bool {
    matches!(c, Some('X' | 'x'))
}

/// 18 digits, or 17 and `X`, not touching another digit or `X`, that pass
/// [`checks::resident_id_valid`].
fn resident_id(t: &[char], s: usize, e: usize) -> Option<Span> {
    let end = match e - s {
        18 => e,
        17 if is_x(t.get(e)) => e + 1,
        _ => return None,
    };
    if (s > 0 && is_x(t.get(s - 1))) || is_x(t.get(end)) || digit(t, end) {
        return None;
    }
    if continued_before(t, s, None) || continued_after(t, end, None) {
        return None;
    }
    let id: String = t[s..end].iter().collect();
    checks::resident_id_valid(&id).then_some(Span::new(Kind::ResidentId, s, end))
}

/// 16–19 digits in one run passing Luhn (a resident ID has been ruled out before).
fn contiguous_card(t: &[char], s: usize, e: usize) -> Option<Span> {
    if !(16..=19).contains(&(e - s)) || is_x(t.get(e)) {
        return None;
    }
    if continued_before(t, s, None) || continued_after(t, e, None) {
        return None;
    }
    let digits: String = t[s..e].iter().collect();
    checks::luhn_valid(&digits).then_some(Span::new(Kind::BankCard, s, e))
}

/// `6222 0212 3456 7890 128` or with dashes: groups of four joined by one and the same
/// separator, the last of one to four, 16–19 digits in all, passing Luhn.
fn grouped_card(t: &[char], groups: &[(usize, usize)], gi: usize) -> Option<(Span, usize)> {
    let (s, e) = groups[gi];
    let sep = *t.get(e)?;
    if e - s != 4 || !matches!(sep, ' ' | '-') || continued_before(t, s, Some(sep)) {
        return None;
    }
    let mut j = gi;
    while groups[j].1 - groups[j].0 == 4
        && j + 1 < groups.len()
        && groups[j + 1].0 == groups[j].1 + 1
        && t[groups[j].1] == sep
    {
        j += 1;
    }
    let end = groups[j].1;
    let used = j - gi + 1;
    if used < 4 || continued_after(t, end, Some(sep)) {
        return None;
    }
    let digits: String = groups[gi..=j].iter().flat_map(|&(a, b)| &t[a..b]).collect();
    ((16..=19).contains(&digits.len()) && checks::luhn_valid(&digits))
        .then_some((Span::new(Kind::BankCard, s, end), used))
}

/// Eleven digits `1[3-9]…`: a mainland mobile number.
fn mobile_shaped(d: &[char]) -> bool {
    d.len() == 11 && d.iter().all(char::is_ascii_digit) && d[0] == '1' && matches!(d[1], '3'..='9')
}

/// `13812345678`, `8613812345678`, `+8613812345678`, `008613812345678`, and the first of
/// these after a separated prefix (`+86 13812345678`).
fn contiguous_mobile(t: &[char], s: usize, e: usize, floor: usize) -> Option<Span> {
    let national = match e - s {
        11 => s,
        13 if t[s..s + 2] == ['8', '6'] => s + 2,
        15 if t[s..s + 4] == ['0', '0', '8', '6'] => s + 4,
        _ => return None,
    };
    if !mobile_shaped(&t[national..e])
        || continued_before(t, s, None)
        || continued_after(t, e, None)
    {
        return None;
    }
    let start = match e - s {
        11 => prefix_before(t, s, floor).unwrap_or(s),
        13 if s > floor && t[s - 1] == '+' => s - 1,
        _ => s,
    };
    Some(Span::new(Kind::Mobile, start, e))
}

/// `138 1234 5678` or `138-1234-5678` (one and the same separator), optionally after a
/// country prefix.
fn grouped_mobile(
    t: &[char],
    groups: &[(usize, usize)],
    gi: usize,
    floor: usize,
) -> Option<(Span, usize)> {
    let [(s0, e0), (s1, e1), (s2, e2)] = <[_; 3]>::try_from(groups.get(gi..gi + 3)?).ok()?;
    let sep = t[e0];
    if e0 - s0 != 3 || e1 - s1 != 4 || e2 - s2 != 4 || !matches!(sep, ' ' | '-') {
        return None;
    }
    if s1 != e0 + 1 || s2 != e1 + 1 || t[e1] != sep || continued_after(t, e2, Some(sep)) {
        return None;
    }
    let digits: Vec<char> = [(s0, e0), (s1, e1), (s2, e2)]
        .iter()
        .flat_map(|&(a, b)| t[a..b].iter().copied())
        .collect();
    if !mobile_shaped(&digits) {
        return None;
    }
    let start = match prefix_before(t, s0, floor) {
        Some(p) => p,
        None if continued_before(t, s0, Some(sep)) => return None,
        None => s0,
    };
    Some((Span::new(Kind::Mobile, start, e2), 3))
}

/// Where a country prefix ending just before the national number at `s` starts: `86`,
/// `+86` or `0086`, optionally in parentheses, then one space or dash. `None` without one,
/// when it would start before `floor`, or when a digit precedes it (`10086` is a hotline).
fn prefix_before(t: &[char], s: usize, floor: usize) -> Option<usize> {
    let mut p = s;
    if p > 0 && matches!(t[p - 1], ' ' | '-') {
        p -= 1;
    }
    let paren = p > 0 && t[p - 1] == ')';
    if paren {
        p -= 1;
    }
    if p < 2 || t[p - 2..p] != ['8', '6'] {
        return None;
    }
    p -= 2;
    if p > 0 && t[p - 1] == '+' {
        p -= 1;
    } else if p >= 2 && t[p - 2..p] == ['0', '0'] {
        p -= 2;
    }
    if paren {
        if p > 0 && t[p - 1] == '(' {
            p -= 1;
        } else {
            return None;
        }
    }
    (p < s && p >= floor && !(p > 0 && digit(t, p - 1))).then_some(p)
}

/// Maximal runs of exactly 18 ASCII letters and digits that pass
/// [`checks::credit_code_valid`].
fn credit_codes(t: &[char]) -> Vec<Span> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if !t[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < t.len() && t[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i - start == 18 {
            let code: String = t[start..i].iter().collect();
            if checks::credit_code_valid(&code) {
                found.push(Span::new(Kind::CreditCode, start, i));
            }
        }
    }
    found
}

fn local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-')
}

/// `local@domain.tld`: the longest ASCII local part before each `@` (leading dots
/// dropped), and the domain after it (trailing dots and dashes dropped) when that is at
/// least two labels of letters, digits and inner dashes with an alphabetic top-level
/// label of two or more letters. Anything else — CJK punctuation included — ends it.
fn emails(t: &[char]) -> Vec<Span> {
    let mut found = Vec::new();
    let mut floor = 0;
    for at in 0..t.len() {
        if t[at] != '@' || at < floor {
            continue;
        }
        let mut start = at;
        while start > floor && local_char(t[start - 1]) {
            start -= 1;
        }
        while start < at && t[start] == '.' {
            start += 1;
        }
        let mut end = at + 1;
        while end < t.len() && domain_char(t[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(t[end - 1], '.' | '-') {
            end -= 1;
        }
        if start < at && domain_valid(&t[at + 1..end]) {
            found.push(Span::new(Kind::Email, start, end));
            floor = end;
        }
    }
    found
}

fn domain_valid(d: &[char]) -> bool {
    let labels: Vec<&[char]> = d.split(|c| *c == '.').collect();
    let label = |l: &&[char]| {
        (1..=63).contains(&l.len()) && l.first() != Some(&'-') && l.last() != Some(&'-')
    };
    labels.len() >= 2
        && labels.iter().all(label)
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.iter().all(char::is_ascii_alphabetic))
}
