//! METADATA (RFC 5464) through the public `Store` API: what SETMETADATA keeps, the limits it
//! enforces, where entries go on RENAME and DELETE, and its `vnd.herald.MetadataChange`.

use super::*;
use crate::{MetadataEntry, MetadataRefusal};

fn set(entries: &[(&str, Option<&str>)]) -> Vec<(String, Option<Vec<u8>>)> {
    entries
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.map(|v| v.as_bytes().to_vec())))
        .collect()
}

fn names(entries: &[MetadataEntry]) -> Vec<(&str, &[u8])> {
    entries
        .iter()
        .map(|e| (e.name.as_str(), &e.value[..]))
        .collect()
}

fn changed(e: &Event) -> serde_json::Value {
    e.extension(vnd::METADATA_ENTRIES).cloned().unwrap()
}

#[tokio::test]
async fn set_get_and_remove_private_and_shared_mailbox_entries() {
    let t = open().await;
    let alice = t.user("alice").await;
    let bob = t.user("bob").await;
    let c = t
        .store
        .set_metadata(
            &alice,
            Some("INBOX"),
            set(&[
                ("/private/Comment", Some("mine")),
                ("/shared/vendor/x", Some("ours")),
            ]),
        )
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(types(&c.events), [EventType::MetadataChange]);
    let e = &c.events[0];
    let inbox = e.mailbox_id.as_ref().unwrap();
    assert_eq!(inbox.mailbox.as_deref(), Some("INBOX"));
    assert!(inbox.uidvalidity.is_some());
    assert_eq!(e.uri.as_ref(), Some(inbox));
    assert_eq!(
        changed(e),
        serde_json::json!(["/private/comment", "/shared/vendor/x"])
    );
    assert!(
        !e.to_json().contains("mine"),
        "values never travel in events"
    );
    let got = t.store.get_metadata(&alice, Some("inbox")).await.unwrap();
    assert_eq!(
        names(&got),
        [
            ("/private/comment", &b"mine"[..]),
            ("/shared/vendor/x", &b"ours"[..])
        ]
    );
    // Bob's INBOX is another mailbox: none of it.
    assert!(
        t.store
            .get_metadata(&bob, Some("INBOX"))
            .await
            .unwrap()
            .is_empty()
    );
    // Setting the same value again, or removing what is not there, changes nothing: no event.
    let before = t.last().await;
    let c = t
        .store
        .set_metadata(
            &alice,
            Some("INBOX"),
            set(&[("/private/comment", Some("mine")), ("/private/gone", None)]),
        )
        .await
        .unwrap();
    assert!(c.events.is_empty());
    assert_eq!(t.last().await, before);
    // NIL removes.
    let c = t
        .store
        .set_metadata(&alice, Some("INBOX"), set(&[("/private/comment", None)]))
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(
        changed(&c.events[0]),
        serde_json::json!(["/private/comment"])
    );
    let got = t.store.get_metadata(&alice, Some("INBOX")).await.unwrap();
    assert_eq!(names(&got), [("/shared/vendor/x", &b"ours"[..])]);
    // Binary values are kept as they are.
    let bin = vec![0u8, 255, 13, 10];
    t.store
        .set_metadata(
            &alice,
            Some("INBOX"),
            vec![("/private/bin".into(), Some(bin.clone()))],
        )
        .await
        .unwrap();
    let got = t.store.get_metadata(&alice, Some("INBOX")).await.unwrap();
    assert_eq!(got[0].value, bin);
    assert!(matches!(
        t.store.get_metadata(&alice, Some("Nope")).await,
        Err(StoreError::NotFound { .. })
    ));
    t.consistent().await;
}

