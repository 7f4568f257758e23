//! `ID` (RFC 2971): `ID NIL` or `ID ("field" "value" …)`, at most 30 pairs, field names up to
//! 30 bytes and values up to 1024 (the RFC's limits, enforced so a client cannot make us
//! allocate without bound).

use super::Cursor;
use crate::proto::command::CommandBody;
use crate::proto::error::ProtoError;

const MAX_PAIRS: usize = 30;

pub(crate) fn parse(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    if c.eat_keyword("NIL") {
        return Ok(CommandBody::Id(None));
    }
    c.expect(b'(', "'(' or NIL")?;
    let mut pairs = Vec::new();
    if !c.eat(b')') {
        loop {
            let at = c.pos();
            let field = c.string_text()?;
            if field.len() > 30 {
                return Err(ProtoError::Syntax {
                    at,
                    expected: "ID field name of at most 30 bytes",
                });
            }
            c.sp()?;
            let at = c.pos();
            let value = match c.nstring()? {
                None => None,
                Some(v) if v.len() <= 1024 => {
                    Some(String::from_utf8(v).map_err(|_| ProtoError::EightBit { at })?)
                }
                Some(_) => {
                    return Err(ProtoError::Syntax {
                        at,
                        expected: "ID value of at most 1024 bytes",
                    });
                }
            };
            pairs.push((field, value));
            if pairs.len() > MAX_PAIRS {
                return Err(ProtoError::Syntax {
                    at,
                    expected: "at most 30 ID pairs",
                });
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(CommandBody::Id(Some(pairs)))
}

#[cfg(test)]
mod tests {
    use crate::proto::command::{CommandBody, ParseOptions, parse_command_bytes};

    fn p(s: &str) -> Result<CommandBody, crate::proto::command::Rejected> {
        parse_command_bytes(s.as_bytes(), ParseOptions::default()).map(|c| c.body)
    }

    #[test]
    fn id() {
        assert_eq!(p("a ID NIL\r\n").unwrap(), CommandBody::Id(None));
        assert_eq!(
            p("a ID (\"name\" \"sodr\" \"version\" NIL)\r\n").unwrap(),
            CommandBody::Id(Some(vec![
                ("name".into(), Some("sodr".into())),
                ("version".into(), None)
            ]))
        );
        assert_eq!(p("a ID ()\r\n").unwrap(), CommandBody::Id(Some(vec![])));
        assert!(p("a ID (\"name\")\r\n").is_err());
        assert!(p("a ID\r\n").is_err());
    }
}
