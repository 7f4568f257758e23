//! `SELECT` / `EXAMINE mailbox [(CONDSTORE | QRESYNC (uidvalidity modseq [uids] [(seqs uids)]))]`
//! (RFC 9051 §6.3.2, RFC 7162 §3.1.8 and §3.2.5).

use super::Cursor;
use crate::proto::command::{CommandBody, Qresync, SelectParams};
use crate::proto::error::ProtoError;

pub(crate) fn parse(c: &mut Cursor<'_>, examine: bool) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut params = SelectParams::default();
    if c.eat(b' ') {
        c.expect(b'(', "'(' before select parameters")?;
        loop {
            let name = c.keyword()?;
            match name.as_str() {
                "CONDSTORE" => params.condstore = true,
                "QRESYNC" => {
                    c.sp()?;
                    params.qresync = Some(qresync(c)?);
                }
                _ => return Err(c.err("CONDSTORE or QRESYNC")),
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(if examine {
        CommandBody::Examine { mailbox, params }
    } else {
        CommandBody::Select { mailbox, params }
    })
}

fn qresync(c: &mut Cursor<'_>) -> Result<Qresync, ProtoError> {
    c.expect(b'(', "'(' before QRESYNC parameters")?;
    let uidvalidity = c.nz_number()?.get();
    c.sp()?;
    let at = c.pos();
    let modseq = c.number64()?;
    if modseq == 0 {
        return Err(ProtoError::NumberRange { at });
    }
    let mut known_uids = None;
    let mut seq_match = None;
    if c.eat(b' ') {
        if c.peek() != Some(b'(') {
            known_uids = Some(c.sequence_set()?);
            if c.eat(b' ') {
                seq_match = Some(seq_match_data(c)?);
            }
        } else {
            seq_match = Some(seq_match_data(c)?);
        }
    }
    c.expect(b')', "')' after QRESYNC parameters")?;
    Ok(Qresync {
        uidvalidity,
        modseq,
        known_uids,
        seq_match,
    })
}

fn seq_match_data(
    c: &mut Cursor<'_>,
) -> Result<
    (
        crate::proto::types::SequenceSet,
        crate::proto::types::SequenceSet,
    ),
    ProtoError,
> {
    c.expect(b'(', "'(' before seq-match-data")?;
    let seqs = c.sequence_set()?;
    c.sp()?;
    let uids = c.sequence_set()?;
    c.expect(b')', "')' after seq-match-data")?;
    Ok((seqs, uids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, parse_command_bytes};

    fn p(s: &str) -> Result<CommandBody, crate::proto::command::Rejected> {
        parse_command_bytes(s.as_bytes(), ParseOptions::default()).map(|c| c.body)
    }

    #[test]
    fn select() {
        let CommandBody::Select { mailbox, params } = p("A142 SELECT INBOX\r\n").unwrap() else {
            panic!()
        };
        assert!(mailbox.is_inbox());
        assert_eq!(params, SelectParams::default());
        let CommandBody::Examine { params, .. } =
            p("a EXAMINE blurdybloop (CONDSTORE)\r\n").unwrap()
        else {
            panic!()
        };
        assert!(params.condstore);
        let CommandBody::Select { params, .. } =
            p("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n")
                .unwrap()
        else {
            panic!()
        };
        let q = params.qresync.unwrap();
        assert_eq!(q.uidvalidity, 67890007);
        assert_eq!(q.modseq, 20050715194045000);
        assert_eq!(q.known_uids.unwrap().to_string(), "41,43:211,214:541");
        let CommandBody::Select { params, .. } = p(
            "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))\r\n",
        )
        .unwrap() else {
            panic!()
        };
        assert!(params.qresync.unwrap().seq_match.is_some());
        assert!(p("a SELECT INBOX (FOO)\r\n").is_err());
        assert!(p("a SELECT INBOX (QRESYNC (0 1))\r\n").is_err());
        assert!(p("a SELECT\r\n").is_err());
        assert!(p("a SELECT INBOX ()\r\n").is_err());
    }
}
