//! `ENABLE capability…` (RFC 5161): names are atoms, upper-cased for comparison.

use super::Cursor;
use crate::proto::command::CommandBody;
use crate::proto::error::ProtoError;

pub(crate) fn parse(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    let mut caps = Vec::new();
    while c.eat(b' ') {
        caps.push(c.keyword()?);
    }
    if caps.is_empty() {
        return Err(c.err("capability name"));
    }
    Ok(CommandBody::Enable(caps))
}

#[cfg(test)]
mod tests {
    use crate::proto::command::{CommandBody, ParseOptions, parse_command_bytes};

    #[test]
    fn enable() {
        let c = parse_command_bytes(
            b"t ENABLE condstore UTF8=ACCEPT IMAP4rev2\r\n",
            ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(
            c.body,
            CommandBody::Enable(vec![
                "CONDSTORE".into(),
                "UTF8=ACCEPT".into(),
                "IMAP4REV2".into()
            ])
        );
        assert!(parse_command_bytes(b"t ENABLE\r\n", ParseOptions::default()).is_err());
    }
}
