//! API keys, end to end: a key made with the `tollgate apikey` command lets a backend have a
//! login's tokens issued to a user it names at `POST /api/token/issue/`; the tokens refresh, and
//! their session, login record and `user.logged_in` event name the key. A bearer token, a
//! revoked or unknown key and a key without the `tokens:issue` scope are refused.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate_core::settings::{LoginResponse, Secret};
use tollgate_core::unix_now;
use tollgate_store::{NewApiKey, OutboxFilter};

use crate::common;
use common::binary::{run as run_binary, text, tollgate};
use common::{payload, token_field, Backend, TestServer};

const PASSWORD: &str = "correct horse battery";
const ISSUE: &str = "/api/token/issue/";

/// A `tollgate` command on the server's database.
fn command(server: &TestServer, dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = tollgate(dir, args);
    command.env("DATABASE_URL", &server.settings.database_url);
    command
}

/// Runs `tollgate apikey create` and returns the key it prints.
fn create_key(server: &TestServer, dir: &std::path::Path, name: &str) -> String {
    let output = run_binary(command(
        server,
        dir,
        &[
            "apikey",
            "create",
            "--name",
            name,
            "--scope",
            "tokens:issue",
        ],
    ));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let key = text(&output.stdout).trim().to_owned();
    assert!(key.starts_with("tg_") && key.len() == 46, "{key}");
    assert!(
        text(&output.stderr).contains("not shown again"),
        "{}",
        text(&output.stderr)
    );
    key
}

/// POSTs `body` to the issue endpoint with `authorization`; the status, the
/// `WWW-Authenticate` header and the body.
async fn issue(
    server: &TestServer,
    authorization: Option<&str>,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut request = server.client.post(server.url(ISSUE)).json(&body);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, challenge, body)
}

