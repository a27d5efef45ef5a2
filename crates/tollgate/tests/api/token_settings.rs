//! The token API under non-default settings, interoperability with other JWT libraries, and
//! behaviour beyond the reference transcript (races, deleted users, bad bodies).

use crate::common;

use std::time::Duration;

use common::{claims, payload, sign_with, token_field, TestServer, TEST_KEY};
use reqwest::StatusCode;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

fn token_not_valid(message: &str) -> serde_json::Value {
    json!({"detail": message, "code": "token_not_valid"})
}

on_both_backends! {
    /// Two concurrent refreshes of one token with rotation and blacklisting: exactly one wins (#2).
    async fn concurrent_refreshes_of_one_token_let_exactly_one_succeed(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.rotate_refresh_tokens = true;
            s.blacklist_after_rotation = true;
        })
        .await;
        server.create_user("user1", PASSWORD).await;
        for _round in 0..3 {
            let (refresh, _) = server.obtain_pair("user1", PASSWORD).await;
            let attempts: Vec<_> = (0..8)
                .map(|_| {
                    let request = server.client.post(server.url("/api/token/refresh/")).json(&json!({"refresh": refresh}));
                    tokio::spawn(async move {
                        let response = request.send().await.expect("sent");
                        let status = response.status();
                        (status, response.json::<serde_json::Value>().await.expect("JSON body"))
                    })
                })
                .collect();
            let mut results = Vec::new();
            for attempt in attempts {
                results.push(attempt.await.expect("request task"));
            }
            let winners = results.iter().filter(|(status, _)| *status == StatusCode::OK).count();
            assert_eq!(winners, 1, "{results:?}");
            for (status, body) in results.iter().filter(|(status, _)| *status != StatusCode::OK) {
                assert_eq!((*status, body.clone()), (StatusCode::UNAUTHORIZED, token_not_valid("Token is blacklisted")));
            }
        }
    }

    /// Every issued refresh token is recorded as outstanding, rotated ones included.
    async fn issued_refresh_tokens_are_recorded_as_outstanding(backend) {
        let server = TestServer::start_on(backend, |s| s.rotate_refresh_tokens = true).await;
        server.create_user("user1", PASSWORD).await;
        let (refresh, _) = server.obtain_pair("user1", PASSWORD).await;
        let (status, body) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Without BLACKLIST_AFTER_ROTATION the old token stays valid, as in simplejwt.
        let (status, _) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(server.store().token_counts().await.expect("counts"), (3, 0));
    }

    /// Without rotation the refresh endpoint answers only an access token.
    async fn refresh_without_rotation_returns_only_access(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        server.create_user("user1", PASSWORD).await;
        let (refresh, _) = server.obtain_pair("user1", PASSWORD).await;
        let (status, body) = server.post_form("/api/token/refresh/", &[("refresh", &refresh)]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body.as_object().expect("object").keys().collect::<Vec<_>>(), ["access"]);
        let access = payload(&token_field(&body, "access"));
        assert_eq!(access["user_id"], "1");
        assert_ne!(access["jti"], payload(&refresh)["jti"]);
    }

    /// A deleted or deactivated user's refresh token is refused with 401, not simplejwt 5.5.1's 500.
    async fn refresh_for_a_deleted_or_inactive_user_is_401(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let gone = server.create_user("gone", PASSWORD).await;
        let sleepy = server.create_user("sleepy", PASSWORD).await;
        let (gone_refresh, _) = server.obtain_pair("gone", PASSWORD).await;
        let (sleepy_refresh, sleepy_access) = server.obtain_pair("sleepy", PASSWORD).await;
        server.store().delete_user(gone.id).await.expect("deleted");
        server.store().set_active(sleepy.id, false).await.expect("deactivated");
        let refused = json!({"detail": "No active account found for the given token."});
        for refresh in [&gone_refresh, &sleepy_refresh] {
            assert_eq!(
                server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await,
                (StatusCode::UNAUTHORIZED, refused.clone())
            );
        }
        assert_eq!(
            server.get("/api/index/", Some(&format!("Bearer {sleepy_access}"))).await,
            (StatusCode::UNAUTHORIZED, json!({"detail": "User is inactive", "code": "user_inactive"}))
        );
    }

    /// Sliding tokens authenticate when listed in AUTH_TOKEN_CLASSES, and a blacklisted one stops.
    async fn sliding_tokens_authenticate_when_configured(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.auth_token_classes = vec![tollgate_core::TokenType::Access, tollgate_core::TokenType::Sliding];
        })
        .await;
        server.create_user("user1", PASSWORD).await;
        let (_, body) = server.post_json("/api/token/sliding/", json!({"username": "user1", "password": PASSWORD})).await;
        let sliding = token_field(&body, "token");
        let auth = format!("Bearer {sliding}");
        assert_eq!(server.get("/api/index/", Some(&auth)).await.0, StatusCode::OK);
        let jti = payload(&sliding)["jti"].as_str().expect("jti").to_owned();
        let record = tollgate_store::TokenRecord { jti: &jti, user_id: None, created_at: None, expires_at: i64::MAX, session_id: None };
        server.store().blacklist(&record, 0).await.expect("blacklisted");
        let (status, body) = server.get("/api/index/", Some(&auth)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["messages"][0]["message"], "Token is blacklisted", "{body}");
        assert_eq!(
            server.post_json("/api/token/sliding/refresh/", json!({"token": sliding})).await,
            (StatusCode::UNAUTHORIZED, token_not_valid("Token is blacklisted"))
        );
    }

    /// flushexpiredtokens deletes expired rows in batches and keeps live ones.
    async fn flushing_deletes_only_expired_tokens(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let store = server.store();
        let jtis: Vec<String> = (0..25).map(|i| format!("jti-{i}")).collect();
        for (i, jti) in jtis.iter().enumerate() {
            let expires_at = if i < 20 { 100 } else { i64::MAX / 2 };
            let record = tollgate_store::TokenRecord { jti, user_id: None, created_at: Some(1), expires_at, session_id: None };
            if i % 2 == 0 {
                store.blacklist(&record, 1).await.expect("blacklisted");
            } else {
                store.record_outstanding(&record).await.expect("recorded");
            }
        }
        let report = store.flush_expired(100, tollgate_store::FlushPace::UNPAUSED, |_| {}).await.expect("flushed");
        assert_eq!((report.outstanding, report.blacklisted), (20, 10));
        assert_eq!(store.token_counts().await.expect("counts"), (5, 3));
        assert!(store.is_blacklisted("jti-22").await.expect("query"));
        assert!(!store.is_blacklisted("jti-2").await.expect("query"));
    }

    /// UPDATE_LAST_LOGIN records the login time; off by default.
    async fn last_login_is_recorded_only_when_configured(backend) {
        for update in [false, true] {
            let server = TestServer::start_on(backend, |s| s.update_last_login = update).await;
            let user = server.create_user("user1", PASSWORD).await;
            server.obtain_pair("user1", PASSWORD).await;
            let stored = server
                .store()
                .find_user(tollgate_store::UserField::Id, &user.id.to_string())
                .await
                .expect("query")
                .expect("exists");
            assert_eq!(stored.last_login.is_some(), update);
        }
    }
}

