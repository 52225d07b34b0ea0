//! An independent DKIM verifier for the tests (RFC 6376 with `relaxed` canonicalization,
//! Ed25519-SHA256 per RFC 8463), written from the RFCs rather than from the signer's code,
//! so a signature that a receiver would reject fails here too.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// Why a message did not verify.
pub type Failure = String;

/// The tags of the message's `DKIM-Signature` header that the tests look at.
#[derive(Debug)]
pub struct Verified {
    pub domain: String,
    pub selector: String,
    /// Signed header names, lower case, as listed in `h=`.
    pub headers: Vec<String>,
}

/// `raw` with every line ending as CRLF (a dump may store LF).
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    for (i, b) in raw.iter().enumerate() {
        if *b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}

/// The header fields (each with its continuation lines, without the final CRLF) and the
/// body.
fn split(message: &[u8]) -> Result<(Vec<String>, &[u8]), Failure> {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&message[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = fields.last_mut().ok_or("continuation before any header")?;
            last.push_str("\r\n");
            last.push_str(line);
        } else {
            fields.push(line.to_string());
        }
    }
    Ok((fields, &message[end + 4..]))
}

/// RFC 6376 3.4.2: relaxed header canonicalization of one field.
fn relaxed_header(field: &str) -> Result<String, Failure> {
    let (name, value) = field.split_once(':').ok_or("a header without a colon")?;
    let unfolded = value.replace("\r\n", "");
    let mut compact = String::with_capacity(unfolded.len());
    let mut space = false;
    for c in unfolded.chars() {
        if c == ' ' || c == '\t' {
            space = true;
        } else {
            if space && !compact.is_empty() {
                compact.push(' ');
            }
            space = false;
            compact.push(c);
        }
    }
    Ok(format!(
        "{}:{}\r\n",
        name.trim_end().to_ascii_lowercase(),
        compact
    ))
}

/// RFC 6376 3.4.4: relaxed body canonicalization.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let text = body.strip_suffix(b"\r\n").unwrap_or(body);
    for line in text.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut out = Vec::with_capacity(line.len());
        let mut space = false;
        for b in line {
            if *b == b' ' || *b == b'\t' {
                space = true;
            } else {
                if space {
                    out.push(b' ');
                }
                space = false;
                out.push(*b);
            }
        }
        lines.push(out);
    }
    while lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The `tag=value` pairs of a DKIM-Signature value, whitespace removed from values.
fn tags(value: &str) -> Vec<(String, String)> {
    value
        .split(';')
        .filter_map(|pair| {
            let (tag, value) = pair.split_once('=')?;
            let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
            Some((tag.trim().to_string(), value))
        })
        .collect()
}

/// The `p=` of a DKIM TXT record (`… IN TXT "v=DKIM1; k=ed25519; p=…"`).
pub fn public_key(record: &str) -> Result<VerifyingKey, Failure> {
    let txt = record
        .split_once('"')
        .map(|(_, rest)| rest.trim_end().trim_end_matches('"'))
        .ok_or("no quoted TXT value")?;
    let tags = tags(txt);
    let get = |t: &str| tags.iter().find(|(k, _)| k == t).map(|(_, v)| v.as_str());
    if get("v") != Some("DKIM1") || get("k") != Some("ed25519") {
        return Err(format!("not an Ed25519 DKIM1 record: {record}"));
    }
    let bytes: [u8; 32] = STANDARD
        .decode(get("p").ok_or("no p=")?)
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "p= is not 32 bytes")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| e.to_string())
}

/// Verifies the (last) `DKIM-Signature` of `raw` against `key`.
pub fn verify(raw: &[u8], key: &VerifyingKey) -> Result<Verified, Failure> {
    let message = crlf(raw);
    let (fields, body) = split(&message)?;
    let is = |field: &str, name: &str| {
        field
            .split_once(':')
            .is_some_and(|(n, _)| n.trim_end().eq_ignore_ascii_case(name))
    };
    let signature_field = fields
        .iter()
        .rev()
        .find(|f| is(f, "DKIM-Signature"))
        .ok_or("no DKIM-Signature header")?;
    let value = signature_field
        .split_once(':')
        .map(|(_, v)| v)
        .unwrap_or("");
    let tags = tags(&value.replace("\r\n", ""));
    let get = |t: &str| {
        tags.iter()
            .find(|(k, _)| k == t)
            .map(|(_, v)| v.clone())
            .ok_or(format!("no {t}= tag"))
    };
    if get("v")? != "1" {
        return Err("v= is not 1".into());
    }
    if get("a")? != "ed25519-sha256" {
        return Err(format!("a={} is not ed25519-sha256", get("a")?));
    }
    if get("c")? != "relaxed/relaxed" {
        return Err(format!("c={} is not relaxed/relaxed", get("c")?));
    }
    // The body hash.
    let body_hash = STANDARD.encode(Sha256::digest(relaxed_body(body)));
    if body_hash != get("bh")? {
        return Err("the body hash does not match (the body changed)".into());
    }
    // The signed headers: for each name in h=, the last instance not used yet.
    let names: Vec<String> = get("h")?
        .split(':')
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    let mut used = vec![false; fields.len()];
    let mut input = String::new();
    for name in &names {
        if let Some(i) = (0..fields.len())
            .rev()
            .find(|i| !used[*i] && is(&fields[*i], name) && !is(&fields[*i], "DKIM-Signature"))
        {
            used[i] = true;
            input.push_str(&relaxed_header(&fields[i])?);
        }
    }
    // The signature header itself, with the value of b= emptied and no final CRLF.
    let (name, value) = signature_field.split_once(':').ok_or("no colon")?;
    let emptied: Vec<String> = value
        .split(';')
        .map(|segment| match segment.split_once('=') {
            Some((tag, _)) if tag.trim() == "b" => format!("{tag}="),
            _ => segment.to_string(),
        })
        .collect();
    let unsigned = format!("{name}:{}", emptied.join(";"));
    let canonical = relaxed_header(&unsigned)?;
    input.push_str(canonical.trim_end_matches("\r\n"));
    let hash = Sha256::digest(input.as_bytes());
    let signature = Signature::from_slice(
        &STANDARD
            .decode(get("b")?)
            .map_err(|e| format!("b= is not base64: {e}"))?,
    )
    .map_err(|e| e.to_string())?;
    key.verify_strict(&hash, &signature)
        .map_err(|_| "the signature does not verify (a signed header changed)".to_string())?;
    Ok(Verified {
        domain: get("d")?,
        selector: get("s")?,
        headers: names,
    })
}

#[test]
fn relaxed_canonicalization_follows_rfc_6376_examples() {
    // RFC 6376 3.4.6, relaxed: "A: X", "B : Y\t\r\n\tZ  " → "a:X", "b:Y Z".
    assert_eq!(relaxed_header("A: X").expect("field"), "a:X\r\n");
    assert_eq!(
        relaxed_header("B : Y\t\r\n\tZ  ").expect("field"),
        "b:Y Z\r\n"
    );
    assert_eq!(
        relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"),
        b" C\r\nD E\r\n".to_vec()
    );
}
