//! Moving off Django: the claim rules of PyJWT, djangorestframework-jwt's clients, the password
//! fingerprint beside Django, and the settings converter, each as a migrating team meets it.

mod common;

use common::{claims, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

fn token_not_valid(message: &str) -> Value {
    json!({"detail": message, "code": "token_not_valid"})
}

/// PyJWT refuses a `jti` or `sub` that is not a string ("JWT ID must be a string", "Subject
/// must be a string"), so simplejwt answers "Token is invalid"; Tollgate answers the same on
/// every endpoint that reads a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_string_jti_or_sub_is_invalid_as_pyjwt_says() {
    let server = TestServer::start().await;
    let user = server.create_user("user1", PASSWORD).await;
    let id = user.id.to_string();
    let with = |token_type: &str, claim: &str, value: Value| {
        let mut payload = claims(token_type, &id, 300);
        payload[claim] = value;
        server.sign(payload)
    };
    for (claim, value) in [
        ("jti", json!(12345)),
        ("jti", json!(null)),
        ("jti", json!(["a"])),
        ("sub", json!(42)),
        ("sub", json!({"id": 1})),
    ] {
        let access = with("access", claim, value.clone());
        let (status, body) = server
            .post_json("/api/token/verify/", json!({ "token": access }))
            .await;
        assert_eq!(
            (status, body),
            (
                StatusCode::UNAUTHORIZED,
                token_not_valid("Token is invalid")
            ),
            "verify with {claim} = {value}"
        );
        let (status, body) = server
            .get("/api/index/", Some(&format!("Bearer {access}")))
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "index with {claim} = {value}"
        );
        assert_eq!(
            body["messages"][0]["message"], "Token is invalid",
            "index with {claim} = {value}: {body}"
        );
        let refresh = with("refresh", claim, value.clone());
        let (status, body) = server
            .post_json("/api/token/refresh/", json!({ "refresh": refresh }))
            .await;
        assert_eq!(
            (status, body),
            (
                StatusCode::UNAUTHORIZED,
                token_not_valid("Token is invalid")
            ),
            "refresh with {claim} = {value}"
        );
    }
    // A string `sub` is what PyJWT wants, and passes.
    let access = with("access", "sub", json!("1"));
    let (status, body) = server
        .post_json("/api/token/verify/", json!({ "token": access }))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
}
