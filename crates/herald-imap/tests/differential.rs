//! Differential tests against imap-codec's `CommandCodec` (STACK.md §2, job 2): for a corpus of
//! commands both parsers accept, the key fields (tag, command, UID flag, mailbox names, the
//! sequence set, item/key/flag counts, login strings) must agree; for a corpus of malformed
//! commands both must refuse. Known, explained disagreements are listed, not hidden.

#![allow(clippy::unwrap_used)]

use herald_imap::proto::command::{
    CommandBody, FetchCommand, SearchCommand, SortCommand, StoreCommand, ThreadCommand,
};
use herald_imap::proto::types::{Mailbox, SequenceSet};
use herald_imap::proto::{Command, ParseOptions, mutf7, parse_command_bytes};
use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody as CB;
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;
use imap_codec::imap_types::mailbox::Mailbox as TheirMailbox;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet as TheirSet};

/// `*` resolves to this in comparisons.
const LARGEST: u32 = 50;

#[derive(Debug, PartialEq, Eq, Default)]
struct Summary {
    tag: String,
    name: String,
    uid: bool,
    mailboxes: Vec<String>,
    set: Option<Vec<u32>>,
    count: Option<usize>,
    strings: Vec<Vec<u8>>,
}

fn expand(ranges: impl IntoIterator<Item = (u32, u32)>) -> Vec<u32> {
    let mut v: Vec<u32> = ranges
        .into_iter()
        .flat_map(|(a, b)| a.min(b)..=a.max(b))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn our_set(s: &SequenceSet) -> Vec<u32> {
    expand(s.resolve(LARGEST).unwrap())
}

fn our_mailbox(m: &Mailbox) -> String {
    mutf7::encode(m.as_str())
}

fn ours(c: &Command) -> Summary {
    let name = c.body.name();
    let mut s = Summary {
        tag: c.tag.as_str().to_owned(),
        uid: name.starts_with("UID "),
        name: name.trim_start_matches("UID ").to_owned(),
        ..Summary::default()
    };
    match &c.body {
        CommandBody::Login { username, password } => {
            s.strings = vec![username.clone(), password.clone()]
        }
        CommandBody::Authenticate { mechanism, .. } => {
            s.strings = vec![mechanism.as_bytes().to_vec()]
        }
        CommandBody::Enable(caps) => s.count = Some(caps.len()),
        CommandBody::Select { mailbox, .. }
        | CommandBody::Examine { mailbox, .. }
        | CommandBody::Create { mailbox, .. }
        | CommandBody::Delete(mailbox)
        | CommandBody::Subscribe(mailbox)
        | CommandBody::Unsubscribe(mailbox)
        | CommandBody::GetQuotaRoot(mailbox) => s.mailboxes = vec![our_mailbox(mailbox)],
        CommandBody::Rename { from, to } => s.mailboxes = vec![our_mailbox(from), our_mailbox(to)],
        CommandBody::List(l) => s.mailboxes = vec![mutf7::encode(&l.reference)],
        CommandBody::Lsub { reference, .. } => s.mailboxes = vec![mutf7::encode(reference)],
        CommandBody::Status { mailbox, items } => {
            s.mailboxes = vec![our_mailbox(mailbox)];
            s.count = Some(items.len());
        }
        CommandBody::Append { mailbox, messages } => {
            s.mailboxes = vec![our_mailbox(mailbox)];
            s.count = Some(messages[0].flags.len());
        }
        CommandBody::UidExpunge(set) => s.set = Some(our_set(set)),
        CommandBody::Search(SearchCommand { criteria, .. }) => s.count = Some(criteria.len()),
        CommandBody::Sort(SortCommand {
            criteria,
            charset,
            search,
            ..
        }) => {
            s.count = Some(search.len());
            let keys: Vec<String> = criteria
                .iter()
                .map(|c| {
                    format!("{}{:?}", if c.reverse { "-" } else { "" }, c.key).to_ascii_uppercase()
                })
                .collect();
            s.strings = vec![charset.as_bytes().to_vec(), keys.join(" ").into_bytes()];
        }
        CommandBody::Thread(ThreadCommand {
            algorithm,
            charset,
            search,
            ..
        }) => {
            s.count = Some(search.len());
            let alg = format!("{algorithm:?}").to_ascii_uppercase();
            s.strings = vec![charset.as_bytes().to_vec(), alg.into_bytes()];
        }
        CommandBody::Fetch(FetchCommand { set, items, .. }) => {
            s.set = Some(our_set(set));
            s.count = Some(items.len());
        }
        CommandBody::Store(StoreCommand { set, flags, .. }) => {
            s.set = Some(our_set(set));
            s.count = Some(flags.len());
        }
        CommandBody::Copy { set, mailbox, .. } | CommandBody::Move { set, mailbox, .. } => {
            s.set = Some(our_set(set));
            s.mailboxes = vec![our_mailbox(mailbox)];
        }
        _ => {}
    }
    s
}

fn their_mailbox(m: &TheirMailbox<'_>) -> String {
    match m {
        TheirMailbox::Inbox => "INBOX".to_owned(),
        TheirMailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    }
}

fn their_set(s: &TheirSet) -> Vec<u32> {
    let v = |x: &SeqOrUid| match x {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => LARGEST,
    };
    expand(s.0.as_ref().iter().map(|q| match q {
        Sequence::Single(a) => (v(a), v(a)),
        Sequence::Range(a, b) => (v(a), v(b)),
    }))
}

fn theirs(input: &[u8]) -> Option<Summary> {
    let (rest, c) = CommandCodec::default().decode(input).ok()?;
    assert!(rest.is_empty());
    let mut s = Summary {
        tag: c.tag.as_ref().to_owned(),
        name: c.body.name().to_owned(),
        ..Summary::default()
    };
    match &c.body {
        CB::Login { username, password } => {
            s.strings = vec![
                username.as_ref().to_vec(),
                password.declassify().as_ref().to_vec(),
            ]
        }
        CB::Authenticate { mechanism, .. } => {
            s.strings = vec![mechanism.as_ref().to_ascii_uppercase().into_bytes()]
        }
        CB::Enable { capabilities } => s.count = Some(capabilities.as_ref().len()),
        CB::Select { mailbox, .. }
        | CB::Examine { mailbox, .. }
        | CB::Create { mailbox }
        | CB::Delete { mailbox }
        | CB::Subscribe { mailbox }
        | CB::Unsubscribe { mailbox }
        | CB::GetQuotaRoot { mailbox } => s.mailboxes = vec![their_mailbox(mailbox)],
        CB::Rename { from, to } => s.mailboxes = vec![their_mailbox(from), their_mailbox(to)],
        CB::List { reference, .. } | CB::Lsub { reference, .. } => {
            s.mailboxes = vec![their_mailbox(reference)]
        }
        CB::Status {
            mailbox,
            item_names,
        } => {
            s.mailboxes = vec![their_mailbox(mailbox)];
            s.count = Some(item_names.len());
        }
        CB::Append { mailbox, flags, .. } => {
            s.mailboxes = vec![their_mailbox(mailbox)];
            s.count = Some(flags.len());
        }
        CB::ExpungeUid { sequence_set } => {
            s.uid = true;
            s.set = Some(their_set(sequence_set));
        }
        CB::Search { criteria, uid, .. } => {
            s.uid = *uid;
            s.count = Some(criteria.as_ref().len());
        }
        CB::Sort {
            sort_criteria,
            charset,
            search_criteria,
            uid,
        } => {
            s.uid = *uid;
            s.count = Some(search_criteria.as_ref().len());
            let keys: Vec<String> = sort_criteria
                .as_ref()
                .iter()
                .map(|c| {
                    format!("{}{:?}", if c.reverse { "-" } else { "" }, c.key).to_ascii_uppercase()
                })
                .collect();
            s.strings = vec![
                charset.as_ref().to_ascii_uppercase().into_bytes(),
                keys.join(" ").into_bytes(),
            ];
        }
        CB::Thread {
            algorithm,
            charset,
            search_criteria,
            uid,
        } => {
            s.uid = *uid;
            s.count = Some(search_criteria.as_ref().len());
            let alg = format!("{algorithm:?}").to_ascii_uppercase();
            s.strings = vec![
                charset.as_ref().to_ascii_uppercase().into_bytes(),
                alg.into_bytes(),
            ];
        }
        CB::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
            ..
        } => {
            s.uid = *uid;
            s.set = Some(their_set(sequence_set));
            s.count = Some(match macro_or_item_names {
                MacroOrMessageDataItemNames::Macro(m) => m.expand().len(),
                MacroOrMessageDataItemNames::MessageDataItemNames(v) => v.len(),
            });
        }
        CB::Store {
            sequence_set,
            flags,
            uid,
            ..
        } => {
            s.uid = *uid;
            s.set = Some(their_set(sequence_set));
            s.count = Some(flags.len());
        }
        CB::Copy {
            sequence_set,
            mailbox,
            uid,
        }
        | CB::Move {
            sequence_set,
            mailbox,
            uid,
        } => {
            s.uid = *uid;
            s.set = Some(their_set(sequence_set));
            s.mailboxes = vec![their_mailbox(mailbox)];
        }
        _ => {}
    }
    Some(s)
}

