//! The reference transcript of a simplejwt 5.5.1 deployment (shared/reference/simplejwt.md),
//! request by request: Tollgate answers each with the same status and body.

use crate::common;

use common::{claims, payload, token_field, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

async fn server_with_user(backend: Backend) -> TestServer {
    let server = TestServer::start_on(backend, |_| {}).await;
    server.create_user("user1", PASSWORD).await;
    server
}

/// The transcript's deployment: rotation and blacklisting on, Bearer and JWT accepted.
async fn seed_server(backend: Backend) -> TestServer {
    let server = TestServer::start_on(backend, |s| {
        s.rotate_refresh_tokens = true;
        s.blacklist_after_rotation = true;
        s.auth_header_types = vec!["Bearer".into(), "JWT".into()];
    })
    .await;
    server.create_user("user1", PASSWORD).await;
    server
}

fn no_active_account() -> serde_json::Value {
    json!({"detail": "No active account found with the given credentials"})
}

fn token_not_valid(message: &str) -> serde_json::Value {
    json!({"detail": message, "code": "token_not_valid"})
}

fn not_valid_for_any_type(message: &str) -> serde_json::Value {
    json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
    })
}

on_both_backends! {
async fn obtain_with_a_form_and_with_json(backend) {
    let server = server_with_user(backend).await;
    let (status, body) = server.post_form("/api/token/", &[("username", "user1"), ("password", PASSWORD)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["refresh", "access"]);
    let (status, body) = server.post_json("/api/token/", json!({"username": "user1", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refresh = payload(&token_field(&body, "refresh"));
    let access = payload(&token_field(&body, "access"));
    assert_eq!(refresh["token_type"], "refresh");
    assert_eq!(access["token_type"], "access");
    assert_eq!(access["user_id"], "1");
    assert_eq!(access["exp"].as_i64().expect("exp") - access["iat"].as_i64().expect("iat"), 300);
    assert_eq!(refresh["exp"].as_i64().expect("exp") - refresh["iat"].as_i64().expect("iat"), 86_400);
}

async fn obtain_failures_all_say_no_active_account(backend) {
    let server = server_with_user(backend).await;
    let inactive = server.create_user("sleepy", PASSWORD).await;
    server.store().set_active(inactive.id, false).await.expect("deactivated");
    for (username, password) in [("user1", "wrong password"), ("nobody", PASSWORD), ("sleepy", PASSWORD)] {
        let (status, body) = server.post_json("/api/token/", json!({"username": username, "password": password})).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, no_active_account()), "{username}");
    }
}

async fn obtain_field_errors(backend) {
    let server = server_with_user(backend).await;
    let (status, body) = server.post_form("/api/token/", &[("username", "user1")]).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"password": ["This field is required."]})));
    let (status, body) = server.post_json("/api/token/", json!({})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"username": ["This field is required."], "password": ["This field is required."]})
        )
    );
    let (status, body) = server.post_json("/api/token/", json!({"username": "user1", "password": ""})).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"password": ["This field may not be blank."]})));
}

async fn obtain_malformed_json_and_wrong_method(backend) {
    let server = server_with_user(backend).await;
    let (status, body) = server.post_raw("/api/token/", Some("application/json"), br#"{"username":"#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().expect("detail").starts_with("JSON parse error - "), "{body}");
    assert_eq!(body.as_object().expect("object").len(), 1);
    let (status, body) = server.get("/api/token/", None).await;
    assert_eq!((status, body), (StatusCode::METHOD_NOT_ALLOWED, json!({"detail": "Method \"GET\" not allowed."})));
}

async fn index_with_bearer_and_jwt_prefixes(backend) {
    let server = seed_server(backend).await;
    let (_, access) = server.obtain_pair("user1", PASSWORD).await;
    for scheme in ["Bearer", "JWT"] {
        let (status, body) = server.get("/api/index/", Some(&format!("{scheme} {access}"))).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"id": 1, "username": "user1"})), "{scheme}");
    }
}

