//! Event webhooks, end to end: a real HTTP receiver started by the test gets the events of
//! registration, logins, password changes and logouts, and checks their Standard Webhooks
//! signatures with the algorithm written out here; a receiver that is down gets the event
//! once it is back, under the same `webhook-id`; WEBHOOK_EVENTS filters; bad settings stop
//! start-up. A lockout, a reused refresh token and a command send their events too;
//! `tollgate webhooks list|retry` handles webhooks alone; `/metrics` times deliveries.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tollgate_core::settings::Secret;
use tollgate_store::OutboxFilter;

use crate::common;
use common::signed_endpoint::{assert_signed, Reply, SignedEndpoint, SignedRequest};
use common::{Backend, TestServer};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "quantum-ferret-72";
/// 32 random bytes, base64, behind `whsec_`.
const SECRET: &str = "whsec_C2FjK7JVoS1uVxzZ0TJm9qbt4nHeNs3Q8mwP+d7Tj1A=";
/// How long an event may take to arrive when the receiver is up: the sender is woken by the
/// event, so it takes milliseconds; seconds mean it waited for a poll or a retry.
const PROMPT: Duration = Duration::from_secs(3);

/// The `type` of a delivered event.
fn event_type(request: &SignedRequest) -> String {
    request.json()["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A webhook endpoint on a real socket: answers with the statuses queued in `answers` (200
/// once they run out).
struct Receiver;

impl Receiver {
    async fn start() -> SignedEndpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Receiver::serve(listener, Vec::new())
    }

    fn serve(listener: tokio::net::TcpListener, answers: Vec<u16>) -> SignedEndpoint {
        let queue = Mutex::new(answers);
        SignedEndpoint::serve(listener, "/hook", move |_| {
            let mut queue = queue.lock().expect("lock");
            Reply::status(if queue.is_empty() {
                200
            } else {
                queue.remove(0)
            })
        })
    }
}

async fn with_webhooks(backend: Backend, urls: Vec<String>, events: &[&str]) -> TestServer {
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    TestServer::start_on(backend, move |s| {
        s.webhook_urls = urls;
        s.webhook_secret = Secret(SECRET.to_owned());
        s.webhook_events = events;
    })
    .await
}

on_both_backends! {
    /// Registration, a failed and a successful login, a logout and a password change each send
    /// their event, signed, within moments of the request: the user's fields, never a password.
    async fn account_and_session_events_reach_the_receiver_signed(backend) {
        let receiver = Receiver::start().await;
        let server = with_webhooks(backend, vec![receiver.url()], &[]).await;
        let started = Instant::now();

        let (status, body) = server.post_json("/api/users/", json!({
            "username": "ann", "email": "ann@example.com", "password": PASSWORD,
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, _) = server.post_json("/api/token/", json!({
            "username": "ann", "password": "wrong password",
        })).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (refresh, _) = server.obtain_pair("ann", PASSWORD).await;
        let (status, body) = server.post_json("/api/token/blacklist/", json!({ "refresh": refresh })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, access) = server.obtain_pair("ann", PASSWORD).await;
        let (status, body) = server.send(Method::POST, "/api/user/password/", Some(&access),
            Some(json!({ "old_password": PASSWORD, "new_password": NEW_PASSWORD }))).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let received = receiver.wait_for(6, PROMPT).await;
        assert!(started.elapsed() < PROMPT, "events took {:?}", started.elapsed());
        let mut types: Vec<String> = received.iter().map(event_type).collect();
        types.sort();
        assert_eq!(types, [
            "session.revoked", "user.created", "user.logged_in", "user.logged_in",
            "user.login_failed", "user.password_changed",
        ]);
        let mut ids: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), received.len(), "every event has an id of its own");
        let user_id = server.store().find_user(tollgate_store::UserField::Username, "ann").await.expect("query").expect("ann").id;
        for request in &received {
            assert_signed(request, SECRET);
            assert!(!request.body.contains(PASSWORD) && !request.body.contains(NEW_PASSWORD));
            assert!(!request.body.contains("pbkdf2") && !request.body.contains("argon2"));
            let event = request.json();
            assert!(event["timestamp"].as_str().expect("timestamp").ends_with('Z'), "{event}");
            let data = &event["data"];
            match event["type"].as_str().expect("type") {
                "user.created" | "user.password_changed" | "user.logged_in" => {
                    assert_eq!(data["user"]["id"], user_id, "{event}");
                    assert_eq!(data["user"]["username"], "ann", "{event}");
                    assert_eq!(data["user"]["email"], "ann@example.com", "{event}");
                }
                "user.login_failed" => {
                    assert_eq!(data["user"]["id"], user_id, "{event}");
                    assert_eq!(data["identifier"], "ann", "{event}");
                    assert_eq!(data["reason"], "wrong_password", "{event}");
                    assert_eq!(data["ip_address"], "127.0.0.1", "{event}");
                }
                "session.revoked" => {
                    assert_eq!(data["user_id"], user_id, "{event}");
                    assert_eq!(data["reason"], "logout", "{event}");
                    assert_eq!(data["session_id"], common::payload(&refresh)["sid"], "{event}");
                }
                other => panic!("unexpected event {other}"),
            }
        }
        server.stop().await;
    }

    /// A receiver that is down when the event happens gets it once it is back, after a failed
    /// attempt and a 503, each time under the id the outbox keeps for the message.
    async fn a_receiver_down_then_up_gets_the_event_under_the_same_id(backend) {
        // A port nobody listens on, which the receiver takes later.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        drop(listener);
        let url = format!("http://{addr}/hook");
        let server = with_webhooks(backend, vec![url.clone()], &[]).await;
        server.create_user("ann", PASSWORD).await;
        let (status, _) = server.post_json("/api/token/", json!({
            "username": "ann", "password": "wrong password",
        })).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // The first attempt fails while nothing listens.
        let start = Instant::now();
        let message = loop {
            let messages = server.store().outbox_messages(OutboxFilter::Pending, 10).await.expect("list");
            if let Some(message) = messages.into_iter().find(|m| m.last_error.is_some()) {
                break message;
            }
            assert!(start.elapsed() < PROMPT, "no failed attempt");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!((message.channel.as_str(), message.topic.as_str()), ("webhook", "user.login_failed"));
        assert_eq!(message.destination, url);

        let listener = tokio::net::TcpListener::bind(addr).await.expect("the same port again");
        let receiver = Receiver::serve(listener, vec![503]);
        // Retried after 2 s (refused), then after 4 s more (503).
        let received = receiver.wait_for(2, Duration::from_secs(12)).await;
        assert_eq!(received.len(), 2, "{received:?}");
        for request in &received {
            assert_eq!(request.id, format!("msg_{}", message.id));
            assert_eq!(event_type(request), "user.login_failed");
            assert_signed(request, SECRET);
        }
        assert_eq!(received[0].body, received[1].body, "the same event, not a new one");
        let start = Instant::now();
        loop {
            let all = server.store().outbox_messages(OutboxFilter::All, 10).await.expect("list");
            let row = all.iter().find(|m| m.id == message.id).expect("kept");
            if row.delivered_at.is_some() {
                assert_eq!(row.attempts, 3);
                break;
            }
            assert!(start.elapsed() < PROMPT, "not marked delivered: {row:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.stop().await;
    }
}

/// WEBHOOK_EVENTS lets only the events it names into the outbox; each endpoint of
/// WEBHOOK_URLS gets each of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_events_filters_and_every_endpoint_gets_each_event() {
    let (first, second) = (Receiver::start().await, Receiver::start().await);
    let server = with_webhooks(
        Backend::Sqlite,
        vec![first.url(), second.url()],
        &["user.login_failed", "user.locked"],
    )
    .await;
    let (status, _) = server
        .post_json(
            "/api/users/",
            json!({ "username": "ann", "email": "ann@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    server.obtain_pair("ann", PASSWORD).await;
    let (status, _) = server
        .post_json(
            "/api/token/",
            json!({ "username": "ann", "password": "wrong password" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let messages = server
        .store()
        .outbox_messages(OutboxFilter::All, 10)
        .await
        .expect("list");
    let mut kept: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m.topic.as_str(), m.destination.as_str()))
        .collect();
    kept.sort_unstable();
    let (first_url, second_url) = (first.url(), second.url());
    let mut expected = vec![
        ("user.login_failed", first_url.as_str()),
        ("user.login_failed", second_url.as_str()),
    ];
    expected.sort_unstable();
    assert_eq!(kept, expected);
    for receiver in [&first, &second] {
        let received = receiver.wait_for(1, PROMPT).await;
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(event_type(&received[0]), "user.login_failed");
        assert_signed(&received[0], SECRET);
    }
    server.stop().await;
}

/// Unusable webhook settings stop the server before it starts, naming the setting and never
/// showing the key.
#[test]
fn invalid_webhook_settings_stop_start_up_naming_the_setting() {
    use common::binary::{run, text, tollgate};
    let dir = tempfile::tempdir().expect("temp dir");
    let check = |url: &str, secret: &str| {
        let output = run(tollgate(dir.path(), &["check"])
            .env(
                "TOLLGATE_SIGNING_KEY",
                "webhook-test-signing-key-long-enough-0123456789",
            )
            .env("TOLLGATE_WEBHOOK_URLS", url)
            .env("TOLLGATE_WEBHOOK_SECRET", secret));
        (output.status.success(), text(&output.stderr))
    };
    let url = "https://app.example.com/webhooks";
    let (ok, stderr) = check(url, "C2FjK7JVoS1uVxzZ0TJm9qbt4nHeNs3Q8mwP");
    assert!(!ok && stderr.contains("WEBHOOK_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("C2FjK7JV"),
        "the key is not shown: {stderr}"
    );
    let (ok, stderr) = check(url, "");
    assert!(!ok && stderr.contains("WEBHOOK_SECRET"), "{stderr}");
    let (ok, stderr) = check("app.example.com/webhooks", SECRET);
    assert!(!ok && stderr.contains("WEBHOOK_URLS"), "{stderr}");
    let (ok, stderr) = check(url, SECRET);
    assert!(ok, "{stderr}");
}

on_both_backends! {
    /// A failure that reaches LOGIN_LOCKOUT_THRESHOLD sends `user.locked` beside
    /// `user.login_failed`; a rotated refresh token replayed after the grace period sends
    /// `token.reuse_detected` naming the user, the session and the token. Both signed.
    async fn a_lockout_and_a_reused_refresh_token_send_their_events(backend) {
        let receiver = Receiver::start().await;
        let url = receiver.url();
        let server = TestServer::start_on(backend, move |s| {
            s.webhook_urls = vec![url];
            s.webhook_secret = Secret(SECRET.to_owned());
            s.webhook_events = vec!["user.locked".to_owned(), "token.reuse_detected".to_owned()];
            s.login_lockout_threshold = 2;
            s.rotate_refresh_tokens = true;
            s.blacklist_after_rotation = true;
            s.refresh_token_reuse_detection = true;
            s.refresh_token_reuse_grace = Duration::from_secs(1);
        })
        .await;
        let ann = server.create_user("ann", PASSWORD).await;
        let bob = server.create_user("bob", PASSWORD).await;
        for _ in 0..2 {
            let (status, _) = server.post_json("/api/token/", json!({
                "username": "ann", "password": "wrong password",
            })).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (first, _) = server.obtain_pair("bob", PASSWORD).await;
        let (status, body) = server.post_json("/api/token/refresh/", json!({ "refresh": first })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let (status, body) = server.post_json("/api/token/refresh/", json!({ "refresh": first })).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

        let received = receiver.wait_for(2, PROMPT).await;
        assert_eq!(received.len(), 2, "{received:?}");
        for request in &received {
            assert_signed(request, SECRET);
        }
        let event = |kind: &str| {
            received
                .iter()
                .find(|r| event_type(r) == kind)
                .unwrap_or_else(|| panic!("no {kind}: {received:?}"))
                .json()
        };
        let locked = event("user.locked");
        assert_eq!(locked["data"]["user"]["id"], ann.id, "{locked}");
        assert_eq!(locked["data"]["identifier"], "ann", "{locked}");
        assert_eq!(locked["data"]["reason"], "wrong_password", "{locked}");
        let reused = event("token.reuse_detected");
        let claims = common::payload(&first);
        assert_eq!(reused["data"]["user_id"], bob.id, "{reused}");
        assert_eq!(reused["data"]["session_id"], claims["sid"], "{reused}");
        assert_eq!(reused["data"]["jti"], claims["jti"], "{reused}");
        server.stop().await;
    }
}

/// An event of a command (`tollgate changepassword`, run as its own process with the
/// webhook settings) reaches the receiver through the running server's sender, signed;
/// `tollgate webhooks list|retry` sees and sends again webhooks only, as `outbox
/// --channel webhook` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commands_event_is_delivered_and_webhooks_list_and_retry_see_only_webhooks() {
    use common::binary::{run, text, tollgate};
    // The first delivery is refused for good (410), so that the event becomes a dead letter.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receiver = Receiver::serve(listener, vec![410]);
    let server = with_webhooks(Backend::Sqlite, vec![receiver.url()], &[]).await;
    server.create_user("ann", PASSWORD).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let command = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command
            .env("DATABASE_URL", &server.settings.database_url)
            .env("TOLLGATE_WEBHOOK_URLS", receiver.url())
            .env("TOLLGATE_WEBHOOK_SECRET", SECRET);
        command
    };
    let changed = run(command(&["changepassword", "ann", "--no-input"])
        .env("TOLLGATE_NEW_PASSWORD", NEW_PASSWORD));
    assert!(changed.status.success(), "{}", text(&changed.stderr));

    // Sent by the server's sender (which polls each second for other processes' messages).
    let received = receiver.wait_for(1, PROMPT).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_signed(&received[0], SECRET);
    let event = received[0].json();
    assert_eq!(event["type"], "user.password_changed");
    assert_eq!(event["data"]["user"]["username"], "ann");
    assert_eq!(event["data"]["by"], "administrator");

    // A mail given up on too, which the webhook commands leave alone.
    let store = server.store();
    let mail = tollgate_store::NewMessage {
        channel: "email",
        destination: "ann@example.com",
        topic: "password_reset",
        body: "{}",
    };
    // Due in an hour, so that the server's sender cannot claim it before it is marked failed.
    let mail_id = store
        .enqueue(&mail, tollgate_core::unix_now() + 3600)
        .await
        .expect("added");
    store
        .mark_failed(mail_id, "refused", None, tollgate_core::unix_now())
        .await
        .expect("failed");
    let start = Instant::now();
    let webhook_id = loop {
        let failed = store
            .outbox_messages(OutboxFilter::Failed, 10)
            .await
            .expect("list");
        if let Some(message) = failed.iter().find(|m| m.channel == "webhook") {
            break message.id;
        }
        assert!(
            start.elapsed() < PROMPT,
            "the webhook is no dead letter: {failed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let listed = run(command(&["webhooks", "list", "--failed"]));
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    assert!(listing.contains("user.password_changed"), "{listing}");
    assert!(!listing.contains("password_reset"), "no mail: {listing}");
    let listed = run(command(&[
        "outbox",
        "list",
        "--failed",
        "--channel",
        "email",
    ]));
    let listing = text(&listed.stdout);
    assert!(
        listing.contains("password_reset") && !listing.contains("user.password_changed"),
        "{listing}"
    );

    let refused = run(command(&["webhooks", "retry", &mail_id.to_string()]));
    assert!(!refused.status.success(), "a mail is not a webhook");
    assert!(
        text(&refused.stderr).contains("webhook channel"),
        "{}",
        text(&refused.stderr)
    );
    let retried = run(command(&["webhooks", "retry", "--failed"]));
    assert!(retried.status.success(), "{}", text(&retried.stderr));
    assert_eq!(
        text(&retried.stdout).trim(),
        "1 messages will be sent again."
    );
    let received = receiver.wait_for(2, PROMPT).await;
    assert_eq!(received.len(), 2, "sent again: {received:?}");
    assert_eq!(received[1].id, format!("msg_{webhook_id}"));
    assert_eq!(received[1].body, received[0].body);
    let mails = store
        .outbox_messages_on(Some("email"), OutboxFilter::Failed, 10)
        .await
        .expect("list");
    assert_eq!(mails.len(), 1, "the mail is still a dead letter: {mails:?}");
    server.stop().await;
}

/// `/metrics` times webhook deliveries: each attempt's duration and each delivery's delay
/// since the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_delivery_latency_is_in_metrics() {
    let receiver = Receiver::start().await;
    let url = receiver.url();
    let server = TestServer::start_on(Backend::Sqlite, move |s| {
        s.webhook_urls = vec![url];
        s.webhook_secret = Secret(SECRET.to_owned());
        s.metrics_enabled = true;
    })
    .await;
    server.create_user("ann", PASSWORD).await;
    server.obtain_pair("ann", PASSWORD).await;
    assert_eq!(receiver.wait_for(1, PROMPT).await.len(), 1);
    let start = Instant::now();
    let metrics = loop {
        let response = server
            .client
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("sent");
        let text = response.text().await.expect("body");
        if text.contains("tollgate_outbox_delivery_delay_seconds_count") || start.elapsed() > PROMPT
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for line in [
        "tollgate_outbox_attempt_duration_seconds_count{channel=\"webhook\",outcome=\"delivered\"} 1",
        "tollgate_outbox_delivery_delay_seconds_count{channel=\"webhook\"} 1",
        "tollgate_outbox_deliveries_total{channel=\"webhook\",outcome=\"delivered\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    server.stop().await;
}