/// Commands both parsers accept (RFC examples and variations on each command).
const BOTH_ACCEPT: &[&str] = &[
    "a CAPABILITY\r\n",
    "a noop\r\n",
    "a LOGOUT\r\n",
    "a STARTTLS\r\n",
    "a AUTHENTICATE PLAIN\r\n",
    "a AUTHENTICATE plain AGFsaWNlAHNlY3JldA==\r\n",
    "a LOGIN SMITH SESAME\r\n",
    "a LOGIN \"fred smith\" {6}\r\nse\"c t\r\n",
    "a LOGIN {4+}\r\nfred \"pw\"\r\n",
    "a ENABLE CONDSTORE UTF8=ACCEPT\r\n",
    "a SELECT INBOX\r\n",
    "a SELECT inbox\r\n",
    "a select \"Sent Items\"\r\n",
    "a SELECT INBOX (CONDSTORE)\r\n",
    "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
    "a EXAMINE blurdybloop\r\n",
    "a EXAMINE \"&ZeVnLIqe-\"\r\n",
    "a CREATE owatagusiam/\r\n",
    "a DELETE blurdybloop\r\n",
    "a RENAME blurdybloop sarasoop\r\n",
    "a RENAME \"a b\" {3}\r\nc d\r\n",
    "a SUBSCRIBE #news.comp.mail.mime\r\n",
    "a UNSUBSCRIBE #news.comp.mail.mime\r\n",
    "a LIST \"\" \"\"\r\n",
    "a LIST ~/Mail/ %\r\n",
    "a LIST #news.comp.mail.misc *\r\n",
    "a LSUB \"#news.\" \"comp.mail.*\"\r\n",
    "a NAMESPACE\r\n",
    "a STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
    "a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)\r\n",
    "a STATUS INBOX (SIZE)\r\n",
    "a STATUS INBOX (HIGHESTMODSEQ)\r\n",
    "a APPEND saved-messages (\\Seen) {5}\r\nhello\r\n",
    "a APPEND INBOX {5+}\r\nhello\r\n",
    "a APPEND INBOX (\\Seen \\Flagged) \"17-Jul-1996 02:44:25 -0700\" {2}\r\nhi\r\n",
    "a IDLE\r\n",
    "a CHECK\r\n",
    "a CLOSE\r\n",
    "a UNSELECT\r\n",
    "a EXPUNGE\r\n",
    "a UID EXPUNGE 3000:3002\r\n",
    "a UID EXPUNGE 1,3:*\r\n",
    "a SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
    "a SEARCH TEXT \"string not in mailbox\"\r\n",
    "a SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX\r\n",
    "a UID SEARCH 1:* OR SEEN FLAGGED\r\n",
    "a SEARCH (SEEN DELETED) UNANSWERED\r\n",
    "a SEARCH OR (FROM a TO b) NOT (SUBJECT c BODY d)\r\n",
    "a SEARCH HEADER X-Mailer foo LARGER 100 SMALLER 1000000\r\n",
    "a SEARCH KEYWORD $Junk UNKEYWORD $NotJunk ON 1-Jan-2020 SENTON 2-Jan-2020\r\n",
    "a SEARCH BEFORE \"1-Feb-1994\" SENTBEFORE 1-Feb-1994 SENTSINCE 1-Feb-1994\r\n",
    "a SEARCH ALL ANSWERED DELETED DRAFT NEW OLD RECENT SEEN UNDELETED UNDRAFT UNFLAGGED UNSEEN\r\n",
    "a SEARCH BCC x CC y UID 1:5,7 2:4\r\n",
    "a SEARCH MODSEQ 620162338\r\n",
    "a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338\r\n",
    "A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n",
    "A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n",
    "A284 SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\"\r\n",
    "a UID SORT (ARRIVAL CC FROM SIZE TO REVERSE DISPLAYFROM DISPLAYTO) \"UTF-8\" OR SEEN 1:5\r\n",
    "A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n",
    "A284 THREAD ORDEREDSUBJECT US-ASCII TEXT \"gewp\"\r\n",
    "A285 UID THREAD REFERENCES US-ASCII ALL\r\n",
    "a FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
    "a FETCH 12 FULL\r\n",
    "a FETCH 12 ALL\r\n",
    "a FETCH 12 FAST\r\n",
    "a FETCH 12 body[header]\r\n",
    "a FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date)])\r\n",
    "a FETCH 1 (BODY[1.2.MIME] BODY[3.TEXT]<0.100> BODY.PEEK[]<5.10> ENVELOPE BODYSTRUCTURE)\r\n",
    "a FETCH 1 (RFC822 RFC822.HEADER RFC822.TEXT INTERNALDATE)\r\n",
    "a FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY[2]<0.10>)\r\n",
    "a UID FETCH 4827313:4828442 FLAGS\r\n",
    "a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n",
    "a UID FETCH 1:* (FLAGS MODSEQ) (CHANGEDSINCE 12345 VANISHED)\r\n",
    "a STORE 2:4 +FLAGS (\\Deleted)\r\n",
    "a STORE 12 +flags \\deleted\r\n",
    "a STORE 1 -FLAGS.SILENT (\\Seen $Junk)\r\n",
    "a STORE 1 FLAGS ()\r\n",
    "a UID STORE 6,4,8 (UNCHANGEDSINCE 12121231000) FLAGS.SILENT (\\Deleted)\r\n",
    "a COPY 2:4 MEETING\r\n",
    "a UID COPY 1:* \"Saved Messages\"\r\n",
    "a MOVE 2:4 Trash\r\n",
    "a UID MOVE 42:69,* Trash\r\n",
    "a GETQUOTA \"\"\r\n",
    "a GETQUOTAROOT INBOX\r\n",
    "a SETQUOTA \"\" (STORAGE 512)\r\n",
    "a ID (\"name\" \"sodr\" \"version\" \"19.34\")\r\n",
    "a ID NIL\r\n",
];