/// A token minted by Tollgate decodes with a standard JWT library and the same key.
#[tokio::test]
async fn tollgate_tokens_decode_with_a_standard_library() {
    let server = TestServer::start().await;
    server.create_user("user1", PASSWORD).await;
    let (refresh, access) = server.obtain_pair("user1", PASSWORD).await;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    let key = jsonwebtoken::DecodingKey::from_secret(TEST_KEY.as_bytes());
    for (token, kind) in [(&access, "access"), (&refresh, "refresh")] {
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).expect("decodes");
        assert_eq!(data.header.alg, jsonwebtoken::Algorithm::HS256);
        let claims = data.claims.as_object().expect("object");
        // simplejwt's claims in its order, then the login's session id and how the user
        // signed in.
        assert_eq!(
            claims.keys().collect::<Vec<_>>(),
            ["token_type", "exp", "iat", "jti", "user_id", "amr", "sid"]
        );
        assert_eq!(claims["token_type"], kind);
        assert_eq!(claims["user_id"], "1");
        let jti = claims["jti"].as_str().expect("jti");
        assert!(jti.len() == 32 && jti.chars().all(|c| c.is_ascii_hexdigit()));
    }
}

/// Tokens minted elsewhere with the same key are accepted, with `user_id` as a string or a number
/// (simplejwt before 5.5 wrote numbers).
#[tokio::test]
async fn tokens_minted_elsewhere_with_the_same_key_are_accepted() {
    let server = TestServer::start().await;
    server.create_user("user1", PASSWORD).await;
    let mut numeric = claims("access", "1", 300);
    numeric["user_id"] = json!(1);
    for payload in [claims("access", "1", 300), numeric] {
        let token = server.sign(payload);
        let (status, body) = server
            .get("/api/index/", Some(&format!("Bearer {token}")))
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({"id": 1, "username": "user1"}))
        );
    }
    let refresh = server.sign(claims("refresh", "1", 300));
    let (status, body) = server
        .post_json("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server
            .post_json("/api/token/blacklist/", json!({"refresh": refresh}))
            .await
            .0,
        StatusCode::OK
    );
}

