//! Logging in: identifiers, active users, last login, password-change revocation, Django
//! hashes, custom claims and the response's shape (#3).

use crate::common;

use tollgate_core::settings::LoginField;

use tollgate_core::settings::AuthenticationClass;

use std::sync::Arc;

use common::{payload, token_field, Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate::state::ClaimSource;
use tollgate_core::Claims;
use tollgate_store::{User, UserChanges, UserField};

const PW: &str = "quantum-ferret-72";

async fn login(server: &TestServer, credential: &str, password: &str) -> (StatusCode, Value) {
    server
        .post_json(
            "/api/token/",
            json!({"username": credential, "password": password}),
        )
        .await
}

fn no_account() -> (StatusCode, Value) {
    (
        StatusCode::UNAUTHORIZED,
        json!({"detail": "No active account found with the given credentials"}),
    )
}

on_both_backends! {
    /// LOGIN_FIELDS: one credential matches the username, the email (any case) or the phone.
    async fn login_by_username_email_or_phone(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.login_fields = vec![LoginField::Username, LoginField::Email, LoginField::Phone];
        }).await;
        let user = server.create_user("ann", PW).await;
        let changes = UserChanges { phone: Some(Some("+15550100".into())), ..UserChanges::default() };
        server.store().update_user(user.id, &changes, tollgate_store::UserField::Id, 0).await.expect("updated");
        for credential in ["ann", "ann@example.com", "ANN@Example.COM", "+15550100"] {
            let (status, body) = login(&server, credential, PW).await;
            assert_eq!(status, StatusCode::OK, "{credential}: {body}");
            let access = token_field(&body, "access");
            assert_eq!(payload(&access)["user_id"], json!(user.id.to_string()));
        }
        assert_eq!(login(&server, "ann", "wrong").await, no_account());
        assert_eq!(login(&server, "nobody@example.com", PW).await, no_account());
    }

    /// By default only USERNAME_FIELD identifies the user.
    async fn by_default_only_the_username_logs_in(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        server.create_user("ann", PW).await;
        assert_eq!(login(&server, "ann@example.com", PW).await, no_account());
        assert_eq!(login(&server, "ANN", PW).await, no_account());
        assert_eq!(login(&server, "ann", PW).await.0, StatusCode::OK);
    }

    /// Inactive users cannot log in; with CHECK_USER_IS_ACTIVE a deactivated user's live
    /// tokens stop working, without it they go on working.
    async fn deactivation_ends_logins_and_live_tokens(backend) {
        for check in [true, false] {
            let server = TestServer::start_on(backend, |s| s.check_user_is_active = check).await;
            let user = server.create_user("ann", PW).await;
            let (refresh, access) = server.obtain_pair("ann", PW).await;
            server.store().set_active(user.id, false).await.expect("deactivated");
            assert_eq!(login(&server, "ann", PW).await, no_account());
            let (status, body) = server.send(Method::GET, "/api/user/", Some(&access), None).await;
            let (refresh_status, refresh_body) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
            if check {
                assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "User is inactive", "code": "user_inactive"})));
                assert_eq!((refresh_status, refresh_body), (StatusCode::UNAUTHORIZED, json!({"detail": "No active account found for the given token."})));
            } else {
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(refresh_status, StatusCode::OK, "{refresh_body}");
            }
        }
    }

    /// UPDATE_LAST_LOGIN records the login time, shown on the user.
    async fn last_login_is_recorded_when_asked(backend) {
        for update in [true, false] {
            let server = TestServer::start_on(backend, |s| s.update_last_login = update).await;
            server.create_user("ann", PW).await;
            let (_, access) = server.obtain_pair("ann", PW).await;
            let (_, body) = server.send(Method::GET, "/api/user/", Some(&access), None).await;
            assert_eq!(body["last_login"].is_string(), update, "{body}");
        }
    }

    /// With CHECK_REVOKE_TOKEN, a password change refuses every earlier access and refresh
    /// token; tokens minted with the new password work. (ACCESS_TOKEN_REVOCATION, checked
    /// first, would answer `Token is blacklisted`: off, to see this setting's own answer.)
    async fn password_change_refuses_earlier_access_and_refresh_tokens(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.check_revoke_token = true;
            s.access_token_revocation = false;
        })
        .await;
        server.create_user("ann", PW).await;
        let (refresh, access) = server.obtain_pair("ann", PW).await;
        assert!(payload(&access)["hash_password"].is_string());
        let (status, _) = server.send(Method::GET, "/api/user/", Some(&access), None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = server.send(Method::POST, "/api/user/password/", Some(&access),
            Some(json!({"old_password": PW, "new_password": "n3w-horse-battery"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let (status, body) = server.send(Method::GET, "/api/user/", Some(&access), None).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "The user's password has been changed.", "code": "password_changed"})));
        let (status, body) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "Token is blacklisted", "code": "token_not_valid"})));

        let (new_refresh, new_access) = server.obtain_pair("ann", "n3w-horse-battery").await;
        let (status, _) = server.send(Method::GET, "/api/user/", Some(&new_access), None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = server.post_json("/api/token/refresh/", json!({"refresh": new_refresh})).await;
        assert_eq!(status, StatusCode::OK);
    }

    /// A password set outside the API (the CLI, another service) also ends refresh tokens
    /// through the fingerprint, and the refused token is blacklisted, as simplejwt does.
    async fn refresh_with_a_stale_fingerprint_is_refused_and_blacklisted(backend) {
        let server = TestServer::start_on(backend, |s| s.check_revoke_token = true).await;
        let user = server.create_user("ann", PW).await;
        let (refresh, _) = server.obtain_pair("ann", PW).await;
        let hash = server.state.passwords.hash("another-pass-word".into()).await;
        server.store().set_password_hash(user.id, &hash).await.expect("set");
        let (status, body) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "The user's password has been changed."})));
        let (status, body) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
        assert_eq!((status, body["detail"].clone()), (StatusCode::UNAUTHORIZED, json!("Token is blacklisted")));
    }

    /// A user imported with a Django PBKDF2 hash logs in and is moved to argon2id (without
    /// CHECK_REVOKE_TOKEN; with it, see django_migration.rs).
    async fn django_hashes_log_in_and_are_rehashed(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let user = server.create_user("ann", "unused-password-1").await;
        // Made by Django's PBKDF2PasswordHasher (see tollgate-core's password fixtures).
        let django = "pbkdf2_sha256$1000$saltsalt0$3FOIWq+8wztxFF0f9+QHX5gPK+0BKeH6elJMSfbkOIo=";
        server.store().set_password_hash(user.id, django).await.expect("set");
        assert_eq!(login(&server, "ann", "correct horse battery stapl").await, no_account());
        let (_, access) = server.obtain_pair("ann", "correct horse battery staple").await;
        let stored = server.store().find_user(UserField::Username, "ann").await.expect("query").expect("exists");
        assert!(stored.password.starts_with("argon2$argon2id$"), "{}", stored.password);
        let (status, body) = server.send(Method::GET, "/api/user/", Some(&access), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        server.obtain_pair("ann", "correct horse battery staple").await;
    }

    /// TOKEN_USER_CLAIMS copy user and profile fields into tokens; they carry over on refresh.
    async fn user_fields_become_claims(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.user_profile_fields = vec!["nickname".into(), "credit".into(), "avatar".into()];
            s.token_user_claims = vec!["username".into(), "nickname".into(), "credit".into(), "avatar".into(), "is_staff".into()];
        }).await;
        let (status, _) = server.post_json("/api/users/", json!({"username": "ann", "password": PW, "nickname": "annie", "credit": 40})).await;
        assert_eq!(status, StatusCode::CREATED);
        let (refresh, access) = server.obtain_pair("ann", PW).await;
        let claims = payload(&access);
        assert_eq!(
            (&claims["username"], &claims["nickname"], &claims["credit"], &claims["avatar"], &claims["is_staff"]),
            (&json!("ann"), &json!("annie"), &json!(40), &Value::Null, &json!(false))
        );
        let (_, body) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
        assert_eq!(payload(&token_field(&body, "access"))["nickname"], "annie");
    }

    /// LOGIN_RESPONSE = token answers djangorestframework-jwt's `{"token": …}`;
    /// LOGIN_RESPONSE_USER adds the user.
    async fn login_response_shapes(backend) {
        let server = TestServer::start_on(backend, |s| s.login_response = tollgate_core::settings::LoginResponse::Token).await;
        server.create_user("ann", PW).await;
        let (status, body) = login(&server, "ann", PW).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.as_object().expect("object").keys().collect::<Vec<_>>(), ["token"]);
        let token = token_field(&body, "token");
        let (status, _) = server.send(Method::GET, "/api/user/", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK);

        let server = TestServer::start_on(backend, |s| s.login_response_user = true).await;
        server.create_user("ann", PW).await;
        let (_, body) = login(&server, "ann", PW).await;
        assert_eq!(body.as_object().expect("object").keys().collect::<Vec<_>>(), ["refresh", "access", "user"]);
        assert_eq!(body["user"]["username"], "ann");
        assert!(body["user"].get("password").is_none());
    }
}

