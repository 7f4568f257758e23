//! `[UID] SEARCH [RETURN (…)] [CHARSET c] key…` — every RFC 3501 key, IMAP4rev2 ESEARCH return
//! options (RFC 4731), SEARCHRES `SAVE` and `$` (RFC 5182), CONTEXT's `CONTEXT`, `UPDATE` and
//! `PARTIAL` (RFC 5267 §4, with RFC 9394's negative ranges), the CONDSTORE `MODSEQ`
//! criterion (RFC 7162), and `CANCELUPDATE`. Nesting `(…)`, `NOT` and `OR` recurse, bounded
//! by [`super::MAX_DEPTH`].

use super::Cursor;
use crate::proto::command::{CommandBody, PartialRange, SearchCommand, SearchKey, SearchReturn};
use crate::proto::error::ProtoError;

pub(crate) fn parse(c: &mut Cursor<'_>, uid: bool) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let mut returns = None;
    if c.eat_keyword("RETURN") {
        c.sp()?;
        returns = Some(return_options(c, true)?);
        c.sp()?;
    }
    let mut charset = None;
    if c.eat_keyword("CHARSET") {
        c.sp()?;
        charset = Some(c.astring_text()?.to_ascii_uppercase());
        c.sp()?;
    }
    let mut criteria = vec![key(c)?];
    while c.eat(b' ') {
        criteria.push(key(c)?);
    }
    Ok(CommandBody::Search(SearchCommand {
        uid,
        returns,
        charset,
        criteria,
    }))
}

/// `"(" [opt *(SP opt)] ")"`: RFC 4731's MIN, MAX, ALL and COUNT, RFC 5182's SAVE (SEARCH only:
/// `with_save`), RFC 5267's CONTEXT, UPDATE and PARTIAL. RFC 5267 §4.4 allows one PARTIAL or
/// one ALL, not both; a repeated option is the client's mistake too.
pub(crate) fn return_options(
    c: &mut Cursor<'_>,
    with_save: bool,
) -> Result<Vec<SearchReturn>, ProtoError> {
    c.expect(b'(', "'(' after RETURN")?;
    let mut opts: Vec<SearchReturn> = Vec::new();
    if c.eat(b')') {
        return Ok(opts);
    }
    loop {
        let at = c.pos();
        let o = match c.keyword()?.as_str() {
            "MIN" => SearchReturn::Min,
            "MAX" => SearchReturn::Max,
            "ALL" => SearchReturn::All,
            "COUNT" => SearchReturn::Count,
            "SAVE" if with_save => SearchReturn::Save,
            "CONTEXT" => SearchReturn::Context,
            "UPDATE" => SearchReturn::Update,
            "PARTIAL" => {
                c.sp()?;
                SearchReturn::Partial(partial_range(c)?)
            }
            _ if with_save => {
                return Err(c.err("MIN, MAX, ALL, COUNT, SAVE, CONTEXT, UPDATE or PARTIAL"));
            }
            _ => return Err(c.err("MIN, MAX, ALL, COUNT, CONTEXT, UPDATE or PARTIAL")),
        };
        let clash = |x: &SearchReturn| {
            std::mem::discriminant(x) == std::mem::discriminant(&o)
                || matches!(
                    (x, o),
                    (SearchReturn::All, SearchReturn::Partial(_))
                        | (SearchReturn::Partial(_), SearchReturn::All)
                )
        };
        if opts.iter().any(clash) {
            return Err(ProtoError::Syntax {
                at,
                expected: "at most one of each return option, and PARTIAL or ALL, not both",
            });
        }
        opts.push(o);
        if c.eat(b')') {
            return Ok(opts);
        }
        c.sp()?;
    }
}

/// `partial-range = nz-number ":" nz-number / "-" nz-number ":" "-" nz-number` (RFC 9394).
fn partial_range(c: &mut Cursor<'_>) -> Result<PartialRange, ProtoError> {
    let from_end = c.eat(b'-');
    let first = c.nz_number()?;
    c.expect(b':', "':' in a partial range")?;
    if from_end {
        c.expect(
            b'-',
            "'-' before the second number of a negative partial range",
        )?;
    }
    let last = c.nz_number()?;
    Ok(PartialRange {
        first,
        last,
        from_end,
    })
}

/// `CANCELUPDATE 1*(SP quoted)` (RFC 5267 §4.3.5).
pub(crate) fn cancel_update(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    let mut tags = Vec::new();
    while c.eat(b' ') {
        let at = c.pos();
        let tag = String::from_utf8(c.quoted()?).map_err(|_| ProtoError::EightBit { at })?;
        tags.push(tag);
    }
    if tags.is_empty() {
        return Err(c.err("SP and a quoted tag"));
    }
    Ok(CommandBody::CancelUpdate(tags))
}