/// A token signed with another key, or with another HMAC algorithm, is refused.
#[tokio::test]
async fn other_keys_and_algorithms_are_refused() {
    let server = TestServer::start().await;
    server.create_user("user1", PASSWORD).await;
    let foreign = sign_with(
        "some-other-key-of-sufficient-length-0123456789",
        &server.settings,
        claims("access", "1", 300),
    );
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims("access", "1", 300),
        &jsonwebtoken::EncodingKey::from_secret(TEST_KEY.as_bytes()),
    )
    .expect("signs");
    for token in [foreign, hs512] {
        assert_eq!(
            server
                .post_json("/api/token/verify/", json!({"token": token}))
                .await,
            (
                StatusCode::UNAUTHORIZED,
                token_not_valid("Token is invalid")
            )
        );
    }
}

/// AUDIENCE and ISSUER are written into tokens and required of tokens presented.
#[tokio::test]
async fn audience_and_issuer_are_written_and_enforced() {
    let server = TestServer::start_with(|s| {
        s.audience = vec!["orders".into()];
        s.issuer = Some("https://auth.example.com".into());
    })
    .await;
    server.create_user("user1", PASSWORD).await;
    let (_, access) = server.obtain_pair("user1", PASSWORD).await;
    let claims_of = payload(&access);
    assert_eq!(
        (claims_of["aud"].clone(), claims_of["iss"].clone()),
        (json!("orders"), json!("https://auth.example.com"))
    );
    assert_eq!(
        server
            .get("/api/index/", Some(&format!("Bearer {access}")))
            .await
            .0,
        StatusCode::OK
    );
    let mut wrong = claims("access", "1", 300);
    wrong["aud"] = json!("billing");
    wrong["iss"] = json!("https://auth.example.com");
    assert_eq!(
        server
            .post_json("/api/token/verify/", json!({"token": server.sign(wrong)}))
            .await,
        (
            StatusCode::UNAUTHORIZED,
            token_not_valid("Token is invalid")
        )
    );
}

