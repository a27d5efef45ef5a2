//! Password reset by mail, end to end against a real SMTP server (aiosmtpd): the mail is read
//! from its Maildir and its link followed, as a user would.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::smtp::{delivered, link_in, wait_for, SmtpServer};
use crate::common::{token_field, Backend, TestServer};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "quantum-ferret-72";
const RESET_PAGE: &str = "https://app.example.com/password/reset/confirm/{uid}/{token}";
/// How long a mail may take to arrive once it can be sent.
const MAIL_WAIT: Duration = Duration::from_secs(10);

async fn with_mail(backend: Backend, smtp_url: &str) -> TestServer {
    let smtp_url = smtp_url.to_owned();
    TestServer::start_on(backend, |s| {
        s.smtp_url = tollgate_core::settings::Secret(smtp_url);
        s.password_reset_url = Some(RESET_PAGE.to_owned());
    })
    .await
}

/// POSTs JSON; the status and the body as text (204 has none).
async fn post(server: &TestServer, path: &str, body: Value) -> (StatusCode, String) {
    let response = server
        .client
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

async fn ask_reset(server: &TestServer, email: &str) {
    let answer = post(
        server,
        "/api/users/reset_password/",
        json!({ "email": email }),
    )
    .await;
    assert_eq!(answer, (StatusCode::NO_CONTENT, String::new()));
}

/// The `uid` and `token` of the reset link in a mail's text.
fn link_of(text: &str) -> (String, String) {
    link_in(text, "https://app.example.com/password/reset/confirm/")
}

async fn confirm(
    server: &TestServer,
    uid: &str,
    token: &str,
    password: &str,
) -> (StatusCode, String) {
    let body = json!({ "uid": uid, "token": token, "new_password": password });
    post(server, "/api/users/reset_password_confirm/", body).await
}

async fn log_in(server: &TestServer, password: &str) -> (StatusCode, Value) {
    server
        .post_json(
            "/api/token/",
            json!({"username": "ann", "password": password}),
        )
        .await
}

on_both_backends! {
    /// Ann forgot her password: she asks for a link, the mail arrives, the link's page sets a
    /// new password. Her old sessions end, she logs in with the new password, the link works
    /// once, and a notice of the change arrives.
    async fn a_forgotten_password_is_reset_through_the_mailed_link(backend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = SmtpServer::start_in(dir.path());
        let server = with_mail(backend, &smtp.url()).await;
        let ann = server.create_user("ann", PASSWORD).await;
        let (status, before) = log_in(&server, PASSWORD).await;
        assert_eq!(status, StatusCode::OK);

        ask_reset(&server, "ANN@example.com").await;
        let mails = wait_for(&smtp.maildir, "ann@example.com", 1, MAIL_WAIT).await;
        assert_eq!(mails[0].subject, "Reset your password");
        assert!(mails[0].raw.contains("From: Tollgate <noreply@localhost>"), "{}", mails[0].raw);
        let (uid, token) = link_of(&mails[0].text);
        assert_eq!(uid, "MQ", "djoser's uid: the id in URL-safe base64");

        // The policy refuses a weak password in Django's words; the link stays usable.
        let (status, body) = confirm(&server, &uid, &token, "ann").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let refusal: Value = serde_json::from_str(&body).expect("JSON");
        assert!(refusal["new_password"].as_array().is_some_and(|m| !m.is_empty()), "{refusal}");

        assert_eq!(confirm(&server, &uid, &token, NEW_PASSWORD).await, (StatusCode::NO_CONTENT, String::new()));
        // The reset is in her login history, newest, as no login.
        let events = server.store().login_events(ann.id, 10).await.expect("listed");
        assert!(events[0].is_password_reset(), "{events:?}");
        assert!(!events[0].succeeded);
        assert_eq!(events[0].reason.as_deref(), Some("password_reset"));
        assert_eq!(events[0].client_addr, "127.0.0.1");
        assert_eq!(events.iter().filter(|e| e.is_password_reset()).count(), 1, "{events:?}");
        // Every earlier login ended; the new password works, the old one no longer.
        let (status, _) = server
            .post_json("/api/token/refresh/", json!({"refresh": token_field(&before, "refresh")}))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(log_in(&server, PASSWORD).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(log_in(&server, NEW_PASSWORD).await.0, StatusCode::OK);
        // The link is spent.
        let (status, body) = confirm(&server, &uid, &token, "another-long-passphrase").await;
        assert_eq!((status, serde_json::from_str::<Value>(&body).expect("JSON")),
            (StatusCode::BAD_REQUEST, json!({"token": ["Invalid token for given user."]})));

        let mails = wait_for(&smtp.maildir, "ann@example.com", 2, MAIL_WAIT).await;
        assert_eq!(mails[1].subject, "Your password was changed");
        assert!(!mails[1].text.contains(&token));

        // `tollgate events` lists the reset between the logins, under its own outcome.
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = crate::common::binary::tollgate(dir.path(), &["events", "--user", "ann"]);
        command.env("DATABASE_URL", &server.settings.database_url);
        let listed = crate::common::binary::run(command);
        let listing = crate::common::binary::text(&listed.stdout);
        assert!(listed.status.success(), "{}", crate::common::binary::text(&listed.stderr));
        let outcomes: Vec<&str> = listing
            .lines()
            .skip(2)
            .filter_map(|line| line.split("  ").map(str::trim).filter(|c| !c.is_empty()).nth(1))
            .collect();
        let expected = ["succeeded", "failed: wrong_password", "password_reset", "succeeded"];
        assert_eq!(outcomes, expected, "{listing}");
    }

    /// An address without an account gets the same answer and no mail; so does an inactive
    /// account.
    async fn an_unknown_address_gets_the_same_answer_and_no_mail(backend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = SmtpServer::start_in(dir.path());
        let server = with_mail(backend, &smtp.url()).await;
        let bob = server.create_user("bob", PASSWORD).await;
        server.store().set_active(bob.id, false).await.expect("deactivated");
        server.create_user("ann", PASSWORD).await;

        ask_reset(&server, "nobody@example.com").await;
        ask_reset(&server, "bob@example.com").await;
        // A known address, asked last: once its mail is in, the others would have been too.
        ask_reset(&server, "ann@example.com").await;
        wait_for(&smtp.maildir, "ann@example.com", 1, MAIL_WAIT).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let all = delivered(&smtp.maildir);
        assert_eq!(all.len(), 1, "{all:?}");
    }

    /// A link is void once a newer one is sent and once the password changes another way; a
    /// uid naming nobody is refused in djoser's words.
    async fn a_link_is_void_once_superseded_or_the_password_changes(backend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = SmtpServer::start_in(dir.path());
        let server = with_mail(backend, &smtp.url()).await;
        let ann = server.create_user("ann", PASSWORD).await;
        ask_reset(&server, "ann@example.com").await;
        let first = link_of(&wait_for(&smtp.maildir, "ann@", 1, MAIL_WAIT).await[0].text);
        ask_reset(&server, "ann@example.com").await;
        let second = link_of(&wait_for(&smtp.maildir, "ann@", 2, MAIL_WAIT).await[1].text);
        let invalid_token = json!({"token": ["Invalid token for given user."]});
        let (status, body) = confirm(&server, &first.0, &first.1, NEW_PASSWORD).await;
        assert_eq!((status, serde_json::from_str::<Value>(&body).expect("JSON")), (StatusCode::BAD_REQUEST, invalid_token.clone()));

        let (status, body) = confirm(&server, "Nzc3", &second.1, NEW_PASSWORD).await;
        assert_eq!((status, serde_json::from_str::<Value>(&body).expect("JSON")),
            (StatusCode::BAD_REQUEST, json!({"uid": ["Invalid user id or user doesn't exist."]})));

        // The password changes by another path: the link dies with the old password.
        let hash = server.state.passwords.hash("changed-by-an-admin-42".to_owned()).await;
        server.store().change_password(ann.id, &hash, tollgate_core::unix_now()).await.expect("changed");
        let (status, body) = confirm(&server, &second.0, &second.1, NEW_PASSWORD).await;
        assert_eq!((status, serde_json::from_str::<Value>(&body).expect("JSON")), (StatusCode::BAD_REQUEST, invalid_token));
    }

    /// The SMTP server is down when the reset is asked for: the request is answered as usual,
    /// and the mail goes out once the server is back, without anyone asking again.
    async fn a_mail_queued_while_smtp_is_down_arrives_when_it_returns(backend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = crate::common::redis_server::free_port();
        let server = with_mail(backend, &format!("smtp://127.0.0.1:{port}")).await;
        server.create_user("ann", PASSWORD).await;
        ask_reset(&server, "ann@example.com").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let smtp = SmtpServer::start(port, dir.path().join("maildir"));
        // Retries back off (2 s, 4 s, 8 s...): the next one comes within 8 s of now.
        let mails = wait_for(&smtp.maildir, "ann@example.com", 1, Duration::from_secs(15)).await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].subject, "Reset your password");
    }
}