fn arg_string(c: &mut Cursor<'_>) -> Result<Vec<u8>, ProtoError> {
    c.sp()?;
    c.astring()
}

fn arg_date(c: &mut Cursor<'_>) -> Result<crate::proto::types::Date, ProtoError> {
    c.sp()?;
    c.date()
}

pub(crate) fn key(c: &mut Cursor<'_>) -> Result<SearchKey, ProtoError> {
    c.enter()?;
    let k = key_inner(c);
    c.leave();
    k
}

fn key_inner(c: &mut Cursor<'_>) -> Result<SearchKey, ProtoError> {
    if c.eat(b'(') {
        let mut keys = vec![key(c)?];
        while c.eat(b' ') {
            keys.push(key(c)?);
        }
        c.expect(b')', "')' after search keys")?;
        return Ok(SearchKey::And(keys));
    }
    if c.at_sequence_set() {
        return Ok(SearchKey::SequenceSet(c.sequence_set()?));
    }
    let name = c.keyword()?;
    Ok(match name.as_str() {
        "ALL" => SearchKey::All,
        "ANSWERED" => SearchKey::Answered,
        "BCC" => SearchKey::Bcc(arg_string(c)?),
        "BEFORE" => SearchKey::Before(arg_date(c)?),
        "BODY" => SearchKey::Body(arg_string(c)?),
        "CC" => SearchKey::Cc(arg_string(c)?),
        "DELETED" => SearchKey::Deleted,
        "DRAFT" => SearchKey::Draft,
        "FLAGGED" => SearchKey::Flagged,
        "FROM" => SearchKey::From(arg_string(c)?),
        "HEADER" => {
            c.sp()?;
            let field = c.astring_text()?;
            SearchKey::Header(field, arg_string(c)?)
        }
        "EMAILID" | "THREADID" => {
            c.sp()?;
            // objectid = 1*255(ALPHA / DIGIT / "_" / "-") (RFC 8474 §7)
            let id = c.atom()?.to_owned();
            if id.len() > 255
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(c.err("an object id"));
            }
            if name == "EMAILID" {
                SearchKey::EmailId(id)
            } else {
                SearchKey::ThreadId(id)
            }
        }
        "KEYWORD" => {
            c.sp()?;
            SearchKey::Keyword(c.atom()?.to_owned())
        }
        "LARGER" => {
            c.sp()?;
            SearchKey::Larger(c.number64()?)
        }
        "NEW" => SearchKey::New,
        "NOT" => {
            c.sp()?;
            SearchKey::Not(Box::new(key(c)?))
        }
        "OLD" => SearchKey::Old,
        "ON" => SearchKey::On(arg_date(c)?),
        "OR" => {
            c.sp()?;
            let a = key(c)?;
            c.sp()?;
            let b = key(c)?;
            SearchKey::Or(Box::new(a), Box::new(b))
        }
        "RECENT" => SearchKey::Recent,
        "SEEN" => SearchKey::Seen,
        "SENTBEFORE" => SearchKey::SentBefore(arg_date(c)?),
        "SENTON" => SearchKey::SentOn(arg_date(c)?),
        "SENTSINCE" => SearchKey::SentSince(arg_date(c)?),
        "SAVEDBEFORE" => SearchKey::SavedBefore(arg_date(c)?),
        "SAVEDON" => SearchKey::SavedOn(arg_date(c)?),
        "SAVEDSINCE" => SearchKey::SavedSince(arg_date(c)?),
        "SAVEDATESUPPORTED" => SearchKey::SaveDateSupported,
        "SINCE" => SearchKey::Since(arg_date(c)?),
        "SMALLER" => {
            c.sp()?;
            SearchKey::Smaller(c.number64()?)
        }
        "OLDER" => {
            c.sp()?;
            SearchKey::Older(c.nz_number()?.get())
        }
        "YOUNGER" => {
            c.sp()?;
            SearchKey::Younger(c.nz_number()?.get())
        }
        "SUBJECT" => SearchKey::Subject(arg_string(c)?),
        "TEXT" => SearchKey::Text(arg_string(c)?),
        "TO" => SearchKey::To(arg_string(c)?),
        "UID" => {
            c.sp()?;
            SearchKey::Uid(c.sequence_set()?)
        }
        "UNANSWERED" => SearchKey::Unanswered,
        "UNDELETED" => SearchKey::Undeleted,
        "UNDRAFT" => SearchKey::Undraft,
        "UNFLAGGED" => SearchKey::Unflagged,
        "UNKEYWORD" => {
            c.sp()?;
            SearchKey::Unkeyword(c.atom()?.to_owned())
        }
        "UNSEEN" => SearchKey::Unseen,
        "MODSEQ" => {
            c.sp()?;
            let entry = if c.peek() == Some(b'"') {
                let at = c.pos();
                let name =
                    String::from_utf8(c.quoted()?).map_err(|_| ProtoError::EightBit { at })?;
                if !name.to_ascii_lowercase().starts_with("/flags/") {
                    return Err(ProtoError::Syntax {
                        at,
                        expected: "\"/flags/<flag>\"",
                    });
                }
                c.sp()?;
                let kind = c.keyword()?.to_ascii_lowercase();
                if !matches!(kind.as_str(), "priv" | "shared" | "all") {
                    return Err(c.err("priv, shared or all"));
                }
                c.sp()?;
                Some((name, kind))
            } else {
                None
            };
            SearchKey::ModSeq {
                entry,
                modseq: c.number64()?,
            }
        }
        _ => return Err(c.err("search key")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, parse_command_bytes};
    use crate::proto::error::ProtoError;
    use crate::proto::types::{Date, SequenceSet};

    fn p(s: &str) -> Result<SearchCommand, ProtoError> {
        match parse_command_bytes(s.as_bytes(), ParseOptions::default())
            .map_err(|r| r.error)?
            .body
        {
            CommandBody::Search(s) => Ok(s),
            other => panic!("{other:?}"),
        }
    }

    fn d(y: i32, m: u32, day: u32) -> Date {
        Date::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn rfc3501_examples() {
        let s = p("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n").unwrap();
        assert_eq!(
            s.criteria,
            vec![
                SearchKey::Flagged,
                SearchKey::Since(d(1994, 2, 1)),
                SearchKey::Not(Box::new(SearchKey::From(b"Smith".to_vec())))
            ]
        );
        let s = p("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX\r\n").unwrap();
        assert_eq!(s.charset.as_deref(), Some("UTF-8"));
        assert_eq!(s.criteria, vec![SearchKey::Text(b"XXXXXX".to_vec())]);
        let s = p("a UID SEARCH 1:* OR (SEEN FLAGGED) NOT DELETED\r\n");
        assert!(s.is_ok());
    }

    #[test]
    fn every_key() {
        let s = p("a SEARCH ALL ANSWERED BCC a BEFORE 1-Jan-2000 BODY b CC c DELETED DRAFT FLAGGED FROM f \
                   HEADER X-Y z KEYWORD $k LARGER 10 NEW NOT SEEN OLD ON 2-Jan-2000 OR 1 2 RECENT SEEN \
                   SENTBEFORE 3-Jan-2000 SENTON 4-Jan-2000 SENTSINCE 5-Jan-2000 SINCE 6-Jan-2000 SMALLER 5 \
                   SUBJECT s TEXT t TO u UID 1:*,$ UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD $j UNSEEN \
                   2,4:* $ (ALL) MODSEQ 5\r\n")
        .map(|s| s.criteria.len());
        // "UID 1:*,$" is not valid ($ stands alone) ...
        assert!(s.is_err());
        let s = p("a SEARCH ALL ANSWERED BCC a BEFORE 1-Jan-2000 BODY b CC c DELETED DRAFT FLAGGED FROM f \
                   HEADER X-Y z KEYWORD $k LARGER 10 NEW NOT SEEN OLD ON 2-Jan-2000 OR 1 2 RECENT SEEN \
                   SENTBEFORE 3-Jan-2000 SENTON 4-Jan-2000 SENTSINCE 5-Jan-2000 SINCE 6-Jan-2000 SMALLER 5 \
                   SUBJECT s TEXT t TO u UID 1:* UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD $j UNSEEN \
                   2,4:* $ (ALL) MODSEQ 5\r\n")
        .unwrap();
        assert_eq!(s.criteria.len(), 39);
        assert_eq!(s.criteria[36], SearchKey::SequenceSet(SequenceSet::Saved));
        assert_eq!(
            s.criteria[38],
            SearchKey::ModSeq {
                entry: None,
                modseq: 5
            }
        );
    }

    #[test]
    fn esearch_and_modseq() {
        let s = p("A282 UID SEARCH RETURN (MIN COUNT save) CHARSET utf-8 MODSEQ \"/flags/\\\\draft\" all 620162338\r\n")
            .unwrap();
        assert!(s.uid);
        assert_eq!(
            s.returns,
            Some(vec![
                SearchReturn::Min,
                SearchReturn::Count,
                SearchReturn::Save
            ])
        );
        assert_eq!(
            s.criteria,
            vec![SearchKey::ModSeq {
                entry: Some(("/flags/\\draft".into(), "all".into())),
                modseq: 620162338
            }]
        );
        assert_eq!(
            p("a SEARCH RETURN () ALL\r\n").unwrap().returns,
            Some(vec![])
        );
        assert!(p("a SEARCH RETURN (FOO) ALL\r\n").is_err());
    }

    #[test]
    fn rfc5267_context_update_and_partial() {
        let nz = |n: u32| std::num::NonZeroU32::new(n).unwrap();
        let s = p("A01 SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk\r\n").unwrap();
        assert_eq!(
            s.returns,
            Some(vec![SearchReturn::Context, SearchReturn::Count])
        );
        let s = p("B01 UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk\r\n").unwrap();
        assert_eq!(
            s.returns,
            Some(vec![SearchReturn::Update, SearchReturn::Count])
        );
        let s = p("A02 UID SEARCH RETURN (PARTIAL 23500:24000) UNDELETED\r\n").unwrap();
        let range = PartialRange {
            first: nz(23500),
            last: nz(24000),
            from_end: false,
        };
        assert_eq!(s.returns, Some(vec![SearchReturn::Partial(range)]));
        assert_eq!(range.to_string(), "23500:24000");
        let s = p("a SEARCH RETURN (PARTIAL -1:-100 MIN) ALL\r\n").unwrap();
        let Some(SearchReturn::Partial(r)) = s.returns.unwrap().first().copied() else {
            panic!("no PARTIAL");
        };
        assert_eq!(r.to_string(), "-1:-100");
        // The last 100 of 250 results are indexes 150..250; 400:500 of them, none.
        assert_eq!(r.indexes(250), 150..250);
        assert_eq!(r.indexes(30), 0..30);
        let r = PartialRange {
            first: nz(500),
            last: nz(400),
            from_end: false,
        };
        assert_eq!(r.indexes(450), 399..450);
        assert_eq!(r.indexes(10), 10..10);
        for bad in [
            "a SEARCH RETURN (PARTIAL 1:10 ALL) ALL\r\n",
            "a SEARCH RETURN (ALL PARTIAL 1:10) ALL\r\n",
            "a SEARCH RETURN (PARTIAL 1:10 PARTIAL 11:20) ALL\r\n",
            "a SEARCH RETURN (UPDATE UPDATE) ALL\r\n",
            "a SEARCH RETURN (PARTIAL 0:10) ALL\r\n",
            "a SEARCH RETURN (PARTIAL 1:*) ALL\r\n",
            "a SEARCH RETURN (PARTIAL -1:10) ALL\r\n",
            "a SEARCH RETURN (PARTIAL 1) ALL\r\n",
            "a SEARCH RETURN (PARTIAL) ALL\r\n",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        let cancel =
            |s: &str| parse_command_bytes(s.as_bytes(), ParseOptions::default()).map(|c| c.body);
        assert_eq!(
            cancel("B04 CANCELUPDATE \"B01\"\r\n"),
            Ok(CommandBody::CancelUpdate(vec!["B01".into()]))
        );
        assert_eq!(
            cancel("c CANCELUPDATE \"x\" \"y\"\r\n"),
            Ok(CommandBody::CancelUpdate(vec!["x".into(), "y".into()]))
        );
        for bad in [
            "c CANCELUPDATE\r\n",
            "c CANCELUPDATE B01\r\n",
            "c CANCELUPDATE \"a\" \r\n",
        ] {
            assert!(cancel(bad).is_err(), "{bad}");
        }
        assert!(p("a SEARCH MODSEQ \"/x\" all 5\r\n").is_err());
    }

    #[test]
    fn malformed() {
        for bad in [
            "a SEARCH\r\n",
            "a SEARCH (SEEN\r\n",
            "a SEARCH SEEN)\r\n",
            "a SEARCH OR SEEN\r\n",
            "a SEARCH BOGUS\r\n",
            "a SEARCH SINCE 31-Feb-2000\r\n",
            "a SEARCH 0\r\n",
            "a SEARCH  SEEN\r\n",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        let deep = format!("a SEARCH {}ALL{}\r\n", "(".repeat(100), ")".repeat(100));
        assert_eq!(
            p(&deep),
            Err(ProtoError::TooDeep {
                max: super::super::MAX_DEPTH
            })
        );
        let nots = format!("a SEARCH {}ALL\r\n", "NOT ".repeat(10_000));
        assert!(matches!(p(&nots), Err(ProtoError::TooDeep { .. })));
    }
}
