//! ACCESS_TOKEN_REVOCATION (#4): logout and password change also end live access tokens, which
//! simplejwt cannot do; on by default. Off, access tokens live until they expire, as in
//! simplejwt.
//! Several instances: see `instances.rs`.

use crate::common;

use common::{claims, token_field, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PW: &str = "correct-horse-battery";

fn revoked_body() -> Value {
    json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": "Token is blacklisted"}],
    })
}

async fn index(server: &TestServer, access: &str) -> (StatusCode, Value) {
    server
        .get("/api/index/", Some(&format!("Bearer {access}")))
        .await
}

/// Logs out `refresh`, presenting `access` in the Authorization header.
async fn log_out(server: &TestServer, refresh: &str, access: Option<&str>) -> StatusCode {
    let mut request = server
        .client
        .post(server.url("/api/token/blacklist/"))
        .json(&json!({ "refresh": refresh }));
    if let Some(access) = access {
        request = request.header("authorization", format!("Bearer {access}"));
    }
    request.send().await.expect("request sent").status()
}

on_both_backends! {
    /// On by default (#19): with no setting, logging out everywhere ends every live access token
    /// of the user, and so does a password change, so a thief's copy stops working; the
    /// answers keep simplejwt's shapes.
    async fn by_default_logout_everywhere_and_password_change_end_access_tokens(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        assert!(server.settings.access_token_revocation, "on by default");
        server.create_user("ann", PW).await;
        let (_, first) = server.obtain_pair("ann", PW).await;
        let (_, stolen) = server.obtain_pair("ann", PW).await;
        assert_eq!(index(&server, &stolen).await.0, StatusCode::OK);
        let (status, body) = server.send(Method::POST, "/api/token/blacklist/all/", Some(&first), None).await;
        assert_eq!((status, body), (StatusCode::OK, json!({})));
        for token in [&first, &stolen] {
            assert_eq!(index(&server, token).await, (StatusCode::UNAUTHORIZED, revoked_body()));
        }

        let (_, current) = server.obtain_pair("ann", PW).await;
        let (_, stolen) = server.obtain_pair("ann", PW).await;
        assert_eq!(index(&server, &stolen).await.0, StatusCode::OK);
        let (status, body) = server.send(Method::POST, "/api/user/password/", Some(&current),
            Some(json!({"old_password": PW, "new_password": "n3w-horse-battery"}))).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"detail": "New password has been saved."})));
        for token in [&current, &stolen] {
            assert_eq!(index(&server, token).await, (StatusCode::UNAUTHORIZED, revoked_body()));
        }
        let (_, fresh) = server.obtain_pair("ann", "n3w-horse-battery").await;
        assert_eq!(index(&server, &fresh).await.0, StatusCode::OK);
        server.stop().await;
    }

    /// Off, an access token outlives the logout of its refresh token, as in simplejwt.
    async fn without_the_setting_logout_leaves_access_tokens_alive(backend) {
        let server = TestServer::start_on(backend, |s| s.access_token_revocation = false).await;
        server.create_user("ann", PW).await;
        let (refresh, access) = server.obtain_pair("ann", PW).await;
        assert_eq!(log_out(&server, &refresh, Some(&access)).await, StatusCode::OK);
        assert_eq!(index(&server, &access).await.0, StatusCode::OK);
        server.stop().await;
    }

    /// Logout revokes the access token in the Authorization header, on protected endpoints
    /// and at verify, and leaves the user's other access tokens alone.
    async fn logout_revokes_the_presented_access_token(backend) {
        let server = TestServer::start_on(backend, |s| s.access_token_revocation = true).await;
        server.create_user("ann", PW).await;
        let (refresh, access) = server.obtain_pair("ann", PW).await;
        let (_, other_access) = server.obtain_pair("ann", PW).await;
        assert_eq!(index(&server, &access).await.0, StatusCode::OK);
        assert_eq!(log_out(&server, &refresh, Some(&access)).await, StatusCode::OK);

        assert_eq!(index(&server, &access).await, (StatusCode::UNAUTHORIZED, revoked_body()));
        let (status, body) = server.post_json("/api/token/verify/", json!({ "token": access })).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "Token is blacklisted", "code": "token_not_valid"})));
        assert_eq!(index(&server, &other_access).await.0, StatusCode::OK);
        let (status, _) = server.post_json("/api/token/verify/", json!({ "token": other_access })).await;
        assert_eq!(status, StatusCode::OK);
        // A logout without a header, or with a bad one, still logs out.
        let (refresh, _) = server.obtain_pair("ann", PW).await;
        assert_eq!(log_out(&server, &refresh, Some("not.a.token")).await, StatusCode::OK);
        let (refresh, _) = server.obtain_pair("ann", PW).await;
        assert_eq!(log_out(&server, &refresh, None).await, StatusCode::OK);
        server.stop().await;
    }

    /// Logout of a refresh token with a `sid` claim revokes every access token of that session,
    /// without their being presented, and no other session's.
    async fn logout_revokes_the_access_tokens_of_the_session(backend) {
        let server = TestServer::start_on(backend, |s| s.access_token_revocation = true).await;
        let user = server.create_user("ann", PW).await;
        let id = user.id.to_string();
        let with_sid = |kind: &str, sid: &str| {
            let mut payload = claims(kind, &id, 300);
            payload["sid"] = json!(sid);
            server.sign(payload)
        };
        let refresh = with_sid("refresh", "session-1");
        let (first, second) = (with_sid("access", "session-1"), with_sid("access", "session-1"));
        let elsewhere = with_sid("access", "session-2");
        // Access tokens minted from this refresh token carry its sid.
        let (status, body) = server.post_json("/api/token/refresh/", json!({ "refresh": refresh })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let refreshed = token_field(&body, "access");
        assert_eq!(common::payload(&refreshed)["sid"], json!("session-1"));
        for token in [&first, &second, &refreshed, &elsewhere] {
            assert_eq!(index(&server, token).await.0, StatusCode::OK);
        }

        assert_eq!(log_out(&server, &refresh, None).await, StatusCode::OK);
        for token in [&first, &second, &refreshed] {
            assert_eq!(index(&server, token).await, (StatusCode::UNAUTHORIZED, revoked_body()));
        }
        assert_eq!(index(&server, &elsewhere).await.0, StatusCode::OK);
        server.stop().await;
    }

    /// A password change revokes every access token issued before it; a login with the new
    /// password right after the answer gets a token that works.
    async fn password_change_revokes_earlier_access_tokens(backend) {
        let server = TestServer::start_on(backend, |s| s.access_token_revocation = true).await;
        server.create_user("ann", PW).await;
        server.create_user("bob", PW).await;
        let (_, first) = server.obtain_pair("ann", PW).await;
        let (_, second) = server.obtain_pair("ann", PW).await;
        let (_, bobs) = server.obtain_pair("bob", PW).await;
        let (status, body) = server.send(Method::POST, "/api/user/password/", Some(&first),
            Some(json!({"old_password": PW, "new_password": "n3w-horse-battery"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        for token in [&first, &second] {
            assert_eq!(index(&server, token).await, (StatusCode::UNAUTHORIZED, revoked_body()));
        }
        assert_eq!(index(&server, &bobs).await.0, StatusCode::OK);
        let (_, fresh) = server.obtain_pair("ann", "n3w-horse-battery").await;
        assert_eq!(index(&server, &fresh).await.0, StatusCode::OK);
        server.stop().await;
    }

    /// Revocations are kept in the database: a store opened later (a restarted instance) loads
    /// them, and flushexpiredtokens deletes them once no token they affect can be alive.
    async fn revocations_are_persisted_and_flushed_when_expired(backend) {
        let server = TestServer::start_on(backend, |s| s.access_token_revocation = true).await;
        server.create_user("ann", PW).await;
        let (refresh, access) = server.obtain_pair("ann", PW).await;
        assert_eq!(log_out(&server, &refresh, Some(&access)).await, StatusCode::OK);

        let reopened = tollgate_store::Store::connect(&server.settings.database_url, tollgate_store::PoolConfig::default())
            .await
            .expect("connects");
        reopened.start_sync(true, false).await.expect("loads");
        let jti = token_field(&common::payload(&access), "jti");
        let seen = tollgate_store::AccessClaims { jti: Some(&jti), ..Default::default() };
        assert!(reopened.is_access_revoked(&seen));
        let now = tollgate_core::unix_now();
        let report = reopened.flush_expired(now, tollgate_store::FlushPace::UNPAUSED, |_| {}).await.expect("flushed");
        assert_eq!(report.revoked_access, 0, "still in force");
        let later = now + server.settings.access_token_lifetime.as_secs() as i64 + 1;
        let report = reopened.flush_expired(later, tollgate_store::FlushPace::UNPAUSED, |_| {}).await.expect("flushed");
        // The presented access token's jti, and the session (`sid`) of the refresh token.
        assert_eq!(report.revoked_access, 2);
        reopened.close().await;
        server.stop().await;
    }
}
