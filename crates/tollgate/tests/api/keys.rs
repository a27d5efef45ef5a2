//! Asymmetric keys and the published key set (#5): other services verify Tollgate's tokens
//! with nothing but `/.well-known/jwks.json`.

use crate::common;

use common::{payload, TestServer};
use reqwest::StatusCode;
use serde_json::Value;
use tollgate_core::{keygen, Algorithm};

const PASSWORD: &str = "correct horse battery";

async fn jwks(server: &TestServer) -> Value {
    let response = server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("public, max-age=60")
    );
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn tokens_verify_with_the_published_key_alone() {
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let key = keygen::generate(alg).expect("key");
        let server = TestServer::start_with(|s| {
            s.algorithm = alg;
            s.signing_key = key.signing_key.clone();
            s.verifying_key = key.verifying_key.clone().unwrap_or_default();
        })
        .await;
        server.create_user("user1", PASSWORD).await;
        let (refresh, access) = server.obtain_pair("user1", PASSWORD).await;

        let set = jwks(&server).await;
        let keys = set["keys"].as_array().expect("a key list");
        assert_eq!(keys.len(), 1, "{set}");
        let text = set.to_string();
        for private in ["\"d\"", "\"p\"", "\"q\"", "\"k\""] {
            assert!(
                !text.contains(private),
                "{alg:?} publishes {private}: {text}"
            );
        }
        assert_eq!(keys[0]["alg"], alg.as_str());
        assert_eq!(keys[0]["use"], "sig");

        let jwk: jsonwebtoken::jwk::JwkSet = serde_json::from_value(set.clone()).expect("a JWKS");
        for token in [&access, &refresh] {
            let header = jsonwebtoken::decode_header(token).expect("header");
            let kid = header.kid.expect("every token names its key");
            let found = jwk.find(&kid).expect("the kid is published");
            let decoding = jsonwebtoken::DecodingKey::from_jwk(found).expect("usable");
            let verified = jsonwebtoken::decode::<Value>(
                token,
                &decoding,
                &jsonwebtoken::Validation::new(header.alg),
            )
            .unwrap_or_else(|err| panic!("{alg:?}: {err}"));
            assert_eq!(verified.claims, payload(token));
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn hmac_secrets_are_never_published() {
    let server = TestServer::start().await;
    server.create_user("user1", PASSWORD).await;
    let (_, access) = server.obtain_pair("user1", PASSWORD).await;
    let set = jwks(&server).await;
    assert_eq!(set, serde_json::json!({"keys": []}));
    let header = jsonwebtoken::decode_header(&access).expect("header");
    let kid = header.kid.expect("HMAC tokens carry a kid too");
    assert!(!kid.is_empty());
    assert!(!common::TEST_KEY.contains(&kid));
    server.stop().await;
}