struct Tenant;

impl ClaimSource for Tenant {
    fn add_claims(&self, user: &User, claims: &mut Claims) {
        claims.insert("tenant", format!("t-{}", user.username));
    }
}

/// A ClaimSource registered in code adds claims to refresh and access tokens.
#[tokio::test]
async fn claim_sources_add_claims_in_code() {
    let server = TestServer::start_on_with(
        Backend::Sqlite,
        |_| {},
        |state| state.with_claim_source(Arc::new(Tenant)),
    )
    .await;
    server.create_user("ann", PW).await;
    let (refresh, access) = server.obtain_pair("ann", PW).await;
    assert_eq!(payload(&refresh)["tenant"], "t-ann");
    assert_eq!(payload(&access)["tenant"], "t-ann");
}

async fn get_user_with(server: &TestServer, authorization: &str) -> (StatusCode, String, Value) {
    let response = server
        .client
        .get(server.url("/api/user/"))
        .header("authorization", authorization)
        .send()
        .await
        .expect("sent");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .unwrap_or_default();
    (
        response.status(),
        challenge,
        response.json().await.expect("JSON"),
    )
}

fn basic(credentials: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

on_both_backends! {
    /// AUTHENTICATION_CLASSES adds HTTP Basic beside bearer tokens, with DRF's 401 bodies.
    async fn http_basic_authenticates_protected_endpoints(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.authentication_classes = vec![AuthenticationClass::Jwt, AuthenticationClass::Basic];
        }).await;
        server.create_user("ann", PW).await;
        let (status, _, body) = get_user_with(&server, &basic(&format!("ann:{PW}"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["username"], "ann");
        let (_, access) = server.obtain_pair("ann", PW).await;
        let (status, _, _) = get_user_with(&server, &format!("Bearer {access}")).await;
        assert_eq!(status, StatusCode::OK);

        for (header, message) in [
            (basic("ann:wrong"), "Invalid username/password."),
            (basic("nobody:x"), "Invalid username/password."),
            ("Basic".to_owned(), "Invalid basic header. No credentials provided."),
            ("Basic a b".to_owned(), "Invalid basic header. Credentials string should not contain spaces."),
            ("basic !!!".to_owned(), "Invalid basic header. Credentials not correctly base64 encoded."),
        ] {
            let (status, challenge, body) = get_user_with(&server, &header).await;
            assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": message})), "{header}");
            assert_eq!(challenge, "Bearer realm=\"api\"");
        }
    }

    /// Without "basic" a Basic header is no credentials at all; with it first, the challenge
    /// names Basic.
    async fn the_first_authentication_class_names_the_challenge(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        server.create_user("ann", PW).await;
        let (status, challenge, body) = get_user_with(&server, &basic(&format!("ann:{PW}"))).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "Authentication credentials were not provided."})));
        assert_eq!(challenge, "Bearer realm=\"api\"");

        let server = TestServer::start_on(backend, |s| s.authentication_classes = vec![AuthenticationClass::Basic]).await;
        server.create_user("ann", PW).await;
        let (_, access) = server.obtain_pair("ann", PW).await;
        let (status, challenge, _) = get_user_with(&server, &format!("Bearer {access}")).await;
        assert_eq!((status, challenge.as_str()), (StatusCode::UNAUTHORIZED, "Basic realm=\"api\""));
    }
}

