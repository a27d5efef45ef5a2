//! The cheap paths (#7) keep simplejwt's answers: the stateless token user (`jwt_stateless`),
//! verify without a blacklist read for access tokens, and a rotating refresh that reads the
//! blacklist only when it refuses.

use crate::common;

use tollgate_core::settings::AuthenticationClass;

use common::{claims, token_field, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

const PW: &str = "correct-horse-battery";

fn blacklisted() -> (StatusCode, serde_json::Value) {
    (
        StatusCode::UNAUTHORIZED,
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"}),
    )
}

on_both_backends! {
    /// `jwt_stateless` trusts the token alone, as simplejwt's JWTStatelessUserAuthentication:
    /// a user missing from the database still passes, named by the token's claims; a token
    /// without a user id does not; the account endpoints still read the stored user.
    async fn the_stateless_class_reads_no_user(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.authentication_classes = vec![AuthenticationClass::JwtStateless];
        })
        .await;
        let ghost = server.sign(claims("access", "999", 300));
        let (status, body) = server.get("/api/index/", Some(&format!("Bearer {ghost}"))).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"id": 999, "username": ""})));
        let mut named = claims("access", "998", 300);
        named["username"] = json!("carol");
        let named = server.sign(named);
        let (status, body) = server.get("/api/index/", Some(&format!("Bearer {named}"))).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"id": 998, "username": "carol"})));
        let mut anonymous = claims("access", "1", 300);
        anonymous.as_object_mut().expect("object").remove("user_id");
        let anonymous = server.sign(anonymous);
        let (status, body) = server.get("/api/index/", Some(&format!("Bearer {anonymous}"))).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({
            "detail": "Token contained no recognizable user identification", "code": "token_not_valid"})));

        let (status, body) = server.send(Method::GET, "/api/user/", Some(&ghost), None).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "User not found", "code": "user_not_found"})));
        server.create_user("ann", PW).await;
        let (_, access) = server.obtain_pair("ann", PW).await;
        let (status, body) = server.send(Method::GET, "/api/user/", Some(&access), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["username"], json!("ann"));
        server.stop().await;
    }

    /// A stateless token revoked at logout (ACCESS_TOKEN_REVOCATION) is refused too.
    async fn the_stateless_class_honours_revocation(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.authentication_classes = vec![AuthenticationClass::JwtStateless];
            s.access_token_revocation = true;
        })
        .await;
        server.create_user("ann", PW).await;
        let (refresh, access) = server.obtain_pair("ann", PW).await;
        let response = server.client.post(server.url("/api/token/blacklist/"))
            .header("authorization", format!("Bearer {access}"))
            .json(&json!({ "refresh": refresh })).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK);
        let (status, body) = server.get("/api/index/", Some(&format!("Bearer {access}"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["messages"][0]["message"], json!("Token is blacklisted"));
        server.stop().await;
    }

    /// With rotation and blacklisting, a blacklisted refresh token is answered "Token is
    /// blacklisted" even when something else is also wrong (the user deactivated, the wrong
    /// type), as simplejwt checks the blacklist first; an unblacklisted one gets the other
    /// answer. Verify of an access token needs no blacklist read and passes.
    async fn a_rotating_refresh_answers_blacklisted_first(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.rotate_refresh_tokens = true;
            s.blacklist_after_rotation = true;
        })
        .await;
        let user = server.create_user("ann", PW).await;
        let (used, access) = server.obtain_pair("ann", PW).await;
        let (status, _) = server.post_json("/api/token/verify/", json!({ "token": access })).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = server.post_json("/api/token/refresh/", json!({ "refresh": used })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (fresh, _) = server.obtain_pair("ann", PW).await;
        server.store().set_active(user.id, false).await.expect("deactivated");
        assert_eq!(server.post_json("/api/token/refresh/", json!({ "refresh": used })).await, blacklisted());
        let (status, body) = server.post_json("/api/token/refresh/", json!({ "refresh": fresh })).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "No active account found for the given token."})));
        // An access token at refresh: the wrong type, not blacklisted.
        let (status, body) = server.post_json("/api/token/refresh/", json!({ "refresh": access })).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "Token has wrong type", "code": "token_not_valid"})));
        server.store().set_active(user.id, true).await.expect("activated");
        let (status, body) = server.post_json("/api/token/refresh/", json!({ "refresh": fresh })).await;
        assert_eq!(status, StatusCode::OK);
        let rotated = token_field(&body, "refresh");
        assert_eq!(server.post_json("/api/token/refresh/", json!({ "refresh": fresh })).await, blacklisted());
        let (status, _) = server.post_json("/api/token/refresh/", json!({ "refresh": rotated })).await;
        assert_eq!(status, StatusCode::OK);
        server.stop().await;
    }
}
