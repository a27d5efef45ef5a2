//! Moving off Django: the claim rules of PyJWT, djangorestframework-jwt's clients, the password
//! fingerprint beside Django, and the settings converter, each as a migrating team meets it.

mod common;

use common::{claims, payload, token_field, TestServer};
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

/// Made by Django's PBKDF2PasswordHasher for "correct horse battery staple", with fewer
/// iterations than Tollgate wants (see tollgate-core's password fixtures).
const DJANGO_HASH: &str =
    "pbkdf2_sha256$1000$saltsalt0$3FOIWq+8wztxFF0f9+QHX5gPK+0BKeH6elJMSfbkOIo=";
const DJANGO_PASSWORD: &str = "correct horse battery staple";

/// simplejwt's `hash_password` claim for a stored hash: upper-case hex MD5 of the hash string.
fn django_fingerprint(stored_hash: &str) -> String {
    tollgate_core::password::revoke_fingerprint(stored_hash)
}

/// With CHECK_REVOKE_TOKEN on, Tollgate and Django run side by side on one key: a login to
/// Tollgate keeps the imported Django hash (no rehash), so the tokens Django issued before
/// and those Tollgate issues carry the same fingerprint, and each side accepts the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_revoke_token_keeps_the_django_hash_so_both_sides_accept_the_tokens() {
    let server = TestServer::start_with(|s| s.check_revoke_token = true).await;
    let user = server.create_user("ann", "unused-password-1").await;
    server
        .store()
        .set_password_hash(user.id, DJANGO_HASH)
        .await
        .expect("set");
    // An access token as Django issued it before the switch.
    let mut django_claims = claims("access", &user.id.to_string(), 300);
    django_claims["hash_password"] = json!(django_fingerprint(DJANGO_HASH));
    let from_django = server.sign(django_claims);

    let (_, access) = server.obtain_pair("ann", DJANGO_PASSWORD).await;
    let stored = server
        .store()
        .find_user(tollgate_store::UserField::Username, "ann")
        .await
        .expect("query")
        .expect("exists");
    assert_eq!(stored.password, DJANGO_HASH, "the Django hash is kept");
    assert_eq!(
        common::payload(&access)["hash_password"],
        json!(django_fingerprint(DJANGO_HASH)),
        "Django, checking its own stored hash, accepts Tollgate's token"
    );
    for token in [&from_django, &access] {
        let (status, body) = server
            .get("/api/index/", Some(&format!("Bearer {token}")))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // A second login still finds the Django hash, and still logs in.
    server.obtain_pair("ann", DJANGO_PASSWORD).await;
}

fn single_token_server() -> impl FnOnce(&mut tollgate_core::Settings) {
    |s| {
        s.login_response = tollgate_core::settings::LoginResponse::Token;
        s.refresh_token_lifetime = std::time::Duration::from_secs(7 * 24 * 3600);
    }
}

/// A djangorestframework-jwt client (LOGIN_RESPONSE = "token") logs in, verifies and refreshes
/// with `{"token"}` and reads `{"token"}` back, as it did against Django; the refreshed token
/// keeps the login's `orig_iat` and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drf_jwt_clients_refresh_and_verify_their_single_token() {
    let server = TestServer::start_with(single_token_server()).await;
    server.create_user("user1", PASSWORD).await;
    let (status, body) = server
        .post_json(
            "/api/token/",
            json!({"username": "user1", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = token_field(&body, "token");
    let orig_iat = payload(&token)["orig_iat"].clone();
    assert!(orig_iat.is_i64(), "{}", payload(&token));

    let (status, body) = server
        .post_json("/api/token/verify/", json!({ "token": token }))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "token": token })));

    let (status, body) = server
        .post_form("/api/token/refresh/", &[("token", &token)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body.as_object().expect("object").keys().collect::<Vec<_>>(),
        ["token"]
    );
    let renewed = token_field(&body, "token");
    assert_ne!(renewed, token);
    assert_eq!(payload(&renewed)["orig_iat"], orig_iat);
    assert_eq!(payload(&renewed)["token_type"], "access");
    let (status, body) = server
        .get("/api/index/", Some(&format!("Bearer {renewed}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An empty body still names simplejwt's field; a garbage token is invalid.
    let (status, body) = server.post_json("/api/token/refresh/", json!({})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"refresh": ["This field is required."]})
        )
    );
    let (status, body) = server
        .post_json("/api/token/refresh/", json!({"token": "x.y.z"}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            token_not_valid("Token is invalid")
        )
    );

    // With simplejwt's pair (the default), `{"token"}` is no refresh and verify answers `{}`.
    let server = TestServer::start().await;
    server.create_user("user1", PASSWORD).await;
    let (_, access) = server.obtain_pair("user1", PASSWORD).await;
    let (status, body) = server
        .post_json("/api/token/refresh/", json!({ "token": access }))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"refresh": ["This field is required."]})
        )
    );
    let (status, body) = server
        .post_json("/api/token/verify/", json!({ "token": access }))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
}

/// The single token refreshes only while its login is younger than REFRESH_TOKEN_LIFETIME
/// (JWT_REFRESH_EXPIRATION_DELTA), and only while it is itself valid and of type access.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drf_jwt_refresh_ends_with_the_refresh_window() {
    let server = TestServer::start_with(single_token_server()).await;
    let user = server.create_user("user1", PASSWORD).await;
    let id = user.id.to_string();
    let week = 7 * 24 * 3600;
    let refresh = |token: String| {
        let server = &server;
        async move {
            server
                .post_json("/api/token/refresh/", json!({ "token": token }))
                .await
        }
    };
    let mut old_login = claims("access", &id, 300);
    old_login["orig_iat"] = json!(tollgate_core::unix_now() - week - 5);
    assert_eq!(
        refresh(server.sign(old_login)).await,
        (
            StatusCode::UNAUTHORIZED,
            token_not_valid("Token 'orig_iat' claim has expired")
        )
    );
    let mut recent_login = claims("access", &id, 300);
    recent_login["orig_iat"] = json!(tollgate_core::unix_now() - week + 60);
    assert_eq!(refresh(server.sign(recent_login)).await.0, StatusCode::OK);
    assert_eq!(
        refresh(server.sign(claims("access", &id, -30))).await,
        (
            StatusCode::UNAUTHORIZED,
            token_not_valid("Token is expired")
        )
    );
    assert_eq!(
        refresh(server.sign(claims("refresh", &id, 300))).await,
        (
            StatusCode::UNAUTHORIZED,
            token_not_valid("Token has wrong type")
        )
    );
}