/// Logs in with a `User-Agent`.
async fn login_as_agent(
    server: &TestServer,
    credential: &str,
    password: &str,
    agent: &str,
) -> reqwest::Response {
    server
        .client
        .post(server.url("/api/token/"))
        .header("user-agent", agent)
        .json(&json!({"username": credential, "password": password}))
        .send()
        .await
        .expect("request sent")
}

on_both_backends! {
    /// Every attempt on an existing account is recorded with its outcome, client address and
    /// user agent; attempts naming no account are not.
    async fn login_attempts_on_an_account_are_recorded(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let ann = server.create_user("ann", PW).await;
        let failed = login_as_agent(&server, "ann", "wrong", "phone-app/2.1").await;
        assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
        let ok = login_as_agent(&server, "ann", PW, "curl/8.5").await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(login(&server, "nobody", PW).await, no_account());
        server.store().set_active(ann.id, false).await.expect("deactivated");
        assert_eq!(login(&server, "ann", PW).await, no_account());

        let events = server.store().login_events(ann.id, 10).await.expect("listed");
        let seen: Vec<_> = events
            .iter()
            .map(|e| (e.succeeded, e.reason.as_deref(), e.client_addr.as_str(), e.user_agent.as_deref()))
            .collect();
        assert_eq!(seen, vec![
            (false, Some("inactive"), "127.0.0.1", None),
            (true, None, "127.0.0.1", Some("curl/8.5")),
            (false, Some("wrong_password"), "127.0.0.1", Some("phone-app/2.1")),
        ]);
    }

    /// LOGIN_LOCKOUT_THRESHOLD: after that many failures the account is locked whichever
    /// identifier names it, even for the right password. An identifier locks the same way
    /// whether or not it names an account (403), and an account locked through its other
    /// identifiers answers as a wrong password does, so a lock tells neither which accounts
    /// exist nor which identifiers belong together. The lock ends after LOGIN_LOCKOUT_DURATION.
    async fn repeated_failures_lock_the_account_until_the_lock_runs_out(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.login_fields = vec![LoginField::Username, LoginField::Email];
            s.login_lockout_threshold = 3;
            // Locks end on a whole second: with 2 s, one made just before a second ticks over
            // still holds for the checks below, however slow the machine.
            s.login_lockout_duration = std::time::Duration::from_secs(2);
        }).await;
        server.create_user("ann", PW).await;
        for credential in ["ann", "ann@example.com", "ANN@example.com"] {
            assert_eq!(login(&server, credential, "wrong").await, no_account());
        }
        // The account is locked; no identifier has failed three times yet.
        for credential in ["ann", "Ann@Example.com"] {
            assert_eq!(login(&server, credential, PW).await, no_account(), "{credential}");
        }
        for name in ["ghost"; 3] {
            assert_eq!(login(&server, name, "wrong").await, no_account());
        }
        let locked = json!({
            "detail": "This account is locked after too many failed logins. Try again later or ask an administrator to unlock it.",
            "code": "account_locked",
        });
        // Three attempts on the email in any case, as on the name naming no account.
        for credential in ["ann@example.com", "ghost", "GHOST"] {
            let response = login_as_agent(&server, credential, PW, "t").await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{credential}");
            let retry_after = response.headers()["retry-after"].to_str().expect("ascii").to_owned();
            assert!(["1", "2"].contains(&retry_after.as_str()), "{retry_after}");
            assert_eq!(response.json::<Value>().await.expect("json"), locked);
        }
        // Another account is not affected.
        server.create_user("bob", PW).await;
        assert_eq!(login(&server, "bob", PW).await.0, StatusCode::OK);
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        assert_eq!(login(&server, "ann", PW).await.0, StatusCode::OK);
    }

    /// A success resets the count: failures must be consecutive to lock.
    async fn a_successful_login_resets_the_failure_count(backend) {
        let server = TestServer::start_on(backend, |s| s.login_lockout_threshold = 2).await;
        server.create_user("ann", PW).await;
        for _ in 0..3 {
            assert_eq!(login(&server, "ann", "wrong").await, no_account());
            assert_eq!(login(&server, "ann", PW).await.0, StatusCode::OK);
        }
    }
}

