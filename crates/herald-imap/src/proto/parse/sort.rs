//! `[UID] SORT [RETURN (…)] (criteria) charset key…` and `[UID] THREAD algorithm charset key…`
//! (RFC 5256 §5, RFC 5267 §3 ESORT and §4 CONTEXT=SORT, RFC 5957 DISPLAYFROM/DISPLAYTO).
//! The return options are SEARCH's without SAVE (`super::search::return_options`).
//!
//! Both commands end in RFC 5256's `search-criteria = charset 1*(SP search-key)`: unlike
//! SEARCH, the charset is mandatory and has no `CHARSET` keyword. The search keys are SEARCH's
//! own grammar ([`super::search::key`]), so nesting stays bounded by [`super::MAX_DEPTH`].

use super::Cursor;
use super::search::key;
use crate::proto::command::{
    CommandBody, SearchKey, SortCommand, SortCriterion, SortKey, ThreadAlgorithm, ThreadCommand,
};
use crate::proto::error::ProtoError;

/// `sort = ["UID" SP] "SORT" [SP sort-return-opts] SP sort-criteria SP search-criteria`.
pub(crate) fn sort(c: &mut Cursor<'_>, uid: bool) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let mut returns = None;
    if c.eat_keyword("RETURN") {
        c.sp()?;
        returns = Some(super::search::return_options(c, false)?);
        c.sp()?;
    }
    let criteria = sort_criteria(c)?;
    c.sp()?;
    let (charset, search) = search_criteria(c)?;
    Ok(CommandBody::Sort(SortCommand {
        uid,
        returns,
        criteria,
        charset,
        search,
    }))
}

/// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria`.
pub(crate) fn thread(c: &mut Cursor<'_>, uid: bool) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let algorithm = match c.keyword()?.as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        _ => return Err(c.err("ORDEREDSUBJECT or REFERENCES")),
    };
    c.sp()?;
    let (charset, search) = search_criteria(c)?;
    Ok(CommandBody::Thread(ThreadCommand {
        uid,
        algorithm,
        charset,
        search,
    }))
}

/// `sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"`,
/// `sort-criterion = ["REVERSE" SP] sort-key`.
fn sort_criteria(c: &mut Cursor<'_>) -> Result<Vec<SortCriterion>, ProtoError> {
    c.expect(b'(', "'(' before sort criteria")?;
    let mut criteria = Vec::new();
    loop {
        let mut name = c.keyword()?;
        let reverse = name == "REVERSE";
        if reverse {
            c.sp()?;
            name = c.keyword()?;
        }
        let key = match name.as_str() {
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            _ => return Err(c.err("sort key")),
        };
        criteria.push(SortCriterion { reverse, key });
        if c.eat(b')') {
            return Ok(criteria);
        }
        c.sp()?;
    }
}

