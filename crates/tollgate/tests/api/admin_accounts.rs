//! The admin API on one account: setting its password, mailing it a reset link, lifting its
//! lockout, its sessions and login history; and the signing keys.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::admin::{account, audit, call, PASSWORD};
use crate::common::smtp::{link_in, wait_for, SmtpServer};
use crate::common::{Backend, TestServer};

const NEW_PASSWORD: &str = "quantum-ferret-72";

on_both_backends! {
    /// set_password applies the password policy, ends every session of the user (their old
    /// refresh token is refused) and is audited without the password.
    async fn set_password_applies_the_policy_and_ends_the_sessions(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (_, token) = account(&server, "sam", true, false).await;
        let ann = server.create_user("ann", PASSWORD).await;
        let (refresh, _) = server.obtain_pair("ann", PASSWORD).await;
        let path = format!("/api/admin/users/{}/set_password/", ann.id);
        let (status, body) = call(&server, Method::POST, &path, &token, Some(json!({"new_password": "annann"}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["new_password"].as_array().is_some_and(|p| !p.is_empty()), "{body}");
        let answer = call(&server, Method::POST, &path, &token, Some(json!({}))).await;
        assert_eq!(answer, (StatusCode::BAD_REQUEST, json!({"new_password": ["This field is required."]})));
        let answer = call(&server, Method::POST, &path, &token, Some(json!({"new_password": NEW_PASSWORD}))).await;
        assert_eq!(answer, (StatusCode::OK, json!({"detail": "New password has been saved."})));
        let (status, _) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        server.obtain_pair("ann", NEW_PASSWORD).await;
        let entries = audit(&server, &token, "").await;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["action"], "user.set_password");
        assert!(!entries[0].to_string().contains(NEW_PASSWORD));
        server.stop().await;
    }

    /// unlock lifts a lockout (LOGIN_LOCKOUT_THRESHOLD) and says whether there was one.
    async fn unlock_lifts_a_lockout(backend) {
        let server = TestServer::start_on(backend, |s| s.login_lockout_threshold = 2).await;
        let (_, token) = account(&server, "sam", true, false).await;
        let ann = server.create_user("ann", PASSWORD).await;
        for _ in 0..2 {
            let (status, _) = server.post_json("/api/token/", json!({"username": "ann", "password": "wrong"})).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, body) = server.post_json("/api/token/", json!({"username": "ann", "password": PASSWORD})).await;
        assert_eq!((status, &body["code"]), (StatusCode::FORBIDDEN, &json!("account_locked")));
        let path = format!("/api/admin/users/{}/unlock/", ann.id);
        let answer = call(&server, Method::POST, &path, &token, None).await;
        assert_eq!(answer, (StatusCode::OK, json!({"was_locked": true})));
        server.obtain_pair("ann", PASSWORD).await;
        let answer = call(&server, Method::POST, &path, &token, None).await;
        assert_eq!(answer, (StatusCode::OK, json!({"was_locked": false})));
        let entries = audit(&server, &token, "").await;
        assert_eq!(entries[1]["details"], json!({"was_locked": true}));
        server.stop().await;
    }

    /// A user's sessions are listed and revoked one by one or all at once; a revoked session's
    /// refresh token is refused; a session of another user is not found.
    async fn sessions_are_listed_and_revoked(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (sam, token) = account(&server, "sam", true, false).await;
        let ann = server.create_user("ann", PASSWORD).await;
        let (first, _) = server.obtain_pair("ann", PASSWORD).await;
        let (second, _) = server.obtain_pair("ann", PASSWORD).await;
        let path = format!("/api/admin/users/{}/sessions/", ann.id);
        let (status, listed) = call(&server, Method::GET, &path, &token, None).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        let listed = listed.as_array().expect("a list").clone();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0]["client_address"], "127.0.0.1");
        let first_sid = crate::common::payload(&first)["sid"].clone();
        assert!(listed.iter().any(|s| s["id"] == first_sid));
        // Sam's own session is not Ann's.
        let sam_sid = server.store().sessions_of(sam.id, tollgate_core::unix_now()).await.expect("sessions")[0].id.clone();
        let answer = call(&server, Method::DELETE, &format!("{path}{sam_sid}/"), &token, None).await;
        assert_eq!(answer, (StatusCode::NOT_FOUND, json!({"detail": "Not found."})));
        let sid = first_sid.as_str().expect("sid");
        let (status, _) = call(&server, Method::DELETE, &format!("{path}{sid}/"), &token, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = server.post_json("/api/token/refresh/", json!({"refresh": first})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = server.post_json("/api/token/refresh/", json!({"refresh": second})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call(&server, Method::DELETE, &path, &token, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, listed) = call(&server, Method::GET, &path, &token, None).await;
        assert_eq!(listed, json!([]));
        let entries = audit(&server, &token, "").await;
        assert_eq!(entries[0]["details"], json!({"all": true, "sessions": 1}));
        assert_eq!(entries[1]["details"], json!({"session_id": sid}));
        server.stop().await;
    }

    /// A user's login attempts, newest first, in pages.
    async fn login_events_are_listed_newest_first(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (_, token) = account(&server, "sam", true, false).await;
        let ann = server.create_user("ann", PASSWORD).await;
        let (status, _) = server.post_json("/api/token/", json!({"username": "ann", "password": "wrong"})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        server.obtain_pair("ann", PASSWORD).await;
        let path = format!("/api/admin/users/{}/events/?page_size=1", ann.id);
        let (status, page) = call(&server, Method::GET, &path, &token, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["count"], 2);
        assert_eq!(page["results"][0]["outcome"], "succeeded");
        assert_eq!(page["results"][0]["client_address"], "127.0.0.1");
        let next = page["next"].as_str().expect("next").trim_start_matches(&server.base).to_owned();
        let (_, older) = call(&server, Method::GET, &next, &token, None).await;
        assert_eq!((&older["results"][0]["outcome"], &older["results"][0]["succeeded"]), (&json!("wrong_password"), &json!(false)));
        server.stop().await;
    }
}

/// send_password_reset mails the user a link that sets a new password; without mail it is
/// refused as not configured, and an account without an address has nowhere to send it.
#[tokio::test]
async fn send_password_reset_mails_a_working_link() {
    let refused = TestServer::start_on(Backend::Sqlite, |_| {}).await;
    let (_, token) = account(&refused, "sam", true, false).await;
    let ann = refused.create_user("ann", PASSWORD).await;
    let path = format!("/api/admin/users/{}/send_password_reset/", ann.id);
    let (status, body) = call(&refused, Method::POST, &path, &token, None).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("not_configured"))
    );
    refused.stop().await;

    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = SmtpServer::start_in(dir.path());
    let smtp_url = smtp.url();
    let server = TestServer::start_on(Backend::Sqlite, |s| {
        s.smtp_url = tollgate_core::settings::Secret(smtp_url);
        s.password_reset_url = Some("https://app.example.com/reset/{uid}/{token}".to_owned());
    })
    .await;
    let (_, token) = account(&server, "sam", true, false).await;
    let ann = server.create_user("ann", PASSWORD).await;
    let path = format!("/api/admin/users/{}/send_password_reset/", ann.id);
    let response = server
        .client
        .post(server.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let mails = wait_for(&smtp.maildir, "ann@example.com", 1, Duration::from_secs(10)).await;
    let (uid, reset) = link_in(&mails[0].text, "https://app.example.com/reset/");
    let confirm = json!({"uid": uid, "token": reset, "new_password": NEW_PASSWORD});
    let response = server
        .client
        .post(server.url("/api/users/reset_password_confirm/"))
        .json(&confirm)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    server.obtain_pair("ann", NEW_PASSWORD).await;
    let entries = audit(&server, &token, "").await;
    assert_eq!(entries[0]["action"], "user.send_password_reset");
    assert!(!entries[0].to_string().contains(reset.as_str()));
    let nobody = server
        .store()
        .create_user(
            &tollgate_store::NewUser {
                username: "bob".into(),
                password_hash: "x".into(),
                is_active: true,
                ..Default::default()
            },
            tollgate_core::unix_now(),
        )
        .await
        .expect("created");
    let path = format!("/api/admin/users/{}/send_password_reset/", nobody.id);
    let answer = call(&server, Method::POST, &path, &token, None).await;
    assert_eq!(
        answer,
        (
            StatusCode::BAD_REQUEST,
            json!({"detail": "The user has no email address.", "code": "no_email"})
        )
    );
    server.stop().await;
}

/// The keys are listed (without material) and rotated by a superuser: the server signs with the
/// new key at once, the old one still verifies; without KEYS_ENCRYPTION_KEY rotation is
/// refused as not configured.
#[tokio::test]
async fn keys_are_listed_and_rotated() {
    let plain = TestServer::start_on(Backend::Sqlite, |_| {}).await;
    let (_, token) = account(&plain, "root", true, true).await;
    let (status, keys) = call(&plain, Method::GET, "/api/admin/keys/", &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
    assert_eq!(
        (&keys[0]["state"], &keys[0]["stored"], &keys[0]["created"]),
        (&json!("active"), &json!("SIGNING_KEY"), &Value::Null)
    );
    let (status, body) = call(
        &plain,
        Method::POST,
        "/api/admin/keys/rotate/",
        &token,
        None,
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("not_configured"))
    );
    plain.stop().await;

    let server = TestServer::start_on(Backend::Sqlite, |s| {
        s.keys_encryption_key = tollgate_core::settings::Secret("7".repeat(64));
    })
    .await;
    let (_, token) = account(&server, "root", true, true).await;
    let answer = call(
        &server,
        Method::POST,
        "/api/admin/keys/rotate/",
        &token,
        Some(json!({"algorithm": "none"})),
    )
    .await;
    assert_eq!(
        answer,
        (
            StatusCode::BAD_REQUEST,
            json!({"algorithm": ["\"none\" is not a valid choice."]})
        )
    );
    let (status, rotated) = call(
        &server,
        Method::POST,
        "/api/admin/keys/rotate/",
        &token,
        Some(json!({"algorithm": "ES256"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    assert_eq!(rotated["algorithm"], "ES256");
    let kid = rotated["kid"].as_str().expect("kid").to_owned();
    // Signed with the new key at once; the token signed before still works.
    let (_, access) = server.obtain_pair("root", PASSWORD).await;
    let header: Value = {
        use base64::Engine as _;
        let head = access.split('.').next().expect("header");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(head)
                .expect("base64"),
        )
        .expect("JSON")
    };
    assert_eq!(header["kid"], json!(kid));
    let (status, keys) = call(&server, Method::GET, "/api/admin/keys/", &token, None).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    let states: Vec<(&Value, &Value)> = keys
        .as_array()
        .expect("list")
        .iter()
        .map(|k| (&k["kid"], &k["state"]))
        .collect();
    assert_eq!(
        states,
        [
            (&json!(kid), &json!("active")),
            (&rotated["retired"], &json!("retired"))
        ]
    );
    // Both signed from when they were made; the retired key verifies until the rotation said.
    assert_eq!(
        (&keys[0]["signs_from"], &keys[1]["signs_from"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(keys[1]["verify_until"], rotated["retired_verify_until"]);
    assert!(!keys.to_string().contains("PRIVATE") && !keys.to_string().contains("v1."));
    let entries = audit(&server, &token, "").await;
    assert_eq!(entries[0]["action"], "keys.rotate");
    assert_eq!(entries[0]["details"]["kid"], json!(kid));
    assert_eq!(entries[0]["target"], Value::Null);
    server.stop().await;
}
