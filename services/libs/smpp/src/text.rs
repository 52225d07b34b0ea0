//! Text to SMS: UCS-2 encoding and splitting into concatenated segments. Pure, no I/O.
//!
//! Chinese text needs UCS-2 (`data_coding` 8): one SMS carries 140 octets, 70 UTF-16
//! units. A longer text is sent as parts of at most 67 units, each behind a 6-octet user
//! data header `05 00 03 ref total seq` (IEI 0x00, concatenation with an 8-bit reference)
//! with UDHI (`esm_class` 0x40) set, which the handset joins by `ref`. A character outside
//! the BMP is a surrogate pair (two units) and never split between parts.

/// `data_coding` for UCS-2 (UTF-16BE).
pub const DATA_CODING_UCS2: u8 = 0x08;
/// `esm_class` bit saying `short_message` starts with a user data header.
pub const ESM_CLASS_UDHI: u8 = 0x40;

/// UTF-16 units in one unsegmented UCS-2 SMS (140 octets).
const SINGLE_UNITS: usize = 70;
/// UTF-16 units in one part of a concatenated message (140 octets − 6 of UDH).
const PART_UNITS: usize = 67;

/// The text as UCS-2 for SMPP: UTF-16 big-endian, characters outside the BMP as
/// surrogate pairs.
pub fn encode_ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// One SMS of a message: what goes into a `submit_sm` besides the addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// 0, or [`ESM_CLASS_UDHI`] when `short_message` starts with the concatenation header.
    pub esm_class: u8,
    /// Always [`DATA_CODING_UCS2`].
    pub data_coding: u8,
    /// The UDH (if any) followed by the UCS-2 text; at most 140 octets.
    pub short_message: Vec<u8>,
}

/// The text needs more segments than allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the text needs {needed} SMS segments, more than the {max} allowed")]
pub struct TooLong {
    /// Segments the text would need.
    pub needed: usize,
    /// The limit it was split under.
    pub max: u8,
}

/// Splits `text` into UCS-2 SMS segments: one plain segment up to 70 UTF-16 units,
/// otherwise parts of up to 67 units with an 8-bit-reference concatenation header.
///
/// `reference` ties the parts together on the handset; derive it from something stable
/// (e.g. a hash of the message's id) so that a resend carries the same reference and
/// the handset does not mix parts of two attempts. An empty text is one empty segment.
pub fn segments(text: &str, reference: u8, max_segments: u8) -> Result<Vec<Segment>, TooLong> {
    let units: Vec<u16> = text.encode_utf16().collect();
    if units.len() <= SINGLE_UNITS {
        if max_segments == 0 {
            return Err(TooLong {
                needed: 1,
                max: max_segments,
            });
        }
        return Ok(vec![Segment {
            esm_class: 0,
            data_coding: DATA_CODING_UCS2,
            short_message: encode_ucs2(text),
        }]);
    }
    let parts = split(&units);
    if parts.len() > usize::from(max_segments) {
        return Err(TooLong {
            needed: parts.len(),
            max: max_segments,
        });
    }
    // max_segments is a u8, so the count fits the header's octet.
    let total = parts.len() as u8;
    Ok(parts
        .iter()
        .zip(1..=total)
        .map(|(part, seq)| {
            let mut short_message = Vec::with_capacity(6 + 2 * part.len());
            short_message.extend_from_slice(&[0x05, 0x00, 0x03, reference, total, seq]);
            short_message.extend(part.iter().flat_map(|u| u.to_be_bytes()));
            Segment {
                esm_class: ESM_CLASS_UDHI,
                data_coding: DATA_CODING_UCS2,
                short_message,
            }
        })
        .collect())
}

/// Chunks of at most [`PART_UNITS`] units, ending a chunk early rather than after the
/// high half of a surrogate pair.
fn split(units: &[u16]) -> Vec<&[u16]> {
    let mut parts = Vec::new();
    let mut rest = units;
    while !rest.is_empty() {
        let mut end = rest.len().min(PART_UNITS);
        if end < rest.len() && is_high_surrogate(rest[end - 1]) {
            end -= 1;
        }
        let (part, tail) = rest.split_at(end);
        parts.push(part);
        rest = tail;
    }
    parts
}

fn is_high_surrogate(unit: u16) -> bool {
    (0xD800..=0xDBFF).contains(&unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(segment: &Segment) -> String {
        let text = if segment.esm_class & ESM_CLASS_UDHI != 0 {
            &segment.short_message[6..]
        } else {
            &segment.short_message[..]
        };
        let units: Vec<u16> = text
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).expect("no split surrogate pair")
    }

    #[test]
    fn ucs2_is_utf16_big_endian_with_surrogate_pairs() {
        assert_eq!(encode_ucs2("A中"), vec![0x00, 0x41, 0x4E, 0x2D]);
        assert_eq!(encode_ucs2("😀"), vec![0xD8, 0x3D, 0xDE, 0x00]);
        assert!(encode_ucs2("").is_empty());
    }

    #[test]
    fn seventy_characters_are_one_plain_segment() {
        let text = "政".repeat(70);
        let segs = segments(&text, 9, 1).expect("fits one");
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].esm_class, 0);
        assert_eq!(segs[0].data_coding, DATA_CODING_UCS2);
        assert_eq!(segs[0].short_message.len(), 140);
    }

    #[test]
    fn longer_text_is_split_in_parts_of_67_with_a_concatenation_header() {
        let text = "策".repeat(71);
        let segs = segments(&text, 0xAB, 3).expect("fits two");
        assert_eq!(segs.len(), 2);
        assert_eq!(
            segs[0].short_message[..6],
            [0x05, 0x00, 0x03, 0xAB, 0x02, 0x01]
        );
        assert_eq!(
            segs[1].short_message[..6],
            [0x05, 0x00, 0x03, 0xAB, 0x02, 0x02]
        );
        assert_eq!(segs[0].short_message.len(), 6 + 134);
        assert_eq!(segs[1].short_message.len(), 6 + 8);
        assert!(segs.iter().all(|s| s.esm_class == ESM_CLASS_UDHI));
        let joined: String = segs.iter().map(decode).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn a_surrogate_pair_is_never_split_between_parts() {
        // 66 units, then a pair across the 67-unit boundary.
        let text = format!("{}😀{}", "区".repeat(66), "街".repeat(10));
        let segs = segments(&text, 1, 2).expect("fits two");
        assert_eq!(segs[0].short_message.len(), 6 + 132);
        assert_eq!(segs[1].short_message[6..10], [0xD8, 0x3D, 0xDE, 0x00]);
        let joined: String = segs.iter().map(decode).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn text_needing_more_segments_than_allowed_is_too_long() {
        let text = "杨".repeat(67 * 3 + 1);
        assert_eq!(segments(&text, 1, 3), Err(TooLong { needed: 4, max: 3 }));
        assert_eq!(segments("hi", 1, 0), Err(TooLong { needed: 1, max: 0 }));
        assert_eq!(segments(&text, 1, 4).map(|s| s.len()), Ok(4));
    }
}
