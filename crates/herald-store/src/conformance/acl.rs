//! ACL tests: who may do what on another account's mailbox, and what SETACL/DELETEACL emit.

use super::*;

fn rights(s: &str) -> Option<Rights> {
    Some(Rights::parse(s).unwrap())
}

/// alice owns `Shared` with one message; bob exists.
async fn shared_setup() -> (T, SessionContext, SessionContext) {
    let t = open().await;
    let alice = t.user("alice").await;
    let bob = t.user("bob").await;
    t.store
        .create_mailbox(&alice, "Shared", None)
        .await
        .unwrap();
    t.append(&alice, "Shared", "Subject: hi\r\n\r\nhello\r\n", &[])
        .await;
    (t, alice, bob)
}

#[tokio::test]
async fn granting_lookup_announces_the_mailbox_to_the_grantee_and_revoking_withdraws_it() {
    let (t, alice, bob) = shared_setup().await;
    let c = t
        .store
        .set_acl(&alice, "Shared", "bob", rights("lr"))
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(
        types(&c.events),
        [EventType::AclChange, EventType::MailboxCreate]
    );
    let acl = &c.events[0];
    assert_eq!(acl.user.as_deref(), Some("alice"));
    assert_eq!(
        acl.mailbox_id.as_ref().unwrap().to_string(),
        acl.uri.as_ref().unwrap().to_string()
    );
    assert_eq!(acl.uri.as_ref().unwrap().mailbox.as_deref(), Some("Shared"));
    assert_eq!(acl.extension(vnd::ACL_IDENTIFIER).unwrap(), "bob");
    assert_eq!(acl.extension(vnd::ACL_RIGHTS).unwrap(), "lr");
    // The grantee's MailboxCreate names the mailbox as bob sees it, with its UIDVALIDITY.
    let create = &c.events[1];
    assert_eq!(create.user.as_deref(), Some("bob"));
    let url = create.mailbox_id.as_ref().unwrap();
    assert_eq!(url.user.as_deref(), Some("bob"));
    assert_eq!(url.mailbox.as_deref(), Some("user/alice/Shared"));
    let info = t.store.mailbox(&alice, "Shared").await.unwrap();
    assert_eq!(url.uidvalidity, Some(info.uidvalidity));

    // Adding a right bob can already see through: AclChange only.
    let c = t
        .store
        .set_acl(&alice, "Shared", "bob", rights("lri"))
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(types(&c.events), [EventType::AclChange]);
    assert_eq!(c.events[0].extension(vnd::ACL_RIGHTS).unwrap(), "lri");
    // The same rights again change nothing: no event.
    let c = t
        .store
        .set_acl(&alice, "Shared", "bob", rights("ilr"))
        .await
        .unwrap();
    assert!(c.events.is_empty());

    let c = t
        .store
        .set_acl(&alice, "Shared", "bob", None)
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(
        types(&c.events),
        [EventType::AclChange, EventType::MailboxDelete]
    );
    assert_eq!(c.events[0].extension(vnd::ACL_RIGHTS).unwrap(), "");
    assert_eq!(c.events[1].user.as_deref(), Some("bob"));
    assert!(t.store.shared_mailboxes(&bob).await.unwrap().is_empty());
    t.consistent().await;
}