/// With LOGIN_LOCKOUT_DURATION = 0 a lock lasts until `tollgate unlock`; `tollgate events`
/// lists the attempts, the locked one included.
#[tokio::test]
async fn a_lock_without_duration_lasts_until_unlocked_from_the_command_line() {
    use common::binary::{run, text, tollgate};
    let server = TestServer::start_on(Backend::Sqlite, |s| {
        s.login_lockout_threshold = 1;
        s.login_lockout_duration = std::time::Duration::ZERO;
    })
    .await;
    server.create_user("ann", PW).await;
    assert_eq!(login(&server, "ann", "wrong").await, no_account());
    let response = login_as_agent(&server, "ann", PW, "laptop/1").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("retry-after").is_none());

    let dir = tempfile::tempdir().expect("temp dir");
    let cli = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command.env("DATABASE_URL", &server.settings.database_url);
        run(command)
    };
    let events = cli(&["events", "--user", "ann"]);
    assert!(events.status.success(), "{}", text(&events.stderr));
    let listing = text(&events.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].starts_with("User 'ann' (id "), "{listing}");
    assert!(lines[0].ends_with("last login: never"), "{listing}");
    assert!(
        lines[2].contains("failed: locked") && lines[2].contains("laptop/1"),
        "{listing}"
    );
    assert!(lines[3].contains("failed: wrong_password"), "{listing}");

    let unlocked = cli(&["unlock", "ann"]);
    assert!(unlocked.status.success(), "{}", text(&unlocked.stderr));
    assert_eq!(text(&unlocked.stdout), "User 'ann' unlocked.\n");
    assert_eq!(login(&server, "ann", PW).await.0, StatusCode::OK);

    let missing = cli(&["unlock", "nobody"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("user 'nobody' does not exist"));
}

