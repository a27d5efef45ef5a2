//! The command line's user administration: `createuser --staff`, `users list`, `deleteuser`,
//! and the audit log entries its administrative commands leave, with the operating-system user
//! who ran them.

use tollgate_store::{AuditActor, AuditFilter, PoolConfig, Store, UserField};

use crate::common::binary::{run, text, tollgate};

const PASSWORD: &str = "quantum-ferret-72";

async fn open(dir: &std::path::Path) -> Store {
    Store::connect(
        &format!("sqlite://{}", dir.join("tollgate.db").display()),
        PoolConfig::default(),
    )
    .await
    .expect("opens")
}

#[tokio::test]
async fn users_are_created_listed_and_deleted_and_the_commands_audited() {
    let dir = tempfile::tempdir().expect("temp dir");
    let command = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command
            .env("TOLLGATE_USER_PASSWORD", PASSWORD)
            .env("USER", "operator");
        command
    };
    let staff = run(command(&[
        "createuser",
        "--username",
        "sam",
        "--email",
        "sam@example.com",
        "--staff",
        "--no-input",
    ]));
    assert!(staff.status.success(), "{}", text(&staff.stderr));
    assert!(
        text(&staff.stdout).starts_with("Staff user created successfully: sam (id "),
        "{}",
        text(&staff.stdout)
    );
    for name in ["ann", "annie", "bob"] {
        let created = run(command(&["createuser", "--username", name, "--no-input"]));
        assert!(created.status.success(), "{}", text(&created.stderr));
    }

    let listed = run(command(&["users", "list"]));
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 5, "{listing}");
    assert!(lines[0].starts_with("ID  USERNAME  EMAIL"), "{listing}");
    assert!(
        lines[1].contains("sam       sam@example.com  yes     yes    no         never"),
        "{listing}"
    );
    let searched = run(command(&["users", "list", "--search", "ANN"]));
    let found = text(&searched.stdout);
    assert_eq!(found.lines().count(), 3, "{found}");
    assert!(found.contains("annie") && !found.contains("bob"), "{found}");
    let none = run(command(&["users", "list", "--search", "nobody"]));
    assert_eq!(text(&none.stdout), "No users found.\n");

    // Without a terminal to ask on, deleting needs --yes.
    let unconfirmed = run(command(&["deleteuser", "bob"]));
    assert_eq!(unconfirmed.status.code(), Some(1));
    assert!(
        text(&unconfirmed.stderr).contains("pass --yes"),
        "{}",
        text(&unconfirmed.stderr)
    );
    let deleted = run(command(&["deleteuser", "bob", "--yes"]));
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert!(text(&deleted.stdout).starts_with("User 'bob' (id "));

    let changed = run(command(&["changepassword", "ann", "--no-input"])
        .env("TOLLGATE_NEW_PASSWORD", "another-long-passphrase"));
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    let unlocked = run(command(&["unlock", "ann"]));
    assert!(unlocked.status.success(), "{}", text(&unlocked.stderr));
    let deactivated = run(command(&["deactivate", "annie"]));
    assert!(
        deactivated.status.success(),
        "{}",
        text(&deactivated.stderr)
    );

    let store = open(dir.path()).await;
    assert!(store
        .find_user(UserField::Username, "bob")
        .await
        .expect("query")
        .is_none());
    let sam = store
        .find_user(UserField::Username, "sam")
        .await
        .expect("query")
        .expect("sam exists");
    assert!(sam.is_staff && !sam.is_superuser);
    let entries = store
        .audit_entries(AuditFilter::default(), 20, 0)
        .await
        .expect("reads");
    store.close().await;
    let actions: Vec<(&str, Option<&str>)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.target_name.as_deref()))
        .collect();
    assert_eq!(
        actions,
        [
            ("user.update", Some("annie")),
            ("user.unlock", Some("ann")),
            ("user.set_password", Some("ann")),
            ("user.delete", Some("bob")),
            ("user.create", Some("bob")),
            ("user.create", Some("annie")),
            ("user.create", Some("ann")),
            ("user.create", Some("sam")),
        ]
    );
    let operator = AuditActor::Command {
        os_user: "operator".to_owned(),
    };
    assert!(entries
        .iter()
        .all(|e| e.actor == operator && e.client_addr.is_none()));
    assert_eq!(
        entries.last().map(|e| e.details.as_str()),
        Some(r#"{"is_active":true,"is_staff":true,"is_superuser":false}"#)
    );
    assert!(!entries.iter().any(|e| e.details.contains("passphrase")));
}