#[tokio::test]
async fn a_guest_needs_the_right_for_each_operation() {
    let (t, alice, bob) = shared_setup().await;
    let name = "user/alice/Shared";
    // Not shared at all: as if it did not exist, for reads and writes.
    for e in [
        t.store.mailbox(&bob, name).await.err().unwrap(),
        t.store.fetch(&bob, name, None).await.err().unwrap(),
        t.store
            .append(&bob, name, b"x\r\n".to_vec(), &[], None)
            .await
            .err()
            .unwrap(),
        t.store.my_rights(&bob, name).await.err().unwrap(),
    ] {
        assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
    }
    t.store
        .set_acl(&alice, "Shared", "bob", rights("lr"))
        .await
        .unwrap();
    let shared = t.store.list_mailboxes(&bob).await.unwrap();
    let names: Vec<_> = shared.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["INBOX", "user", "user/alice", name]);
    assert!(shared[1].noselect && shared[2].noselect && !shared[3].noselect);
    assert_eq!(t.store.mailbox(&bob, name).await.unwrap().name, name);
    assert_eq!(t.store.fetch(&bob, name, None).await.unwrap().len(), 1);
    assert_eq!(
        t.store.read_message(&bob, name, 1).await.unwrap(),
        b"Subject: hi\r\n\r\nhello\r\n"
    );
    assert_eq!(
        t.store.my_rights(&bob, name).await.unwrap().to_string(),
        "lr"
    );
    let before = t.last().await;
    let noperm = |e: StoreError, right: &str| match e {
        StoreError::NoPermission { mailbox, needed } => {
            assert_eq!(mailbox, name);
            assert_eq!(needed, right);
        }
        other => panic!("{other}"),
    };
    noperm(
        t.store
            .append(&bob, name, b"x\r\n".to_vec(), &[], None)
            .await
            .err()
            .unwrap(),
        "i",
    );
    noperm(
        t.store
            .store_flags(&bob, name, &uids("1"), FlagMode::Add, &s(&["\\Seen"]), None)
            .await
            .err()
            .unwrap(),
        "s",
    );
    noperm(
        t.store
            .store_flags(
                &bob,
                name,
                &uids("1"),
                FlagMode::Add,
                &s(&["\\Deleted", "$x"]),
                None,
            )
            .await
            .err()
            .unwrap(),
        "wt",
    );
    noperm(t.store.expunge(&bob, name, None).await.err().unwrap(), "e");
    noperm(t.store.delete_mailbox(&bob, name).await.err().unwrap(), "x");
    noperm(
        t.store
            .create_mailbox(&bob, "user/alice/Shared/Sub", None)
            .await
            .err()
            .unwrap(),
        "k",
    );
    noperm(
        t.store
            .set_acl(&bob, name, "carol", rights("l"))
            .await
            .err()
            .unwrap(),
        "a",
    );
    noperm(t.store.get_acl(&bob, name).await.err().unwrap(), "a");
    noperm(
        t.store
            .copy(&bob, "INBOX", &uids("1"), name)
            .await
            .err()
            .unwrap(),
        "i",
    );
    // Refusals change nothing and emit nothing.
    assert_eq!(t.last().await, before);

    // With `i` and `s`: bob appends (his `\Flagged` is dropped, he may not set it) and
    // marks the message seen; the events name bob as the user and alice's mailbox.
    t.store
        .set_acl(&alice, "Shared", "bob", rights("lrsi"))
        .await
        .unwrap();
    let c = t
        .store
        .append(
            &bob,
            name,
            b"Subject: from bob\r\n\r\n.\r\n".to_vec(),
            &s(&["\\Seen", "\\Flagged"]),
            None,
        )
        .await
        .unwrap();
    t.check(&c.events).await;
    let e = &c.events[0];
    assert_eq!(e.user.as_deref(), Some("bob"));
    assert_eq!(e.uri.as_ref().unwrap().user.as_deref(), Some("alice"));
    assert_eq!(e.flag_names.as_ref().unwrap().to_string(), "\\Seen");
    let c = t
        .store
        .store_flags(&bob, name, &uids("1"), FlagMode::Add, &s(&["\\Seen"]), None)
        .await
        .unwrap();
    assert_eq!(types(&c.events), [EventType::MessageRead]);
    // A cross-account COPY counts against the target's quota and keeps both consistent.
    let c = t.store.copy(&bob, name, &uids("1"), "INBOX").await.unwrap();
    t.check(&c.events).await;
    assert_eq!(
        c.events[0].uri.as_ref().unwrap().user.as_deref(),
        Some("bob")
    );
    assert_eq!(t.store.quota("bob").await.unwrap().used_messages, 1);
    let c = t.store.copy(&bob, "INBOX", &uids("1"), name).await.unwrap();
    t.check(&c.events).await;
    assert_eq!(t.store.quota("alice").await.unwrap().used_messages, 3);
    t.consistent().await;

    // `anyone` grants count for every user.
    let carol = t.user("carol").await;
    assert!(t.store.mailbox(&carol, name).await.is_err());
    t.store
        .set_acl(&alice, "Shared", "anyone", rights("lr"))
        .await
        .unwrap();
    assert_eq!(t.store.fetch(&carol, name, None).await.unwrap().len(), 3);
    // The owner's own entry cannot be set; negative rights are not supported.
    assert!(
        t.store
            .set_acl(&alice, "Shared", "alice", rights("l"))
            .await
            .is_err()
    );
    assert!(
        t.store
            .set_acl(&alice, "Shared", "-bob", rights("l"))
            .await
            .is_err()
    );
    let acl = t.store.get_acl(&alice, "Shared").await.unwrap();
    let acl: Vec<String> = acl
        .iter()
        .map(|e| format!("{} {}", e.identifier, e.rights))
        .collect();
    assert_eq!(acl, ["alice lrswipkxtea", "anyone lr", "bob lrsi"]);
}