on_both_backends! {
    /// A key made on the command line has a pair issued to a user named by username or by id:
    /// the refresh token refreshes, the session and the login history say `api-key:<name>`,
    /// `user.logged_in` names the key, the listing shows its last use, and the database holds
    /// only the key's hash.
    async fn a_key_made_on_the_command_line_issues_tokens_in_a_session_of_the_key(backend) {
        let server = TestServer::start_on(backend, |s| {
            // Nothing listens there: the event waits in the outbox, body and all.
            s.webhook_urls = vec!["http://127.0.0.1:9/hook".to_owned()];
            s.webhook_secret = Secret("whsec_C2FjK7JVoS1uVxzZ0TJm9qbt4nHeNs3Q8mwP+d7Tj1A=".to_owned());
            s.update_last_login = true;
        })
        .await;
        let dir = tempfile::tempdir().expect("temp dir");
        let ann = server.create_user("ann", PASSWORD).await;
        let key = create_key(&server, dir.path(), "shop-backend");
        let authorization = format!("Api-Key {key}");

        let (status, _, body) = issue(&server, Some(&authorization), json!({ "username": "ann" })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut fields: Vec<&String> = body.as_object().expect("object").keys().collect();
        fields.sort();
        assert_eq!(fields, ["access", "refresh"]);
        let (refresh, access) = (token_field(&body, "refresh"), token_field(&body, "access"));
        assert_eq!(payload(&access)["user_id"], ann.id.to_string());
        assert_eq!(payload(&access)["sid"], payload(&refresh)["sid"]);

        let (status, body) = server.post_json("/api/token/refresh/", json!({ "refresh": refresh })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, sessions) = server.send(Method::GET, "/api/sessions/", Some(&access), None).await;
        assert_eq!(status, StatusCode::OK, "{sessions}");
        assert_eq!(sessions.as_array().map(Vec::len), Some(1), "{sessions}");
        assert_eq!(sessions[0]["user_agent"], "api-key:shop-backend");
        assert_eq!(sessions[0]["client_address"], "127.0.0.1");

        let events = server.store().login_events(ann.id, 10).await.expect("events");
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].succeeded);
        assert_eq!(events[0].user_agent.as_deref(), Some("api-key:shop-backend"));
        let found = server.store().find_user(tollgate_store::UserField::Username, "ann").await.expect("query").expect("ann");
        assert!(found.last_login.is_some(), "UPDATE_LAST_LOGIN is honoured");

        let messages = server.store().outbox_messages(OutboxFilter::All, 10).await.expect("outbox");
        let logged_in: Vec<Value> = messages
            .iter()
            .filter(|m| m.topic == "user.logged_in")
            .map(|m| serde_json::from_str(m.body.as_deref().expect("body")).expect("JSON"))
            .collect();
        assert_eq!(logged_in.len(), 1, "{messages:?}");
        let data = &logged_in[0]["data"];
        assert_eq!(data["api_key"], "shop-backend", "{data}");
        assert_eq!(data["user"]["id"], ann.id, "{data}");
        assert_eq!(data["user_agent"], "api-key:shop-backend", "{data}");

        // By id (USER_ID_FIELD), as a number or as text.
        for id in [json!(ann.id), json!(ann.id.to_string())] {
            let (status, _, body) = issue(&server, Some(&authorization), json!({ "user_id": id })).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(payload(&token_field(&body, "access"))["user_id"], ann.id.to_string());
        }

        let listed = run_binary(command(&server, dir.path(), &["apikey", "list"]));
        assert!(listed.status.success(), "{}", text(&listed.stderr));
        let listing = text(&listed.stdout);
        let row = listing.lines().find(|line| line.contains("shop-backend")).expect("listed");
        assert!(row.contains("tokens:issue") && row.contains("live"), "{listing}");
        assert!(!row.contains("never"), "last use recorded: {listing}");
        assert!(!listing.contains(&key), "the key is never shown again: {listing}");
        let stored = server.store().api_keys().await.expect("keys");
        assert!(stored[0].last_used_at.is_some_and(|at| at >= unix_now() - 60));
        if backend == Backend::Sqlite {
            // Only the hash is written: the key is in no file of the database.
            let folder = server.settings.database_url.trim_start_matches("sqlite://");
            let folder = std::path::Path::new(folder).parent().expect("folder");
            for entry in std::fs::read_dir(folder).expect("database folder") {
                let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
                let secret = &key.as_bytes()[3..];
                assert!(!bytes.windows(secret.len()).any(|w| w == secret), "the key is stored");
            }
        }
        server.stop().await;
    }

    /// Revoked at once by name or id; a bearer token, no header, a malformed header, an unknown
    /// key and a key without the `tokens:issue` scope are refused in DRF's shape, with an
    /// `Api-Key` challenge on 401s; a missing, unknown or inactive user gets a clear answer.
    async fn refusals_of_the_issue_endpoint(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let dir = tempfile::tempdir().expect("temp dir");
        server.create_user("ann", PASSWORD).await;
        let key = create_key(&server, dir.path(), "shop");
        let authorization = format!("Api-Key {key}");
        let unauthenticated = |detail: &str, code: &str| {
            (StatusCode::UNAUTHORIZED, Some("Api-Key realm=\"api\"".to_owned()), json!({ "detail": detail, "code": code }))
        };
        let missing = unauthenticated(
            "Authentication credentials were not provided: this endpoint takes `Authorization: Api-Key <key>`.",
            "not_authenticated",
        );
        let invalid = unauthenticated("Invalid API key.", "authentication_failed");

        let (_, access) = server.obtain_pair("ann", PASSWORD).await;
        let body = json!({ "username": "ann" });
        assert_eq!(issue(&server, Some(&format!("Bearer {access}")), body.clone()).await, missing);
        assert_eq!(issue(&server, None, body.clone()).await, missing);
        assert_eq!(
            issue(&server, Some(&format!("Api-Key {key} extra")), body.clone()).await,
            unauthenticated("Invalid API key header: `Api-Key` must be followed by one key.", "authentication_failed"),
        );
        assert_eq!(issue(&server, Some("Api-Key tg_unknownkey"), body.clone()).await, invalid);
        assert_eq!(issue(&server, Some(&format!("Api-Key {access}")), body.clone()).await, invalid);
        assert_eq!(issue(&server, Some(&format!("api-key {key}")), body.clone()).await, missing);

        // A key whose scopes do not include tokens:issue (as another version may make).
        let other = "tg_a-key-with-another-scope-only-0123456789abcd";
        let scopes = vec!["users:read".to_owned()];
        server.store().create_api_key(&NewApiKey {
            name: "reader",
            scopes: &scopes,
            key_hash: &tollgate_core::account_token::hash_account_token(other),
            created_at: unix_now(),
        }).await.expect("stored");
        assert_eq!(
            issue(&server, Some(&format!("Api-Key {other}")), body.clone()).await,
            (StatusCode::FORBIDDEN, None, json!({
                "detail": "This API key does not have the scope tokens:issue.",
                "code": "permission_denied",
            })),
        );

        let (status, _, answer) = issue(&server, Some(&authorization), json!({ "username": "nobody" })).await;
        assert_eq!((status, answer), (StatusCode::NOT_FOUND, json!({
            "detail": "No account found for the given user.", "code": "user_not_found",
        })));
        let (status, _, answer) = issue(&server, Some(&authorization), json!({ "user_id": 999_999 })).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        let (status, _, answer) = issue(&server, Some(&authorization), json!({})).await;
        assert_eq!((status, answer), (StatusCode::BAD_REQUEST, json!({
            "non_field_errors": ["Send user_id or username."],
        })));
        let (status, _, answer) = issue(&server, Some(&authorization), json!({ "user_id": 1, "username": "ann" })).await;
        assert_eq!((status, answer), (StatusCode::BAD_REQUEST, json!({
            "non_field_errors": ["Send user_id or username, not both."],
        })));
        let deactivated = run_binary(command(&server, dir.path(), &["deactivate", "ann"]));
        assert!(deactivated.status.success(), "{}", text(&deactivated.stderr));
        let (status, _, answer) = issue(&server, Some(&authorization), body.clone()).await;
        assert_eq!((status, answer), (StatusCode::BAD_REQUEST, json!({
            "detail": "User is inactive", "code": "user_inactive",
        })));
        let activated = run_binary(command(&server, dir.path(), &["activate", "ann"]));
        assert!(activated.status.success(), "{}", text(&activated.stderr));
        let (status, _, answer) = issue(&server, Some(&authorization), body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");

        let revoked = run_binary(command(&server, dir.path(), &["apikey", "revoke", "shop"]));
        assert!(revoked.status.success(), "{}", text(&revoked.stderr));
        assert!(text(&revoked.stdout).contains("revoked"), "{}", text(&revoked.stdout));
        assert_eq!(issue(&server, Some(&authorization), body.clone()).await, invalid);

        // By id; a name that no live key has is refused.
        let second = create_key(&server, dir.path(), "shop");
        let id = server.store().api_keys().await.expect("keys").iter()
            .find(|k| k.name == "shop" && k.revoked_at.is_none()).expect("live").id;
        let (status, _, _) = issue(&server, Some(&format!("Api-Key {second}")), body.clone()).await;
        assert_eq!(status, StatusCode::OK);
        let revoked = run_binary(command(&server, dir.path(), &["apikey", "revoke", &id.to_string()]));
        assert!(revoked.status.success(), "{}", text(&revoked.stderr));
        assert_eq!(issue(&server, Some(&format!("Api-Key {second}")), body.clone()).await, invalid);
        let again = run_binary(command(&server, dir.path(), &["apikey", "revoke", "shop"]));
        assert!(!again.status.success());
        assert!(text(&again.stderr).contains("no live API key is named or numbered 'shop'"), "{}", text(&again.stderr));
        server.stop().await;
    }
}