on_both_backends! {
    /// HTTP Basic is no way around the failed-login throttle or the lockout: its failures count
    /// as login failures and are recorded; its successes are not logins (no event, no last
    /// login), as with Django's BasicAuthentication.
    async fn http_basic_counts_against_the_throttle_and_the_lockout(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.authentication_classes = vec![AuthenticationClass::Jwt, AuthenticationClass::Basic];
            s.login_failures_per_account = 3;
        }).await;
        let ann = server.create_user("ann", PW).await;
        let (status, _, _) = get_user_with(&server, &basic(&format!("ann:{PW}"))).await;
        assert_eq!(status, StatusCode::OK);
        for _ in 0..3 {
            let (status, _, _) = get_user_with(&server, &basic("ann:wrong")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, _, body) = get_user_with(&server, &basic(&format!("ann:{PW}"))).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(login(&server, "ann", PW).await.0, StatusCode::TOO_MANY_REQUESTS);

        let events = server.store().login_events(ann.id, 10).await.expect("listed");
        assert_eq!(events.len(), 3, "only the failures: {events:?}");
        assert!(events.iter().all(|e| e.reason.as_deref() == Some("wrong_password")));
        let stored = server.store().find_user(UserField::Username, "ann").await.expect("query");
        assert_eq!(stored.expect("ann").last_login, None);

        let server = TestServer::start_on(backend, |s| {
            s.authentication_classes = vec![AuthenticationClass::Basic];
            s.login_lockout_threshold = 2;
        }).await;
        server.create_user("bob", PW).await;
        for _ in 0..2 {
            get_user_with(&server, &basic("bob:wrong")).await;
        }
        let (status, _, body) = get_user_with(&server, &basic(&format!("bob:{PW}"))).await;
        assert_eq!((status, &body["code"]), (StatusCode::FORBIDDEN, &json!("account_locked")));
    }
}