/// `search-criteria = charset 1*(SP search-key)`, `charset = atom / quoted`.
fn search_criteria(c: &mut Cursor<'_>) -> Result<(String, Vec<SearchKey>), ProtoError> {
    let at = c.pos();
    let charset = if c.peek() == Some(b'"') {
        String::from_utf8(c.quoted()?).map_err(|_| ProtoError::EightBit { at })?
    } else {
        c.atom()?.to_owned()
    };
    let mut keys = Vec::new();
    while c.eat(b' ') {
        keys.push(key(c)?);
    }
    if keys.is_empty() {
        return Err(c.err("SP search key after the charset"));
    }
    Ok((charset.to_ascii_uppercase(), keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, SearchReturn, parse_command_bytes};
    use crate::proto::types::Date;

    fn body(s: &str) -> Result<CommandBody, ProtoError> {
        parse_command_bytes(s.as_bytes(), ParseOptions::default())
            .map(|c| c.body)
            .map_err(|r| r.error)
    }

    fn sort_of(s: &str) -> SortCommand {
        match body(s) {
            Ok(CommandBody::Sort(s)) => s,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn crit(reverse: bool, key: SortKey) -> SortCriterion {
        SortCriterion { reverse, key }
    }

    #[test]
    fn rfc5256_sort_examples() {
        let s = sort_of("A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n");
        assert!(!s.uid);
        assert_eq!(s.returns, None);
        assert_eq!(s.criteria, [crit(false, SortKey::Subject)]);
        assert_eq!(s.charset, "UTF-8");
        let since = Date::from_ymd_opt(1994, 2, 1).map(SearchKey::Since);
        assert_eq!(s.search.first(), since.as_ref());
        let s = sort_of("A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n");
        assert_eq!(
            s.criteria,
            [crit(false, SortKey::Subject), crit(true, SortKey::Date)]
        );
        let s = sort_of("A284 SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\"\r\n");
        assert_eq!(s.charset, "US-ASCII");
        assert_eq!(s.search, [SearchKey::Text(b"not in mailbox".to_vec())]);
    }

    #[test]
    fn every_key_reverse_and_uid() {
        let s = sort_of(
            "a uid sort (arrival reverse cc date from size subject to displayfrom reverse displayto) \"utf-8\" all\r\n",
        );
        assert!(s.uid);
        assert_eq!(
            s.criteria,
            [
                crit(false, SortKey::Arrival),
                crit(true, SortKey::Cc),
                crit(false, SortKey::Date),
                crit(false, SortKey::From),
                crit(false, SortKey::Size),
                crit(false, SortKey::Subject),
                crit(false, SortKey::To),
                crit(false, SortKey::DisplayFrom),
                crit(true, SortKey::DisplayTo),
            ]
        );
        assert_eq!(s.charset, "UTF-8");
    }

    #[test]
    fn rfc5267_esort_return_options() {
        let s =
            sort_of("E01 UID SORT RETURN () (REVERSE DATE) UTF-8 UNDELETED UNKEYWORD $Junk\r\n");
        assert_eq!(s.returns, Some(vec![]));
        assert_eq!(s.search.len(), 2);
        let s = sort_of("a SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL\r\n");
        assert_eq!(
            s.returns,
            Some(vec![
                SearchReturn::Min,
                SearchReturn::Max,
                SearchReturn::Count,
                SearchReturn::All
            ])
        );
    }

    #[test]
    fn thread_commands() {
        for (cmd, alg, uid) in [
            (
                "A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n",
                ThreadAlgorithm::OrderedSubject,
                false,
            ),
            (
                "A285 UID THREAD REFERENCES US-ASCII ALL\r\n",
                ThreadAlgorithm::References,
                true,
            ),
        ] {
            match body(cmd) {
                Ok(CommandBody::Thread(t)) => {
                    assert_eq!((t.algorithm, t.uid), (alg, uid));
                    assert_eq!(t.search.len(), 1);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn malformed() {
        for bad in [
            "a SORT\r\n",
            "a SORT ()\r\n",
            "a SORT () UTF-8 ALL\r\n",
            "a SORT (DATE)\r\n",
            "a SORT (DATE) UTF-8\r\n",
            "a SORT (DATE) UTF-8 \r\n",
            "a SORT (DATE)UTF-8 ALL\r\n",
            "a SORT DATE UTF-8 ALL\r\n",
            "a SORT (REVERSE) UTF-8 ALL\r\n",
            "a SORT (REVERSE REVERSE DATE) UTF-8 ALL\r\n",
            "a SORT (BOGUS) UTF-8 ALL\r\n",
            "a SORT (DATE ) UTF-8 ALL\r\n",
            "a SORT (DATE UTF-8 ALL\r\n",
            "a SORT RETURN (SAVE) (DATE) UTF-8 ALL\r\n",
            "a SORT RETURN (MIN (DATE) UTF-8 ALL\r\n",
            "a SORT RETURN MIN (DATE) UTF-8 ALL\r\n",
            "a SORT (DATE) {5}\r\nUTF-8 ALL\r\n",
            "a SORT (DATE) UTF-8 BOGUS\r\n",
            "a THREAD\r\n",
            "a THREAD REFERENCES\r\n",
            "a THREAD REFERENCES UTF-8\r\n",
            "a THREAD X-UNKNOWN UTF-8 ALL\r\n",
            "a THREAD (REFERENCES) UTF-8 ALL\r\n",
            "a UID THREAD REFERENCES UTF-8 (ALL\r\n",
        ] {
            assert!(body(bad).is_err(), "{bad}");
        }
        let deep = format!(
            "a SORT (DATE) UTF-8 {}ALL{}\r\n",
            "(".repeat(100),
            ")".repeat(100)
        );
        assert!(matches!(body(&deep), Err(ProtoError::TooDeep { .. })));
        let nots = format!("a THREAD REFERENCES UTF-8 {}ALL\r\n", "NOT ".repeat(10_000));
        assert!(matches!(body(&nots), Err(ProtoError::TooDeep { .. })));
    }
}