#[test]
fn both_accept_and_agree() {
    let mut problems = Vec::new();
    for cmd in BOTH_ACCEPT {
        let ours = match parse_command_bytes(cmd.as_bytes(), ParseOptions::default()) {
            Ok(c) => ours(&c),
            Err(e) => {
                problems.push(format!("we reject {cmd:?}: {e:?}"));
                continue;
            }
        };
        match theirs(cmd.as_bytes()) {
            None => problems.push(format!("imap-codec rejects {cmd:?}")),
            Some(t) if t != ours => {
                problems.push(format!("{cmd:?}\n  ours   {ours:?}\n  theirs {t:?}"))
            }
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Malformed input: both must refuse, ours with an error (never a panic).
const BOTH_REJECT: &[&str] = &[
    "a SELECT (INBOX\r\n",
    "a FETCH 1 (FLAGS\r\n",
    "a FETCH 1 FLAGS)\r\n",
    "a SEARCH (SEEN\r\n",
    "a SEARCH SEEN)\r\n",
    "a SEARCH ((SEEN)\r\n",
    "a STORE 1 +FLAGS (\\Seen\r\n",
    "a LOGIN {5}\r\nabc def\r\n",
    "a LOGIN {x}\r\nabc\r\n",
    "a LOGIN {3\r\nabc\r\n",
    "a LOGIN fred\r\n",
    "a SELECT caf\u{e9}\r\n",
    "a SELECT INBOX",
    "a NOOP\n",
    "a NOOP \r\n",
    "a  NOOP\r\n",
    "a FETCH 0 FLAGS\r\n",
    "a FETCH 1:0 FLAGS\r\n",
    "a FETCH 4294967296 FLAGS\r\n",
    "a FETCH * FOO\r\n",
    "a STORE 1 FLAGS.LOUD (\\Seen)\r\n",
    "a COPY 1\r\n",
    "a SEARCH SINCE 31-Feb-1994\r\n",
    "a SEARCH BOGUS\r\n",
    "a APPEND INBOX \"31-Feb-1994 00:00:00 +0000\" {1}\r\nx\r\n",
    "a APPEND INBOX\r\n",
    "a STATUS INBOX ()\r\n",
    "a STATUS INBOX (BOGUS)\r\n",
    "a BOGUS\r\n",
    "+ NOOP\r\n",
    "\r\n",
    "NOOP\r\n",
    "a ENABLE\r\n",
    "a RENAME a\r\n",
    "a UID\r\n",
    "a UID BOGUS 1\r\n",
];

/// Where the parsers knowingly differ on malformed input (ours is stricter, with the reason).
const KNOWN_LENIENT_THEM: &[(&str, &str)] = &[(
    "a STATUS INBOX ()\r\n",
    "RFC 3501/9051 require at least one status-att; imap-codec accepts an empty list",
)];

#[test]
fn both_reject_malformed() {
    let mut problems = Vec::new();
    for cmd in BOTH_REJECT {
        if parse_command_bytes(cmd.as_bytes(), ParseOptions::default()).is_ok() {
            problems.push(format!("we accept {cmd:?}"));
        }
        let lenient = KNOWN_LENIENT_THEM.iter().any(|(c, _)| c == cmd);
        let they_accept = matches!(CommandCodec::default().decode(cmd.as_bytes()), Ok(([], _)));
        if they_accept != lenient {
            problems.push(format!(
                "imap-codec {} {cmd:?}",
                if they_accept { "accepts" } else { "rejects" }
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Commands IMAP4rev2 and its extensions (ESORT too) need that imap-codec alpha.10 rejects
/// (STACK.md §2); ours must accept every one.
const ONLY_WE_ACCEPT: &[&str] = &[
    "a LIST (SUBSCRIBED) \"\" *\r\n",
    "a LIST \"\" % RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n",
    "a LIST \"\" (\"INBOX\" \"Drafts\")\r\n",
    "a SEARCH RETURN (MIN MAX COUNT ALL) SEEN\r\n",
    "a UID SEARCH RETURN (SAVE) SEEN\r\n",
    "a FETCH $ FLAGS\r\n",
    "a APPEND INBOX {1+}\r\na {1+}\r\nb\r\n",
    "a CREATE Sent (USE (\\Sent))\r\n",
    "E01 UID SORT RETURN () (REVERSE DATE) UTF-8 UNDELETED UNKEYWORD $Junk\r\n",
    "a SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL\r\n",
];

#[test]
fn rev2_syntax_imap_codec_lacks() {
    for cmd in ONLY_WE_ACCEPT {
        assert!(
            parse_command_bytes(cmd.as_bytes(), ParseOptions::default()).is_ok(),
            "{cmd:?}"
        );
        assert!(
            !matches!(CommandCodec::default().decode(cmd.as_bytes()), Ok(([], _))),
            "imap-codec now accepts {cmd:?}: move it to BOTH_ACCEPT"
        );
    }
}