async fn index_jwt_prefix_is_refused_unless_configured(backend) {
    let server = server_with_user(backend).await;
    let (_, access) = server.obtain_pair("user1", PASSWORD).await;
    let (status, body) = server.get("/api/index/", Some(&format!("JWT {access}"))).await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, json!({"detail": "Authentication credentials were not provided."}))
    );
}

async fn index_header_errors(backend) {
    let server = seed_server(backend).await;
    let (refresh, access) = server.obtain_pair("user1", PASSWORD).await;
    let not_provided = json!({"detail": "Authentication credentials were not provided."});
    assert_eq!(server.get("/api/index/", None).await, (StatusCode::UNAUTHORIZED, not_provided.clone()));
    assert_eq!(
        server.get("/api/index/", Some(&format!("Token {access}"))).await,
        (StatusCode::UNAUTHORIZED, not_provided)
    );
    assert_eq!(
        server.get("/api/index/", Some("Bearer abc.def.ghi")).await,
        (StatusCode::UNAUTHORIZED, not_valid_for_any_type("Token is invalid"))
    );
    assert_eq!(
        server.get("/api/index/", Some(&format!("Bearer {refresh}"))).await,
        (StatusCode::UNAUTHORIZED, not_valid_for_any_type("Token has wrong type"))
    );
    assert_eq!(
        server.get("/api/index/", Some(&format!("Bearer {access} extra"))).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Authorization header must contain two space-delimited values", "code": "bad_authorization_header"})
        )
    );
}

async fn index_sends_www_authenticate_on_401(backend) {
    let server = seed_server(backend).await;
    let response = server.client.get(server.url("/api/index/")).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"api\"");
}

async fn index_token_claim_errors(backend) {
    let server = seed_server(backend).await;
    let expired = server.sign(claims("access", "1", -30));
    assert_eq!(
        server.get("/api/index/", Some(&format!("Bearer {expired}"))).await,
        (StatusCode::UNAUTHORIZED, not_valid_for_any_type("Token is expired"))
    );
    let mut no_user = claims("access", "1", 300);
    no_user.as_object_mut().expect("object").remove("user_id");
    assert_eq!(
        server.get("/api/index/", Some(&format!("Bearer {}", server.sign(no_user)))).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Token contained no recognizable user identification", "code": "token_not_valid"})
        )
    );
    let unknown = server.sign(claims("access", "999", 300));
    assert_eq!(
        server.get("/api/index/", Some(&format!("Bearer {unknown}"))).await,
        (StatusCode::UNAUTHORIZED, json!({"detail": "User not found", "code": "user_not_found"}))
    );
    let mut no_jti = claims("access", "1", 300);
    no_jti.as_object_mut().expect("object").remove("jti");
    assert_eq!(
        server.get("/api/index/", Some(&format!("Bearer {}", server.sign(no_jti)))).await,
        (StatusCode::UNAUTHORIZED, not_valid_for_any_type("Token has no id"))
    );
}

async fn verify_endpoint(backend) {
    let server = seed_server(backend).await;
    let (refresh, access) = server.obtain_pair("user1", PASSWORD).await;
    assert_eq!(server.post_form("/api/token/verify/", &[("token", &access)]).await, (StatusCode::OK, json!({})));
    assert_eq!(server.post_form("/api/token/verify/", &[("token", &refresh)]).await, (StatusCode::OK, json!({})));
    let broken = common::tamper_signature(&access);
    assert_eq!(
        server.post_json("/api/token/verify/", json!({"token": broken})).await,
        (StatusCode::UNAUTHORIZED, token_not_valid("Token is invalid"))
    );
    let expired = server.sign(claims("access", "1", -30));
    assert_eq!(
        server.post_json("/api/token/verify/", json!({"token": expired})).await,
        (StatusCode::UNAUTHORIZED, token_not_valid("Token is expired"))
    );
    assert_eq!(
        server.post_json("/api/token/verify/", json!({})).await,
        (StatusCode::BAD_REQUEST, json!({"token": ["This field is required."]}))
    );
}