/// LEEWAY lets a token live that many seconds past `exp`.
#[tokio::test]
async fn leeway_extends_expiry() {
    let server = TestServer::start_with(|s| s.leeway = Duration::from_secs(60)).await;
    server.create_user("user1", PASSWORD).await;
    let recent = server.sign(claims("access", "1", -30));
    assert_eq!(
        server
            .get("/api/index/", Some(&format!("Bearer {recent}")))
            .await
            .0,
        StatusCode::OK
    );
    let old = server.sign(claims("access", "1", -61));
    assert_eq!(
        server
            .get("/api/index/", Some(&format!("Bearer {old}")))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

/// AUTH_HEADER_NAME in Django's META form reads another header.
#[tokio::test]
async fn a_custom_auth_header_name_is_read() {
    let server =
        TestServer::start_with(|s| s.auth_header_name = "HTTP_X_ACCESS_TOKEN".into()).await;
    server.create_user("user1", PASSWORD).await;
    let (_, access) = server.obtain_pair("user1", PASSWORD).await;
    let response = server
        .client
        .get(server.url("/api/index/"))
        .header("x-access-token", format!("Bearer {access}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        server
            .get("/api/index/", Some(&format!("Bearer {access}")))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

/// USER_ID_FIELD = username puts the username in tokens and finds users by it.
#[tokio::test]
async fn user_id_field_can_be_the_username() {
    let server = TestServer::start_with(|s| {
        s.user_id_field = tollgate_core::settings::UserIdField::Username
    })
    .await;
    server.create_user("ann", PASSWORD).await;
    let (refresh, access) = server.obtain_pair("ann", PASSWORD).await;
    assert_eq!(payload(&access)["user_id"], "ann");
    assert_eq!(
        server
            .get("/api/index/", Some(&format!("Bearer {access}")))
            .await
            .1["username"],
        "ann"
    );
    assert_eq!(
        server
            .post_json("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .0,
        StatusCode::OK
    );
}

/// Lifetimes come from the settings.
#[tokio::test]
async fn lifetimes_come_from_settings() {
    let server = TestServer::start_with(|s| {
        s.access_token_lifetime = Duration::from_secs(60);
        s.refresh_token_lifetime = Duration::from_secs(3600);
    })
    .await;
    server.create_user("user1", PASSWORD).await;
    let (refresh, access) = server.obtain_pair("user1", PASSWORD).await;
    let life = |token: &str| {
        let p = payload(token);
        p["exp"].as_i64().expect("exp") - p["iat"].as_i64().expect("iat")
    };
    assert_eq!((life(&access), life(&refresh)), (60, 3600));
}

/// Bad bodies get a clear 4xx in the documented shape, never a 5xx.
#[tokio::test]
async fn bad_bodies_get_clear_errors() {
    let server = TestServer::start_with(|s| s.max_body_bytes = 1024).await;
    let (status, body) = server
        .post_raw("/api/token/", Some("text/plain"), b"username=a".to_vec())
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"detail": "Unsupported media type \"text/plain\" in request."})
        )
    );
    let huge = format!(r#"{{"username":"{}","password":"x"}}"#, "a".repeat(4096));
    let (status, body) = server
        .post_raw("/api/token/", Some("application/json"), huge.into_bytes())
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"detail": "Request body is too large."})
        )
    );
    let (status, body) = server
        .post_raw("/api/token/", Some("application/json"), b"[1,2]".to_vec())
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        )
    );
    let (status, body) = server
        .post_raw("/api/token/", Some("application/json"), vec![0xff, 0xfe])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server.post_raw("/api/token/", None, Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        server.get("/no/such/path/", None).await,
        (StatusCode::NOT_FOUND, json!({"detail": "Not found."}))
    );
    assert_eq!(
        server.get("/healthz", None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
}

/// Endpoint paths come from the settings.
#[tokio::test]
async fn endpoint_paths_are_configurable() {
    let server = TestServer::start_with(|s| {
        s.token_obtain_path = "/auth/login/".into();
        s.index_path = "/auth/me/".into();
    })
    .await;
    server.create_user("user1", PASSWORD).await;
    let (status, body) = server
        .post_json(
            "/auth/login/",
            json!({"username": "user1", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = token_field(&body, "access");
    assert_eq!(
        server
            .get("/auth/me/", Some(&format!("Bearer {access}")))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server.post_json("/api/token/", json!({})).await.0,
        StatusCode::NOT_FOUND
    );
}