/// Without a mail server, the reset endpoints say so rather than pretend.
#[tokio::test]
async fn without_smtp_the_reset_endpoints_say_it_is_not_configured() {
    let server =
        TestServer::start_with(|s| s.password_reset_url = Some(RESET_PAGE.to_owned())).await;
    let (status, body) = post(
        &server,
        "/api/users/reset_password/",
        json!({"email": "a@b.c"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["code"], "not_configured");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("SMTP_URL")),
        "{body}"
    );
}

/// A mail given up on is listed by `tollgate outbox list --failed`, and sent once
/// `tollgate outbox retry --failed` asks for it again.
#[tokio::test]
async fn outbox_command_lists_a_dead_letter_and_sends_it_again() {
    use crate::common::binary::{run, text, tollgate};
    let dir = tempfile::tempdir().expect("temp dir");
    let port = crate::common::redis_server::free_port();
    let server = with_mail(Backend::Sqlite, &format!("smtp://127.0.0.1:{port}")).await;
    server.create_user("ann", PASSWORD).await;
    ask_reset(&server, "ann@example.com").await;
    // Wait for the first failed attempt, then give the message up as a day of failures would.
    let id = loop {
        let failing = server
            .store()
            .outbox_messages(tollgate_store::OutboxFilter::Pending, 10)
            .await
            .expect("listed");
        if let Some(message) = failing.iter().find(|m| m.last_error.is_some()) {
            break message.id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let now = tollgate_core::unix_now();
    server
        .store()
        .mark_failed(id, "connection refused", None, now)
        .await
        .expect("given up");
    let cli = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command.env("DATABASE_URL", &server.settings.database_url);
        run(command)
    };
    let listed = cli(&["outbox", "list", "--failed"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    let line = listing
        .lines()
        .find(|line| line.trim_start().starts_with(&id.to_string()))
        .unwrap_or_else(|| panic!("{listing}"));
    for part in [
        "password_reset",
        "failed",
        "ann@example.com",
        "connection refused",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(
        !listing.contains("reset/confirm"),
        "no link is shown: {listing}"
    );

    let smtp = SmtpServer::start(port, dir.path().join("maildir"));
    let retried = cli(&["outbox", "retry", "--failed"]);
    assert!(retried.status.success(), "{}", text(&retried.stderr));
    assert_eq!(
        text(&retried.stdout).trim(),
        "1 messages will be sent again."
    );
    let mails = wait_for(&smtp.maildir, "ann@example.com", 1, MAIL_WAIT).await;
    assert_eq!(mails[0].subject, "Reset your password");
    // Once recorded as delivered, it cannot be sent again.
    while server.store().outbox_depth().await.expect("depth").pending > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = cli(&["outbox", "retry", &id.to_string()]);
    assert!(
        !again.status.success(),
        "a delivered message is not sent twice"
    );
}

/// Neither the token nor the link of a reset appears in the server's logs, at any level.
#[tokio::test]
async fn reset_links_never_reach_the_logs() {
    use crate::common::binary::{tollgate, Served};
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = SmtpServer::start_in(dir.path());
    let mut command = tollgate(dir.path(), &[]);
    command
        .env("TOLLGATE_LOG", "trace")
        .env("TOLLGATE_SMTP_URL", smtp.url())
        .env("TOLLGATE_PASSWORD_RESET_URL", RESET_PAGE);
    let created = crate::common::binary::run({
        let mut create = tollgate(
            dir.path(),
            &[
                "createuser",
                "--username",
                "ann",
                "--email",
                "ann@example.com",
                "--no-input",
            ],
        );
        create.env("TOLLGATE_USER_PASSWORD", PASSWORD);
        create
    });
    assert!(
        created.status.success(),
        "{}",
        crate::common::binary::text(&created.stderr)
    );
    let mut served = Served::start(command).await;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/users/reset_password/", served.base))
        .json(&json!({"email": "ann@example.com"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let mails = wait_for(&smtp.maildir, "ann@example.com", 1, MAIL_WAIT).await;
    let (uid, token) = link_of(&mails[0].text);
    let body = json!({"uid": uid, "token": token, "new_password": NEW_PASSWORD});
    let response = client
        .post(format!("{}/api/users/reset_password_confirm/", served.base))
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    wait_for(&smtp.maildir, "ann@example.com", 2, MAIL_WAIT).await;
    // At trace level the logs never go quiet (the outbox looks every second): read what came
    // until now and a little after.
    let mut lines = served.start_logs.clone();
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Some(line)) = tokio::time::timeout_at(until, served.logs.recv()).await {
        lines.push(line);
    }
    assert!(
        lines.iter().any(|line| line.contains("link mail queued")),
        "trace logs were read"
    );
    let leaked: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains(&token) || line.contains("reset/confirm/"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
}
