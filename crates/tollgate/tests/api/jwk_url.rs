//! JWK_URL: tokens of another issuer, verified with the keys it publishes. The other issuer
//! here is a second Tollgate server with an ES256 key.

use crate::common;

use common::TestServer;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tollgate_core::{keygen, Algorithm};

const PASSWORD: &str = "correct horse battery";

async fn issuer(edit: impl FnOnce(&mut tollgate_core::Settings)) -> TestServer {
    let key = keygen::generate(Algorithm::ES256).expect("key");
    TestServer::start_with(|s| {
        s.algorithm = Algorithm::ES256;
        s.signing_key = key.signing_key.clone();
        s.verifying_key = key.verifying_key.clone().unwrap_or_default();
        edit(s);
    })
    .await
}

on_both_backends! {
    async fn tokens_of_the_jwk_url_issuer_authenticate_and_our_own_do_not(backend) {
        let other = issuer(|_| {}).await;
        let jwk_url = other.url("/.well-known/jwks.json");
        let server = TestServer::start_on(backend, |s| s.jwk_url = Some(jwk_url)).await;
        // The same user (id 1) on both sides: the token names the user, the server finds it.
        other.create_user("ann", PASSWORD).await;
        server.create_user("ann", PASSWORD).await;
        let (foreign_refresh, foreign) = other.obtain_pair("ann", PASSWORD).await;
        let (_, own) = server.obtain_pair("ann", PASSWORD).await;

        let (status, body) = server.get("/api/index/", Some(&format!("Bearer {foreign}"))).await;
        assert_eq!((status, &body["username"]), (StatusCode::OK, &json!("ann")), "{body}");

        let refused = |message: &str| json!({
            "detail": "Given token not valid for any token type",
            "code": "token_not_valid",
            "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
        });
        let (status, body) = server.get("/api/index/", Some(&format!("Bearer {own}"))).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, refused("Token is invalid")));
        let (status, body) =
            server.get("/api/index/", Some(&format!("Bearer {foreign_refresh}"))).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, refused("Token has wrong type")));

        // The WebSocket authenticates the same way.
        let url = format!("{}/ws/echo/?token={foreign}", server.base.replacen("http", "ws", 1));
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("handshake");
        match socket.next().await {
            Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), "hello, ann"),
            other => panic!("expected the greeting, got {other:?}"),
        }
        server.stop().await;
        other.stop().await;
    }
}

#[tokio::test]
async fn audience_and_issuer_apply_to_jwk_url_tokens() {
    let matching = issuer(|s| {
        s.audience = vec!["orders".into()];
        s.issuer = Some("https://auth.example.com".into());
    })
    .await;
    let other = issuer(|_| {}).await;
    // The server trusts both issuers' keys: only the claims decide.
    let jwks = |server: &TestServer| server.url("/.well-known/jwks.json");
    let (matching_url, other_url) = (jwks(&matching), jwks(&other));
    for (url, expected) in [
        (matching_url, StatusCode::OK),
        (other_url, StatusCode::UNAUTHORIZED),
    ] {
        let server = TestServer::start_with(|s| {
            s.jwk_url = Some(url);
            s.audience = vec!["orders".into()];
            s.issuer = Some("https://auth.example.com".into());
        })
        .await;
        server.create_user("ann", PASSWORD).await;
        let issuer = if expected == StatusCode::OK {
            &matching
        } else {
            &other
        };
        issuer.create_user("ann", PASSWORD).await;
        let (_, access) = issuer.obtain_pair("ann", PASSWORD).await;
        let (status, body) = server
            .get("/api/index/", Some(&format!("Bearer {access}")))
            .await;
        assert_eq!(status, expected, "{body}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_jwk_url_that_is_not_http_is_refused_at_start() {
    let settings = tollgate_core::Settings {
        jwk_url: Some("file:///etc/jwks.json".into()),
        ..common::test_settings()
    };
    let err = settings.validate().expect_err("refused");
    assert!(err.to_string().starts_with("setting JWK_URL"), "{err}");
}