/// The answer is a login's in every LOGIN_RESPONSE shape, always in the body (the refresh
/// cookie is for browsers), with the user under LOGIN_RESPONSE_USER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_has_the_shape_of_a_login() {
    let server = TestServer::start_on(Backend::Sqlite, |s| {
        s.refresh_cookie = true;
        s.login_response_user = true;
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    server.create_user("ann", PASSWORD).await;
    let key = create_key(&server, dir.path(), "shop");
    let response = server
        .client
        .post(server.url(ISSUE))
        .header("authorization", format!("Api-Key {key}"))
        .json(&json!({ "username": "ann" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("set-cookie").is_none());
    let body: Value = response.json().await.expect("JSON");
    token_field(&body, "refresh");
    token_field(&body, "access");
    assert_eq!(body["user"]["username"], "ann", "{body}");
    server.stop().await;

    let server = TestServer::start_on(Backend::Sqlite, |s| {
        s.login_response = LoginResponse::Token;
    })
    .await;
    server.create_user("ann", PASSWORD).await;
    let key = create_key(&server, dir.path(), "shop");
    let (status, _, body) = issue(
        &server,
        Some(&format!("Api-Key {key}")),
        json!({ "username": "ann" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_object().map(|b| b.len()), Some(1), "{body}");
    assert!(payload(&token_field(&body, "token"))["orig_iat"].is_i64());
    server.stop().await;
}

/// The command refuses an unknown scope, a blank name and a name a live key has, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apikey_create_refuses_bad_names_and_scopes() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    create_key(&server, dir.path(), "shop");
    let refused = |args: &[&str]| {
        let output = run_binary(command(&server, dir.path(), args));
        assert!(!output.status.success(), "{args:?}");
        assert!(text(&output.stdout).trim().is_empty(), "no key printed");
        text(&output.stderr)
    };
    let stderr = refused(&["apikey", "create", "--name", "x", "--scope", "users:write"]);
    assert!(
        stderr.contains("tokens:issue") && stderr.contains("users:write"),
        "{stderr}"
    );
    let stderr = refused(&["apikey", "create", "--name", " ", "--scope", "tokens:issue"]);
    assert!(stderr.contains("name"), "{stderr}");
    let stderr = refused(&[
        "apikey",
        "create",
        "--name",
        "shop",
        "--scope",
        "tokens:issue",
    ]);
    assert!(stderr.contains("already named \"shop\""), "{stderr}");
    let stderr = refused(&["apikey", "create", "--name", "x"]);
    assert!(stderr.contains("--scope"), "{stderr}");
    server.stop().await;
}
