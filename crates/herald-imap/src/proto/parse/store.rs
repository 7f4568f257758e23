//! `[UID] STORE set [(UNCHANGEDSINCE n)] (+|-)FLAGS[.SILENT] (flags | flag…)` (RFC 9051 §6.4.6,
//! RFC 7162 §3.1.3). The flags may be a parenthesised list or, as RFC 3501 allows, bare.

use super::Cursor;
use crate::proto::command::{CommandBody, StoreAction, StoreCommand};
use crate::proto::error::ProtoError;

pub(crate) fn parse(c: &mut Cursor<'_>, uid: bool) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.eat(b'(') {
        if !c.eat_keyword("UNCHANGEDSINCE") {
            return Err(c.err("UNCHANGEDSINCE"));
        }
        c.sp()?;
        unchanged_since = Some(c.number64()?);
        c.expect(b')', "')' after UNCHANGEDSINCE")?;
        c.sp()?;
    }
    let action = if c.eat(b'+') {
        StoreAction::Add
    } else if c.eat(b'-') {
        StoreAction::Remove
    } else {
        StoreAction::Replace
    };
    let silent = if c.eat_keyword("FLAGS") {
        false
    } else if c.eat_keyword("FLAGS.SILENT") {
        true
    } else {
        return Err(c.err("FLAGS or FLAGS.SILENT"));
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        c.flag_list()?
    } else {
        let mut f = vec![c.flag()?];
        while c.eat(b' ') {
            f.push(c.flag()?);
        }
        f
    };
    Ok(CommandBody::Store(StoreCommand {
        uid,
        set,
        unchanged_since,
        action,
        silent,
        flags,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, parse_command_bytes};
    use crate::proto::types::Flag;

    fn p(s: &str) -> Result<StoreCommand, crate::proto::command::Rejected> {
        match parse_command_bytes(s.as_bytes(), ParseOptions::default())?.body {
            CommandBody::Store(s) => Ok(s),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn store() {
        let s = p("A003 STORE 2:4 +FLAGS (\\Deleted)\r\n").unwrap();
        assert_eq!(
            (s.action, s.silent, s.flags),
            (StoreAction::Add, false, vec![Flag::Deleted])
        );
        let s = p("a UID STORE 1,3 -FLAGS.SILENT \\Seen $Junk\r\n").unwrap();
        assert!(s.uid && s.silent);
        assert_eq!(
            (s.action, s.flags),
            (
                StoreAction::Remove,
                vec![Flag::Seen, Flag::Keyword("$Junk".into())]
            )
        );
        let s =
            p("d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n").unwrap();
        assert_eq!(s.unchanged_since, Some(320162338));
        let s = p("a STORE 1 FLAGS ()\r\n").unwrap();
        assert_eq!((s.action, s.flags), (StoreAction::Replace, vec![]));
        for bad in [
            "a STORE 1 +FLAGS\r\n",
            "a STORE 1 *FLAGS (\\Seen)\r\n",
            "a STORE 1 FLAGS.LOUD (\\Seen)\r\n",
            "a STORE 1 (UNCHANGEDSINCE) FLAGS ()\r\n",
            "a STORE 1 FLAGS (\\Seen\r\n",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
