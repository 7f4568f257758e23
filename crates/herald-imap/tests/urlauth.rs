//! URLAUTH transcripts (RFC 4467, RFC 5524) on the in-memory store: a URL one user authorizes
//! is fetched by another; every change to it, an expiry, a reset key or the wrong session
//! makes URLFETCH answer NIL.

#![allow(clippy::unwrap_used)]

mod harness;

use harness::{T, backend};
use herald_imap::session::memory::MemoryBackend;

const MSG: &str = "From: Bob <bob@example.org>\r\nSubject: hi\r\n\r\nbody\r\n";

const MIXED: &str = "From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n\
hello\r\n--XX\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n";

async fn session(b: &MemoryBackend, user: &str, pw: &str) -> T {
    let mut t = T::new(b);
    t.login(user, pw).await;
    t
}

async fn uidvalidity(t: &mut T, mailbox: &str) -> u32 {
    let out = t.send(&format!("v STATUS {mailbox} (UIDVALIDITY)")).await;
    let at = out.find("UIDVALIDITY ").unwrap() + "UIDVALIDITY ".len();
    out[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// GENURLAUTH for one rump URL; the authorized URL.
async fn generate(t: &mut T, rump: &str) -> String {
    let out = t.send(&format!("g GENURLAUTH \"{rump}\" INTERNAL")).await;
    let line = out
        .lines()
        .find(|l| l.starts_with("* GENURLAUTH "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(out.ends_with("g OK GENURLAUTH completed\r\n"), "{out}");
    let url = line["* GENURLAUTH ".len()..].trim_matches('"').to_owned();
    assert!(url.starts_with(&format!("{rump}:INTERNAL:")), "{url}");
    url
}

/// URLFETCH of one URL: the data, or None for NIL.
async fn fetch(t: &mut T, url: &str) -> Option<String> {
    let out = t.send(&format!("f URLFETCH \"{url}\"")).await;
    assert!(out.ends_with("f OK URLFETCH completed\r\n"), "{out}");
    let prefix = format!("* URLFETCH \"{url}\" ");
    let rest = out.strip_prefix(&prefix).unwrap_or_else(|| panic!("{out}"));
    if rest.starts_with("NIL\r\n") {
        return None;
    }
    if let Some(q) = rest.strip_prefix('"') {
        return Some(q[..q.find('"').unwrap()].to_owned());
    }
    let (len, data) = rest.strip_prefix('{').unwrap().split_once("}\r\n").unwrap();
    Some(data[..len.parse::<usize>().unwrap()].to_owned())
}

fn rump(v: u32, access: &str) -> String {
    format!("imap://alice@localhost/INBOX;UIDVALIDITY={v}/;UID=1;URLAUTH={access}")
}

#[tokio::test]
async fn a_url_alice_authorizes_is_fetched_by_bob_and_by_anyone_it_admits() {
    let b = backend();
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    let mut alice = session(&b, "alice", "secret").await;
    let v = uidvalidity(&mut alice, "INBOX").await;
    let authuser = generate(&mut alice, &rump(v, "authuser")).await;
    let token = authuser.rsplit(':').next().unwrap();
    assert_eq!(token.len(), 64, "HMAC-SHA256 in hex");
    let mut bob = session(&b, "bob", "hunter2").await;
    assert_eq!(fetch(&mut bob, &authuser).await.as_deref(), Some(MSG));
    assert_eq!(fetch(&mut alice, &authuser).await.as_deref(), Some(MSG));

    // user+NAME admits NAME only.
    let for_bob = generate(&mut alice, &rump(v, "user+bob")).await;
    assert_eq!(fetch(&mut bob, &for_bob).await.as_deref(), Some(MSG));
    assert_eq!(fetch(&mut alice, &for_bob).await, None);
    // submit+NAME admits an administrator's session only.
    let submit = generate(&mut alice, &rump(v, "submit+bob")).await;
    assert_eq!(fetch(&mut bob, &submit).await, None);
    let mut root = session(&b, "root", "toor").await;
    assert_eq!(fetch(&mut root, &submit).await.as_deref(), Some(MSG));
    // anonymous admits everyone.
    let anyone = generate(&mut alice, &rump(v, "anonymous")).await;
    assert_eq!(fetch(&mut bob, &anyone).await.as_deref(), Some(MSG));

    // Several URLs in one command, answered in order, a bad one as NIL.
    let out = bob
        .send(&format!("m URLFETCH \"{authuser}\" \"{for_bob}x\""))
        .await;
    assert!(
        out.starts_with(&format!(
            "* URLFETCH \"{authuser}\" {{{}}}\r\n{MSG} \"{for_bob}x\" NIL\r\n",
            MSG.len()
        )),
        "{out}"
    );
}

#[tokio::test]
async fn any_change_to_an_authorized_url_gives_nil() {
    let b = backend();
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    b.deliver("alice", "INBOX", b"Subject: two\r\n\r\nsecond\r\n")
        .unwrap();
    let mut alice = session(&b, "alice", "secret").await;
    alice.send("c CREATE Work").await;
    b.deliver("alice", "Work", MSG.as_bytes()).unwrap();
    let v = uidvalidity(&mut alice, "INBOX").await;
    let url = generate(&mut alice, &rump(v, "authuser")).await;
    let mut bob = session(&b, "bob", "hunter2").await;
    assert!(fetch(&mut bob, &url).await.is_some());
    let token = url.rsplit(':').next().unwrap().to_owned();
    let flipped = {
        let mut t = token.clone().into_bytes();
        t[0] = if t[0] == b'a' { b'b' } else { b'a' };
        String::from_utf8(t).unwrap()
    };
    let tampered = [
        url.replace(";UID=1;", ";UID=2;"),
        url.replace("/INBOX;", "/Work;"),
        url.replace(&format!("={v}/"), &format!("={}/", v + 1)),
        url.replace(&format!("={v}/"), "=1/")
            .replace(";UIDVALIDITY=1", ""),
        url.replace("alice@", "bob@"),
        url.replace("@localhost/", "@otherhost/"),
        url.replace("URLAUTH=authuser", "URLAUTH=anonymous"),
        url.replace(";URLAUTH=", ";EXPIRE=2099-01-01T00:00:00Z;URLAUTH="),
        url.replace(":INTERNAL:", ":EXTERNAL:"),
        url.replace(&token, &flipped),
        url.replace(&token, &token[..60]),
        url.replace(&token, ""),
        url.replace("/;UID=1", "/;UID=1/;SECTION=TEXT"),
        "not a url".to_owned(),
    ];
    for bad in &tampered {
        assert_ne!(bad, &url);
        assert_eq!(fetch(&mut bob, bad).await, None, "{bad}");
    }
    // The untouched URL still works: nothing above was a side effect.
    assert!(fetch(&mut bob, &url).await.is_some());
}

#[tokio::test]
async fn expire_is_honoured() {
    let b = backend();
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    let mut alice = session(&b, "alice", "secret").await;
    let v = uidvalidity(&mut alice, "INBOX").await;
    let base = format!("imap://alice@localhost/INBOX;UIDVALIDITY={v}/;UID=1");
    let past = generate(
        &mut alice,
        &format!("{base};EXPIRE=2020-01-01T00:00:00Z;URLAUTH=authuser"),
    )
    .await;
    let future = generate(
        &mut alice,
        &format!("{base};EXPIRE=2999-01-01T00:00:00Z;URLAUTH=authuser"),
    )
    .await;
    let mut bob = session(&b, "bob", "hunter2").await;
    assert_eq!(fetch(&mut bob, &past).await, None);
    assert_eq!(fetch(&mut bob, &future).await.as_deref(), Some(MSG));
}

#[tokio::test]
async fn resetkey_revokes_every_url_of_the_mailbox() {
    let b = backend();
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    let mut alice = session(&b, "alice", "secret").await;
    alice.send("c CREATE Work").await;
    b.deliver("alice", "Work", MSG.as_bytes()).unwrap();
    let v = uidvalidity(&mut alice, "INBOX").await;
    let w = uidvalidity(&mut alice, "Work").await;
    let inbox = generate(&mut alice, &rump(v, "authuser")).await;
    let work_rump = format!("imap://alice@localhost/Work;UIDVALIDITY={w}/;UID=1;URLAUTH=authuser");
    let work = generate(&mut alice, &work_rump).await;
    let mut bob = session(&b, "bob", "hunter2").await;

    alice
        .x("r RESETKEY INBOX INTERNAL", &["r OK RESETKEY completed"])
        .await;
    assert_eq!(fetch(&mut bob, &inbox).await, None, "revoked");
    assert!(
        fetch(&mut bob, &work).await.is_some(),
        "another mailbox's key"
    );
    let again = generate(&mut alice, &rump(v, "authuser")).await;
    assert_ne!(again, inbox, "a new key");
    assert!(fetch(&mut bob, &again).await.is_some());

    alice.x("r RESETKEY", &["r OK RESETKEY completed"]).await;
    assert_eq!(fetch(&mut bob, &again).await, None);
    assert_eq!(fetch(&mut bob, &work).await, None);

    alice
        .x(
            "r RESETKEY INBOX XSAMPLE",
            &["r NO unknown URLAUTH mechanism …"],
        )
        .await;
    alice.x("r RESETKEY Nope", &["r NO [NONEXISTENT] …"]).await;
    // Deleting the mailbox takes its key along; a new mailbox of that name has another.
    let work = generate(&mut alice, &work_rump).await;
    alice.send("d DELETE Work").await;
    assert_eq!(fetch(&mut bob, &work).await, None);
}

#[tokio::test]
async fn genurlauth_authorizes_only_the_sessions_own_messages() {
    let b = backend();
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    b.deliver("bob", "INBOX", MSG.as_bytes()).unwrap();
    let mut t = T::new(&b);
    t.x(
        "a GENURLAUTH \"imap://alice@localhost/INBOX/;UID=1;URLAUTH=anonymous\" INTERNAL",
        &["a BAD GENURLAUTH needs authentication"],
    )
    .await;
    t.x(
        "a URLFETCH \"imap://alice@localhost/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:00\"",
        &["a BAD URLFETCH needs authentication"],
    )
    .await;
    t.login("alice", "secret").await;
    for (rump, why) in [
        (
            "imap://bob@localhost/INBOX/;UID=1;URLAUTH=anonymous",
            "must name the session's user",
        ),
        (
            "imap://localhost/INBOX/;UID=1;URLAUTH=anonymous",
            "must name the session's user",
        ),
        (
            "imap://alice@elsewhere/INBOX/;UID=1;URLAUTH=anonymous",
            "another server",
        ),
        ("imap://alice@localhost/INBOX/;UID=1", "no ;URLAUTH="),
        (
            "imap://alice@localhost/INBOX/;UID=9;URLAUTH=anonymous",
            "no such message",
        ),
        (
            "imap://alice@localhost/Nope/;UID=1;URLAUTH=anonymous",
            "no such mailbox",
        ),
        (
            "imap://alice@localhost/INBOX;UIDVALIDITY=1/;UID=1;URLAUTH=anonymous",
            "UIDVALIDITY",
        ),
        (
            "imap://alice@localhost/INBOX/;UID=1;URLAUTH=everyone",
            "access identifier",
        ),
        (
            "imap://alice@localhost/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:00",
            "already authorized",
        ),
    ] {
        let out = t.send(&format!("b GENURLAUTH \"{rump}\" INTERNAL")).await;
        assert!(out.starts_with(&format!("b NO [BADURL {rump}] ")), "{out}");
        assert!(out.contains(why), "{rump}: {out}");
    }
    t.x(
        "c GENURLAUTH \"imap://alice@localhost/INBOX/;UID=1;URLAUTH=anonymous\" XSAMPLE",
        &["c NO unknown URLAUTH mechanism XSAMPLE; Herald has INTERNAL"],
    )
    .await;
    t.x("d GENURLAUTH", &["d BAD …"]).await;
    // Two URLs at once: both authorized, in order (no UIDVALIDITY is fine too).
    let out = t
        .send(
            "e GENURLAUTH \"imap://alice@localhost/INBOX/;UID=1;URLAUTH=anonymous\" INTERNAL \
             \"imap://alice@localhost/inbox/;UID=1;URLAUTH=authuser\" INTERNAL",
        )
        .await;
    assert!(
        out.starts_with(
            "* GENURLAUTH \"imap://alice@localhost/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:"
        ) && out.contains("\" \"imap://alice@localhost/inbox/;UID=1;URLAUTH=authuser:INTERNAL:"),
        "{out}"
    );
}

#[tokio::test]
async fn extended_urlfetch_gives_binary_and_the_part_structure() {
    let b = backend();
    b.deliver("alice", "INBOX", MIXED.as_bytes()).unwrap();
    let mut alice = session(&b, "alice", "secret").await;
    let v = uidvalidity(&mut alice, "INBOX").await;
    let part2 = generate(
        &mut alice,
        &format!("imap://alice@localhost/INBOX;UIDVALIDITY={v}/;UID=1/;SECTION=2;URLAUTH=authuser"),
    )
    .await;
    let mut bob = session(&b, "bob", "hunter2").await;
    assert_eq!(fetch(&mut bob, &part2).await.as_deref(), Some("AAECAw=="));
    let (out, _) = bob
        .raw_bytes(format!("x URLFETCH (\"{part2}\" BODYPARTSTRUCTURE BINARY)\r\n").as_bytes())
        .await;
    let expected = format!(
        "* URLFETCH \"{part2}\" (BODYPARTSTRUCTURE (\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 8 NIL NIL NIL NIL)) (BINARY ~{{4}}\r\n\x00\x01\x02\x03)\r\nx OK URLFETCH completed\r\n"
    );
    assert_eq!(String::from_utf8_lossy(&out), expected);
    let out = bob
        .send(&format!(
            "y URLFETCH (\"{part2}\" BODY) (\"{part2}0\" BINARY)"
        ))
        .await;
    assert_eq!(
        out,
        format!(
            "* URLFETCH \"{part2}\" (BODY \"AAECAw==\") \"{part2}0\" NIL\r\ny OK URLFETCH completed\r\n"
        )
    );
    bob.x(
        &format!("z URLFETCH (\"{part2}\" BODY BINARY)"),
        &["z BAD …"],
    )
    .await;
}