async fn refresh_rotation_blacklist_and_verify_sequence(backend) {
    let server = seed_server(backend).await;
    let (refresh, access) = server.obtain_pair("user1", PASSWORD).await;
    let (status, body) = server.post_form("/api/token/refresh/", &[("refresh", &refresh)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["access", "refresh"]);
    let rotated = token_field(&body, "refresh");
    assert_ne!(payload(&rotated)["jti"], payload(&refresh)["jti"]);
    assert_eq!(
        server.post_form("/api/token/refresh/", &[("refresh", &refresh)]).await,
        (StatusCode::UNAUTHORIZED, token_not_valid("Token is blacklisted"))
    );
    assert_eq!(
        server.post_form("/api/token/refresh/", &[("refresh", &access)]).await,
        (StatusCode::UNAUTHORIZED, token_not_valid("Token has wrong type"))
    );
    assert_eq!(
        server.post_form("/api/token/refresh/", &[("refresh", "x.y.z")]).await,
        (StatusCode::UNAUTHORIZED, token_not_valid("Token is invalid"))
    );
    assert_eq!(
        server.post_json("/api/token/refresh/", json!({})).await,
        (StatusCode::BAD_REQUEST, json!({"refresh": ["This field is required."]}))
    );
    assert_eq!(
        server.post_form("/api/token/verify/", &[("token", &refresh)]).await,
        (StatusCode::BAD_REQUEST, json!({"non_field_errors": ["Token is blacklisted"]}))
    );
}

async fn blacklist_sequence(backend) {
    let server = seed_server(backend).await;
    let (refresh, access) = server.obtain_pair("user1", PASSWORD).await;
    assert_eq!(server.post_form("/api/token/blacklist/", &[("refresh", &refresh)]).await, (StatusCode::OK, json!({})));
    assert_eq!(
        server.post_form("/api/token/blacklist/", &[("refresh", &refresh)]).await,
        (StatusCode::UNAUTHORIZED, token_not_valid("Token is blacklisted"))
    );
    assert_eq!(
        server.post_form("/api/token/blacklist/", &[("refresh", &access)]).await,
        (StatusCode::UNAUTHORIZED, token_not_valid("Token has wrong type"))
    );
    assert_eq!(
        server.post_form("/api/token/refresh/", &[("refresh", &refresh)]).await,
        (StatusCode::UNAUTHORIZED, token_not_valid("Token is blacklisted"))
    );
}

async fn sliding_sequence(backend) {
    let server = seed_server(backend).await;
    let (status, body) = server.post_json("/api/token/sliding/", json!({"username": "user1", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_object().expect("object").len(), 1);
    let sliding = token_field(&body, "token");
    let claims_of = payload(&sliding);
    assert_eq!(claims_of["token_type"], "sliding");
    assert!(claims_of["refresh_exp"].as_i64().expect("refresh_exp") > claims_of["exp"].as_i64().expect("exp"));
    assert_eq!(
        server.get("/api/index/", Some(&format!("Bearer {sliding}"))).await,
        (StatusCode::UNAUTHORIZED, not_valid_for_any_type("Token has wrong type"))
    );
    let (status, body) = server.post_json("/api/token/sliding/refresh/", json!({"token": sliding})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let slid = payload(&token_field(&body, "token"));
    assert_eq!(slid["jti"], claims_of["jti"]);
    assert_eq!(slid["refresh_exp"], claims_of["refresh_exp"]);
    let (_, access) = server.obtain_pair("user1", PASSWORD).await;
    assert_eq!(
        server.post_json("/api/token/sliding/refresh/", json!({"token": access})).await,
        (StatusCode::UNAUTHORIZED, token_not_valid("Token has wrong type"))
    );
    assert_eq!(
        server.post_json("/api/token/sliding/", json!({"username": "user1", "password": "nope"})).await,
        (StatusCode::UNAUTHORIZED, no_active_account())
    );
}
}