#[tokio::test]
async fn server_entries_private_per_user_shared_by_admins_only() {
    let t = open().await;
    let alice = t.user("alice").await;
    let bob = t.user("bob").await;
    t.store
        .add_user(&admin(), "root", "pw", true)
        .await
        .unwrap();
    let root = SessionContext::user("imap", "root");
    // Everyone keeps private server entries for themselves.
    let c = t
        .store
        .set_metadata(&alice, None, set(&[("/private/vendor/ui", Some("dark"))]))
        .await
        .unwrap();
    t.check(&c.events).await;
    let e = &c.events[0];
    assert_eq!(e.event, EventType::MetadataChange);
    let uri = e.uri.as_ref().unwrap();
    assert_eq!(
        (uri.user.as_deref(), uri.mailbox.as_deref()),
        (Some("alice"), None)
    );
    assert!(e.mailbox_id.is_none());
    assert!(t.store.get_metadata(&bob, None).await.unwrap().is_empty());
    // Shared server entries: only an administrator, or an administrator acting as a user.
    let before = t.last().await;
    assert!(matches!(
        t.store
            .set_metadata(&bob, None, set(&[("/shared/admin", Some("x"))]))
            .await,
        Err(StoreError::Metadata(MetadataRefusal::NotAdmin))
    ));
    assert_eq!(t.last().await, before, "a refused change commits nothing");
    let c = t
        .store
        .set_metadata(
            &root,
            None,
            set(&[("/shared/admin", Some("mailto:root@example.org"))]),
        )
        .await
        .unwrap();
    t.check(&c.events).await;
    let as_bob = SessionContext::user("imap", "bob").with_auth_user("root");
    t.store
        .set_metadata(&as_bob, None, set(&[("/shared/comment", Some("hello"))]))
        .await
        .unwrap();
    // Anyone reads them, beside their own private ones.
    let got = t.store.get_metadata(&alice, None).await.unwrap();
    assert_eq!(
        names(&got),
        [
            ("/private/vendor/ui", &b"dark"[..]),
            ("/shared/admin", &b"mailto:root@example.org"[..]),
            ("/shared/comment", &b"hello"[..]),
        ]
    );
}

