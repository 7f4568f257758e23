//! Modified UTF-7 (RFC 3501 §5.1.3), the mailbox-name encoding of IMAP clients that have not
//! enabled `UTF8=ACCEPT`.
//!
//! Herald keeps mailbox names as UTF-8 everywhere; this codec sits at the protocol edge only.
//! Decoding is strict (the RFC says a name "MUST" be in this form): printable ASCII must not be
//! shifted, a shift must not be empty or leave non-zero padding bits, and the UTF-16 inside must
//! be well formed — otherwise two spellings would name one mailbox.

use super::error::ProtoError;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

/// Encodes a UTF-8 mailbox name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut units: Vec<u16> = Vec::new();
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut units, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush(&mut units, &mut out);
    out
}

fn flush(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &u in units.iter() {
        acc = (acc << 16) | u32::from(u);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(B64[((acc >> bits) & 0x3f) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(B64[((acc << (6 - bits)) & 0x3f) as usize]));
    }
    out.push('-');
    units.clear();
}

/// Decodes a modified UTF-7 mailbox name (7-bit bytes) into UTF-8.
pub fn decode(name: &[u8]) -> Result<String, ProtoError> {
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if !(0x20..=0x7e).contains(&b) {
            return Err(ProtoError::BadMailboxName);
        }
        if b != b'&' {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        // A shift: "&-" is a literal '&', otherwise base64 until '-'.
        let end = name[i + 1..]
            .iter()
            .position(|&c| c == b'-')
            .map(|p| i + 1 + p)
            .ok_or(ProtoError::BadMailboxName)?;
        let body = &name[i + 1..end];
        if body.is_empty() {
            out.push('&');
        } else {
            decode_shift(body, &mut out)?;
        }
        i = end + 1;
    }
    Ok(out)
}

fn decode_shift(body: &[u8], out: &mut String) -> Result<(), ProtoError> {
    let mut units = Vec::with_capacity(body.len() * 6 / 16);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in body {
        let v = b64_value(c).ok_or(ProtoError::BadMailboxName)?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 16 {
            bits -= 16;
            units.push(((acc >> bits) & 0xffff) as u16);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits are padding: fewer than 6 of them, and all zero.
    if bits >= 6 || acc != 0 || units.is_empty() {
        return Err(ProtoError::BadMailboxName);
    }
    for r in char::decode_utf16(units.iter().copied()) {
        let ch = r.map_err(|_| ProtoError::BadMailboxName)?;
        // Printable ASCII must be written directly, never shifted.
        if (' '..='~').contains(&ch) {
            return Err(ProtoError::BadMailboxName);
        }
        out.push(ch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3501_example() {
        // RFC 3501 §5.1.3: "~peter/mail/台北/日本語".
        let wire = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        let utf8 = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        assert_eq!(decode(wire.as_bytes()).unwrap(), utf8);
        assert_eq!(encode(utf8), wire);
    }

    #[test]
    fn ampersand_and_plain() {
        assert_eq!(decode(b"Tom &- Jerry").unwrap(), "Tom & Jerry");
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(encode("INBOX"), "INBOX");
        // RFC 2152-style examples adapted to the modified form.
        assert_eq!(encode("Entw\u{fc}rfe"), "Entw&APw-rfe");
        assert_eq!(decode(b"Entw&APw-rfe").unwrap(), "Entw\u{fc}rfe");
        // Astral plane: a surrogate pair.
        assert_eq!(
            decode(encode("a\u{1F600}b").as_bytes()).unwrap(),
            "a\u{1F600}b"
        );
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            &b"&"[..],
            b"&U,BTFw",     // unterminated
            b"&AGE-",       // shifted printable 'a'
            b"&U,BTF-",     // non-zero / too many padding bits
            b"&2D0-",       // lone surrogate
            b"&*-",         // not base64
            b"caf\xc3\xa9", // 8-bit
            b"&U/BTFw-",    // '/' is not in the modified alphabet
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #[test]
        fn round_trip(s in "\\PC{0,24}") {
            let enc = encode(&s);
            prop_assert!(enc.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert_eq!(decode(enc.as_bytes()).unwrap(), s);
        }
    }
}