#[tokio::test]
async fn rename_keeps_the_acl_and_delete_removes_it() {
    let (t, alice, bob) = shared_setup().await;
    t.store
        .set_acl(&alice, "Shared", "bob", rights("lr"))
        .await
        .unwrap();
    t.store
        .rename_mailbox(&alice, "Shared", "Team")
        .await
        .unwrap();
    assert!(t.store.mailbox(&bob, "user/alice/Team").await.is_ok());
    assert!(t.store.mailbox(&bob, "user/alice/Shared").await.is_err());
    t.store.delete_mailbox(&alice, "Team").await.unwrap();
    t.store.create_mailbox(&alice, "Team", None).await.unwrap();
    assert!(
        t.store.shared_mailboxes(&bob).await.unwrap().is_empty(),
        "a new mailbox under the old name is not shared"
    );
    // Deleting the grantee removes its entries: a new account of that name inherits nothing.
    t.store
        .set_acl(&alice, "Team", "bob", rights("lr"))
        .await
        .unwrap();
    t.store.delete_user(&admin(), "bob").await.unwrap();
    let bob = t.user("bob").await;
    assert!(t.store.shared_mailboxes(&bob).await.unwrap().is_empty());
    assert_eq!(t.store.get_acl(&alice, "Team").await.unwrap().len(), 1);
}

#[test]
fn a_version_11_store_gains_the_acl_table() {
    let (_dir, conn) = super::migrated_after(
        "DROP TABLE acl; PRAGMA user_version = 11;
         INSERT INTO accounts (name, password_hash) VALUES ('alice', 'x');",
    );
    conn.execute(
        "INSERT INTO acl (mailbox_id, identifier, rights) VALUES (1, 'bob', 'lr')",
        [],
    )
    .unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM acl WHERE identifier = 'bob'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
}