#[tokio::test]
async fn limits_refuse_the_whole_command() {
    let t = open_with(|c| {
        c.metadata = MetadataLimits {
            max_value_bytes: 8,
            max_entries_per_mailbox: 2,
            max_entries_per_user: 3,
        }
    })
    .await;
    let alice = t.user("alice").await;
    t.store.create_mailbox(&alice, "A", None).await.unwrap();
    let before = t.last().await;
    let r = t
        .store
        .set_metadata(
            &alice,
            Some("INBOX"),
            set(&[
                ("/private/a", Some("ok")),
                ("/private/b", Some("123456789")),
            ]),
        )
        .await;
    assert!(matches!(
        r,
        Err(StoreError::Metadata(MetadataRefusal::TooLarge {
            size: 9,
            max: 8
        }))
    ));
    assert!(
        t.store
            .get_metadata(&alice, Some("INBOX"))
            .await
            .unwrap()
            .is_empty(),
        "all or nothing"
    );
    let r = t
        .store
        .set_metadata(
            &alice,
            Some("INBOX"),
            set(&[
                ("/private/a", Some("1")),
                ("/shared/b", Some("2")),
                ("/private/c", Some("3")),
            ]),
        )
        .await;
    assert!(matches!(
        r,
        Err(StoreError::Metadata(MetadataRefusal::TooMany {
            max: 2,
            per: "mailbox"
        }))
    ));
    assert_eq!(t.last().await, before);
    t.store
        .set_metadata(
            &alice,
            Some("INBOX"),
            set(&[("/private/a", Some("1")), ("/shared/b", Some("2"))]),
        )
        .await
        .unwrap();
    // Replacing a value or removing one is always possible at the limit.
    t.store
        .set_metadata(&alice, Some("INBOX"), set(&[("/private/a", Some("x"))]))
        .await
        .unwrap();
    t.store
        .set_metadata(&alice, None, set(&[("/private/s", Some("1"))]))
        .await
        .unwrap();
    let r = t
        .store
        .set_metadata(&alice, Some("A"), set(&[("/private/z", Some("1"))]))
        .await;
    assert!(matches!(
        r,
        Err(StoreError::Metadata(MetadataRefusal::TooMany {
            max: 3,
            per: "user"
        }))
    ));
    for bad in ["/other/x", "/private/a//b", "/shared/x*", "/private/"] {
        assert!(
            matches!(
                t.store
                    .set_metadata(&alice, Some("INBOX"), set(&[(bad, Some("1"))]))
                    .await,
                Err(StoreError::InvalidName { .. })
            ),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn entries_move_with_rename_and_go_with_delete_and_the_account() {
    let t = open().await;
    let alice = t.user("alice").await;
    t.store
        .create_mailbox(&alice, "Work/Old", None)
        .await
        .unwrap();
    t.store
        .set_metadata(
            &alice,
            Some("Work/Old"),
            set(&[("/shared/comment", Some("c"))]),
        )
        .await
        .unwrap();
    t.store
        .rename_mailbox(&alice, "Work", "Play")
        .await
        .unwrap();
    let got = t
        .store
        .get_metadata(&alice, Some("Play/Old"))
        .await
        .unwrap();
    assert_eq!(names(&got), [("/shared/comment", &b"c"[..])]);
    t.store
        .create_mailbox(&alice, "Work/Old", None)
        .await
        .unwrap();
    assert!(
        t.store
            .get_metadata(&alice, Some("Work/Old"))
            .await
            .unwrap()
            .is_empty(),
        "a new mailbox under the old name starts empty"
    );
    t.store.delete_mailbox(&alice, "Play/Old").await.unwrap();
    t.store
        .create_mailbox(&alice, "Play/Old", None)
        .await
        .unwrap();
    assert!(
        t.store
            .get_metadata(&alice, Some("Play/Old"))
            .await
            .unwrap()
            .is_empty()
    );
    // A parent deleted while it has children stays \Noselect, without its entries.
    t.store
        .set_metadata(&alice, Some("Play"), set(&[("/private/p", Some("p"))]))
        .await
        .unwrap();
    t.store.delete_mailbox(&alice, "Play").await.unwrap();
    assert!(
        t.store
            .get_metadata(&alice, Some("Play"))
            .await
            .unwrap()
            .is_empty()
    );
    // The account's deletion takes every entry it owns, server ones included.
    t.store
        .set_metadata(&alice, None, set(&[("/private/x", Some("1"))]))
        .await
        .unwrap();
    t.store
        .set_metadata(&alice, Some("INBOX"), set(&[("/private/y", Some("1"))]))
        .await
        .unwrap();
    t.store.delete_user(&admin(), "alice").await.unwrap();
    let alice = t.user("alice").await;
    assert!(t.store.get_metadata(&alice, None).await.unwrap().is_empty());
    assert!(
        t.store
            .get_metadata(&alice, Some("INBOX"))
            .await
            .unwrap()
            .is_empty()
    );
    let rows = super::raw_sql(&t.store, "SELECT count(*) FROM metadata").await;
    assert_eq!(rows, 0, "no orphan rows");
    t.consistent().await;
    // The consistency check notices rows nothing owns.
    super::raw_sql(
        &t.store,
        &format!(
            "INSERT INTO metadata (mailbox_id, owner_id, name, value) VALUES (999, 0, '/shared/a', {})",
            if super::on_postgres() { "'\\x00'" } else { "x'00'" }
        ),
    )
    .await;
    let c = t.store.check_consistency().await.unwrap();
    assert_eq!(
        c.problems,
        ["1 metadata entries of a gone mailbox or account"]
    );
}

#[tokio::test]
async fn the_event_commits_with_the_change() {
    let t = open().await;
    let alice = t.user("alice").await;
    let c = t
        .store
        .set_metadata(&alice, Some("INBOX"), set(&[("/private/a", Some("1"))]))
        .await
        .unwrap();
    let id = c.events[0].herald_id().unwrap();
    assert_eq!(t.last().await, id);
    let stored = t.store.events_after(id - 1, 1).await.unwrap();
    assert!(
        stored[0]
            .json
            .contains("\"vnd.herald.metadataEntries\":[\"/private/a\"]")
    );
    // With the metadata group off the change still happens, without an event.
    let t = open_with(|c| c.event_groups = vec![herald_events::EventGroup::Message]).await;
    t.store
        .add_user(&admin(), "bob", "pw", false)
        .await
        .unwrap();
    let bob = SessionContext::user("imap", "bob");
    let c = t
        .store
        .set_metadata(&bob, None, set(&[("/private/a", Some("1"))]))
        .await
        .unwrap();
    assert!(c.events.is_empty());
    assert_eq!(t.store.get_metadata(&bob, None).await.unwrap().len(), 1);
}

#[test]
fn a_version_9_store_gains_the_metadata_table() {
    let (_dir, conn) = super::migrated_after("DROP TABLE metadata; PRAGMA user_version = 9;");
    conn.execute(
        "INSERT INTO metadata (mailbox_id, owner_id, name, value) VALUES (0, 0, '/shared/a', x'00')",
        [],
    )
    .unwrap();
}

/// A mailbox shared with bob: he reads its shared entries with `lr`, keeps private entries of
/// his own on it, and sets shared ones only with `w`; a user it is not shared with cannot
/// tell it exists.
#[tokio::test]
async fn entries_of_a_shared_mailbox_follow_its_acl() {
    let t = open().await;
    let alice = t.user("alice").await;
    let bob = t.user("bob").await;
    let carol = t.user("carol").await;
    t.store.create_mailbox(&alice, "Team", None).await.unwrap();
    t.store
        .set_metadata(
            &alice,
            Some("Team"),
            set(&[
                ("/shared/comment", Some("the team's")),
                ("/private/comment", Some("alice's own")),
            ]),
        )
        .await
        .unwrap();
    let rights = |s: &str| Some(crate::Rights::parse(s).unwrap());
    t.store
        .set_acl(&alice, "Team", "bob", rights("lr"))
        .await
        .unwrap();
    let got = t
        .store
        .get_metadata(&bob, Some("user/alice/Team"))
        .await
        .unwrap();
    assert_eq!(names(&got), [("/shared/comment", &b"the team's"[..])]);

    // bob's private entry is his alone.
    let c = t
        .store
        .set_metadata(
            &bob,
            Some("user/alice/Team"),
            set(&[("/private/comment", Some("bob's note"))]),
        )
        .await
        .unwrap();
    t.check(&c.events).await;
    let e = &c.events[0];
    assert_eq!(e.user.as_deref(), Some("bob"));
    assert_eq!(
        e.mailbox_id.as_ref().unwrap().user.as_deref(),
        Some("alice")
    );
    assert_eq!(
        e.mailbox_id.as_ref().unwrap().mailbox.as_deref(),
        Some("Team")
    );
    let mine = t
        .store
        .get_metadata(&bob, Some("user/alice/Team"))
        .await
        .unwrap();
    assert_eq!(
        names(&mine),
        [
            ("/private/comment", &b"bob's note"[..]),
            ("/shared/comment", &b"the team's"[..])
        ]
    );
    let hers = t.store.get_metadata(&alice, Some("Team")).await.unwrap();
    assert_eq!(
        names(&hers),
        [
            ("/private/comment", &b"alice's own"[..]),
            ("/shared/comment", &b"the team's"[..])
        ]
    );

    // A shared entry needs `w`.
    match t
        .store
        .set_metadata(
            &bob,
            Some("user/alice/Team"),
            set(&[("/shared/comment", Some("bob's"))]),
        )
        .await
    {
        Err(StoreError::NoPermission { needed, .. }) => assert_eq!(needed, "w"),
        other => panic!("{other:?}"),
    }
    t.store
        .set_acl(&alice, "Team", "bob", rights("lrw"))
        .await
        .unwrap();
    t.store
        .set_metadata(
            &bob,
            Some("user/alice/Team"),
            set(&[("/shared/comment", Some("bob's"))]),
        )
        .await
        .unwrap();
    let hers = t.store.get_metadata(&alice, Some("Team")).await.unwrap();
    assert_eq!(hers[1].value, b"bob's");

    // carol: no rights, no mailbox.
    for r in [
        t.store
            .get_metadata(&carol, Some("user/alice/Team"))
            .await
            .err(),
        t.store
            .set_metadata(
                &carol,
                Some("user/alice/Team"),
                set(&[("/private/x", Some("y"))]),
            )
            .await
            .err(),
    ] {
        assert!(matches!(r, Some(StoreError::NotFound { .. })), "{r:?}");
    }
}
