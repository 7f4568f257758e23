//! `AUTHENTICATE mechanism [initial-response]` (RFC 9051 §6.2.2, SASL-IR RFC 4959) and
//! `LOGIN user password`. The SASL exchange after the command is the session's; it reads the
//! client's lines with [`crate::proto::command::parse_auth_response`].

use super::Cursor;
use crate::proto::command::CommandBody;
use crate::proto::error::ProtoError;

pub(crate) fn authenticate(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let mechanism = c.keyword()?;
    let initial_response = if c.eat(b' ') {
        if c.eat(b'=') {
            Some(Vec::new())
        } else {
            let at = c.pos();
            let mut v = Vec::new();
            while let Some(b) = c
                .peek()
                .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            {
                v.push(b);
                c.skip(1);
            }
            if v.is_empty() {
                return Err(ProtoError::Syntax {
                    at,
                    expected: "base64 initial response or '='",
                });
            }
            Some(v)
        }
    } else {
        None
    };
    Ok(CommandBody::Authenticate {
        mechanism,
        initial_response,
    })
}

pub(crate) fn login(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let username = c.astring()?;
    c.sp()?;
    let password = c.astring()?;
    Ok(CommandBody::Login { username, password })
}

#[cfg(test)]
mod tests {
    use crate::proto::command::{CommandBody, ParseOptions, parse_command_bytes};

    fn p(s: &[u8]) -> Result<CommandBody, crate::proto::command::Rejected> {
        parse_command_bytes(s, ParseOptions::default()).map(|c| c.body)
    }

    #[test]
    fn authenticate() {
        assert_eq!(
            p(b"a AUTHENTICATE plain\r\n").unwrap(),
            CommandBody::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: None
            }
        );
        assert_eq!(
            p(b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n").unwrap(),
            CommandBody::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: Some(b"AGFsaWNlAHNlY3JldA==".to_vec())
            }
        );
        assert_eq!(
            p(b"a AUTHENTICATE EXTERNAL =\r\n").unwrap(),
            CommandBody::Authenticate {
                mechanism: "EXTERNAL".into(),
                initial_response: Some(vec![])
            }
        );
        assert!(p(b"a AUTHENTICATE PLAIN !!\r\n").is_err());
        assert!(p(b"a AUTHENTICATE\r\n").is_err());
    }

    #[test]
    fn login() {
        assert_eq!(
            p(b"a001 LOGIN SMITH SESAME\r\n").unwrap(),
            CommandBody::Login {
                username: b"SMITH".to_vec(),
                password: b"SESAME".to_vec()
            }
        );
        assert_eq!(
            p(b"a LOGIN \"fred foo\" {5}\r\np\xc3\xa4ss\r\n").unwrap(),
            CommandBody::Login {
                username: b"fred foo".to_vec(),
                password: "p\u{e4}ss".as_bytes().to_vec()
            }
        );
        assert!(p(b"a LOGIN fred\r\n").is_err());
        assert!(p(b"a LOGIN fred  pw\r\n").is_err());
        assert!(p(b"a LOGIN fred pw extra\r\n").is_err());
    }
}
