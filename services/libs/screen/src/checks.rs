//! The check-digit and shape validators behind the scanners, usable on their own (for
//! instance to validate a single form field).
//!
//! All take the value as written, without separators, and never panic.

/// GB 11643-1999 weights of the first 17 digits (2^(18-i) mod 11).
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each value of the weighted sum mod 11 (ISO 7064 MOD 11-2).
const ID_CHECK: [u8; 11] = *b"10X98765432";

/// Whether `s` is a plausible 18-character resident identity number (公民身份号码,
/// GB 11643-1999): 17 ASCII digits, then a digit or `X`/`x`; a birth date `YYYYMMDD` in
/// characters 7–14 with the year in 1900..=2100 and a real month and day (leap years
/// included); and the ISO 7064 MOD 11-2 check character.
///
/// The 15-digit numbers issued before 1999 are not accepted: they have no check digit, so
/// any 15-digit number would look like one.
pub fn resident_id_valid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let check = b[17].to_ascii_uppercase();
    if !(check.is_ascii_digit() || check == b'X') {
        return false;
    }
    let number = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
    };
    if !date_valid(number(6, 10), number(10, 12), number(12, 14)) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    ID_CHECK[(sum % 11) as usize] == check
}

/// Whether `year`-`month`-`day` is a real date with the year in 1900..=2100.
fn date_valid(year: u32, month: u32, day: u32) -> bool {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1900..=2100).contains(&year) && (1..=days).contains(&day)
}

/// Whether `digits` (ASCII digits only, at least two of them) passes the Luhn check that
/// bank card numbers carry in their last digit.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            match i % 2 {
                0 => d,
                _ if d > 4 => d * 2 - 9,
                _ => d * 2,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The characters of a unified social credit code, in value order (no I, O, S, V, Z).
const CREDIT_CODE_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Registration authorities (登记管理部门码), the first character of a credit code:
/// 1 机构编制, 2 外交, 3 司法行政, 4 文化, 5 民政, 6 旅游, 7 宗教, 8 工会, 9 市场监管（工商）,
/// A 中央军委改革和编制办公室, N 农业, Y 其他.
const REGISTRATION_AUTHORITIES: &[u8] = b"123456789ANY";

/// Whether `s` is a valid unified social credit code (统一社会信用代码, GB 32100-2015):
/// 18 upper-case characters from the 31-character alphabet (digits and letters except
/// I, O, S, V, Z); a known registration authority first; a six-digit administrative
/// division code in characters 3–8; and the check character: with character values
/// c₁…c₁₇ and weights wᵢ = 3^(i−1) mod 31 (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13,
/// 8, 24, 10, 30, 28), the 18th character has value (31 − Σ cᵢwᵢ mod 31) mod 31.
pub fn credit_code_valid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18 || !REGISTRATION_AUTHORITIES.contains(&b[0]) {
        return false;
    }
    if !b[2..8].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let value = |c: &u8| CREDIT_CODE_CHARS.iter().position(|a| a == c);
    let mut sum = 0;
    let mut weight = 1;
    for c in &b[..17] {
        let Some(v) = value(c) else {
            return false;
        };
        sum += v * weight;
        weight = weight * 3 % 31;
    }
    value(&b[17]) == Some((31 - sum % 31) % 31)
}