/// The "Shared" namespace: mailboxes no user owns, created by an administrator, opened to
/// others by SETACL, and named in events by an owner-less URL.
#[tokio::test]
async fn the_shared_namespace_belongs_to_no_user_and_administrators_run_it() {
    let t = open().await;
    t.store
        .add_user(&admin(), "root", "pw", true)
        .await
        .unwrap();
    let root = SessionContext::user("imap", "root");
    let bob = t.user("bob").await;
    let carol = t.user("carol").await;

    // Before any shared mailbox exists, only an administrator may start the namespace.
    match t.store.create_mailbox(&bob, "#shared/support", None).await {
        Err(StoreError::NoPermission { .. }) => {}
        other => panic!("a user created a shared mailbox: {other:?}"),
    }
    let c = t
        .store
        .create_mailbox(&root, "#shared/support", None)
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(types(&c.events), [EventType::MailboxCreate]);
    let url = c.events[0].mailbox_id.as_ref().unwrap();
    assert_eq!(url.user, None, "no account owns a shared mailbox");
    assert_eq!(url.mailbox.as_deref(), Some("#shared/support"));
    assert!(
        url.to_string().contains("/%23shared/support;UIDVALIDITY="),
        "{url}"
    );
    assert_eq!(c.events[0].user.as_deref(), Some("root"));
    // Once it exists, a user still cannot add to it without `k`.
    match t.store.create_mailbox(&bob, "#shared/sales", None).await {
        Err(StoreError::NoPermission { .. }) => {}
        other => panic!("a user created a shared mailbox: {other:?}"),
    }

    // Without a grant bob neither sees nor opens it; the administrator sees it in LIST.
    let listed = |boxes: Vec<MailboxInfo>| -> Vec<(String, bool)> {
        boxes
            .into_iter()
            .filter(|b| b.name.starts_with('#'))
            .map(|b| (b.name, b.noselect))
            .collect()
    };
    assert!(listed(t.store.list_mailboxes(&bob).await.unwrap()).is_empty());
    assert!(matches!(
        t.store.mailbox(&bob, "#shared/support").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        listed(t.store.list_mailboxes(&root).await.unwrap()),
        [("#shared".into(), true), ("#shared/support".into(), false)]
    );

    // The administrator opens it to bob (read and insert) and to everyone (lookup, read).
    let c = t
        .store
        .set_acl(&root, "#shared/support", "bob", rights("lrsi"))
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(
        types(&c.events),
        [EventType::AclChange, EventType::MailboxCreate]
    );
    let grant = c.events[1].mailbox_id.as_ref().unwrap();
    assert_eq!(grant.user.as_deref(), Some("bob"));
    assert_eq!(grant.mailbox.as_deref(), Some("#shared/support"));
    t.store
        .set_acl(&root, "#shared/support", "anyone", rights("lr"))
        .await
        .unwrap();
    // GETACL lists no owner: there is none.
    let acl = t.store.get_acl(&root, "#shared/support").await.unwrap();
    let ids: Vec<&str> = acl.iter().map(|e| e.identifier.as_str()).collect();
    assert_eq!(ids, ["anyone", "bob"]);
    assert!(matches!(
        t.store.get_acl(&bob, "#shared/support").await,
        Err(StoreError::NoPermission { .. })
    ));

    // bob appends; the event names the shared mailbox without an owner and bob as the actor.
    let appended = t
        .append(
            &bob,
            "#shared/support",
            "Subject: ticket\r\n\r\nhelp\r\n",
            &[],
        )
        .await;
    let e = t.store.events_after(t.last().await - 1, 1).await.unwrap();
    let e = Event::from_json(&e[0].json).unwrap();
    assert_eq!(e.event, EventType::MessageAppend);
    assert_eq!(e.user.as_deref(), Some("bob"));
    let uri = e.uri.as_ref().unwrap();
    assert_eq!(uri.user, None);
    assert_eq!(uri.mailbox.as_deref(), Some("#shared/support"));
    assert_eq!(uri.uid, Some(appended.uid));
    assert_eq!(
        crate::acl::url_mailbox(uri),
        Some((crate::acl::SHARED_OWNER, "support"))
    );
    // carol reads through `anyone` but may not write.
    assert_eq!(
        t.store
            .mailbox(&carol, "#shared/support")
            .await
            .unwrap()
            .messages,
        1
    );
    assert!(matches!(
        t.store
            .append(&carol, "#shared/support", b"x\r\n".to_vec(), &[], None)
            .await,
        Err(StoreError::NoPermission { .. })
    ));

    // The pseudo-account is no user: not listed, no login, no account-level changes, and
    // its name cannot be taken.
    let users = t.store.list_users().await.unwrap();
    assert!(users.iter().all(|u| !u.name.starts_with('#')), "{users:?}");
    assert!(matches!(
        t.store.authenticate("#shared", "!", None).await,
        Err(StoreError::AuthFailed)
    ));
    assert!(matches!(
        t.store.authenticate("root", "pw", Some("#shared")).await,
        Err(StoreError::AuthFailed)
    ));
    for refused in [
        t.store.delete_user(&admin(), "#shared").await.err(),
        t.store
            .set_disabled(&admin(), "#shared", true, None)
            .await
            .err(),
        t.store
            .add_user(&admin(), "#shared", "pw", false)
            .await
            .err(),
        t.store.add_user(&admin(), "#team", "pw", false).await.err(),
    ] {
        assert!(
            matches!(
                refused,
                Some(StoreError::InvalidArgument(_) | StoreError::InvalidName { .. })
            ),
            "{refused:?}"
        );
    }

    // The administrator renames and deletes it like any mailbox.
    t.store
        .rename_mailbox(&root, "#shared/support", "#shared/helpdesk")
        .await
        .unwrap();
    assert!(
        listed(t.store.list_mailboxes(&bob).await.unwrap())
            .contains(&("#shared/helpdesk".into(), false))
    );
    let c = t
        .store
        .delete_mailbox(&root, "#shared/helpdesk")
        .await
        .unwrap();
    t.check(&c.events).await;
    assert!(listed(t.store.list_mailboxes(&bob).await.unwrap()).is_empty());
    t.consistent().await;
}
