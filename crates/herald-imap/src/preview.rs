//! FETCH PREVIEW (RFC 8970): a short plain-text excerpt of a message for list views.
//!
//! mail-parser finds the first text part (or turns the first HTML part into text) and decodes
//! its transfer encoding and charset; this module only shapes the result as the RFC asks:
//! whitespace runs folded to one space, no leading or trailing space, at most
//! [`MAX_CHARS`] characters (Unicode scalar values, not bytes).

use mail_parser::Message;

/// RFC 8970 §3: a preview is at most 256 characters.
pub const MAX_CHARS: usize = 256;

/// How much decoded text is looked at: enough for [`MAX_CHARS`] characters after folding
/// whitespace in any ordinary message, without decoding a whole large body.
const LOOK_AT_BYTES: usize = 16 * 1024;

/// The preview of `msg`; empty when it has no text.
pub fn preview(msg: &Message<'_>) -> String {
    let text = msg.body_preview(LOOK_AT_BYTES).unwrap_or_default();
    fold(&text)
}

/// Folds whitespace (including line breaks) to single spaces, trims, and cuts at
/// [`MAX_CHARS`] characters.
fn fold(text: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            if chars + 1 >= MAX_CHARS {
                break;
            }
            out.push(' ');
            chars += 1;
        }
        for ch in word.chars() {
            if chars == MAX_CHARS {
                return out;
            }
            out.push(ch);
            chars += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(raw: &str) -> String {
        preview(&crate::mime::parse(raw.as_bytes()).unwrap())
    }

    #[test]
    fn folds_whitespace_and_decodes() {
        assert_eq!(
            of("Subject: x\r\n\r\n  Hello\r\n\r\n  there,\tfriend  \r\n"),
            "Hello there, friend"
        );
        assert_eq!(
            of(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nol=C3=A9\r\n"
            ),
            "caf\u{e9} ol\u{e9}"
        );
        assert_eq!(
            of("Content-Type: text/html\r\n\r\n<html><body><p>Hi <b>you</b></p></body></html>\r\n"),
            "Hi you"
        );
        assert_eq!(of("Content-Type: image/png\r\n\r\nxxxx\r\n"), "");
    }

    #[test]
    fn cuts_at_256_characters_not_bytes() {
        let long = "\u{e9}".repeat(300);
        let p = of(&format!(
            "Content-Type: text/plain; charset=utf-8\r\n\r\n{long}\r\n"
        ));
        assert_eq!(p.chars().count(), MAX_CHARS);
        assert!(p.chars().all(|c| c == '\u{e9}'));
        let words = "ab ".repeat(200);
        let p = of(&format!("Subject: x\r\n\r\n{words}\r\n"));
        assert!(p.chars().count() <= MAX_CHARS && !p.ends_with(' '), "{p:?}");
    }
}
