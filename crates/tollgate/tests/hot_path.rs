//! The cheap paths (#7) keep simplejwt's answers: the stateless token user (`jwt_stateless`),
//! verify without a blacklist read for access tokens, and a rotating refresh that reads the
//! blacklist only when it refuses.

mod common;

use common::{claims, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

const PW: &str = "correct-horse-battery";

on_both_backends! {
    /// `jwt_stateless` trusts the token alone, as simplejwt's JWTStatelessUserAuthentication:
    /// a user missing from the database still passes, named by the token's claims; a token
    /// without a user id does not; the account endpoints still read the stored user.
    async fn the_stateless_class_reads_no_user(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.authentication_classes = vec!["jwt_stateless".into()];
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
            s.authentication_classes = vec!["jwt_stateless".into()];
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
}
