//! Verifying with the keys of a JWKS URL served by a real local HTTP server.

mod common;

use std::time::Duration;

use common::{issuer, issuer_with, jwk, token, JwksServer};
use serde_json::json;
use tollgate_axum::{AuthError, JwksClient, Verifier};
use tollgate_core::{Settings, TokenError, TokenType};

fn verifier(server: &JwksServer, min_interval: Duration) -> Verifier {
    let client = JwksClient::new(server.url())
        .expect("client")
        .min_interval(min_interval);
    Verifier::with_jwks(&Settings::default(), client).expect("verifier")
}

fn refusal(result: Result<tollgate_axum::VerifiedToken, AuthError>) -> TokenError {
    match result {
        Err(AuthError::NoValidTokenType(refusals)) => refusals[0].error.clone(),
        other => panic!("expected a refused token, got {other:?}"),
    }
}

#[tokio::test]
async fn keys_are_fetched_once_and_cached() {
    let (a, b) = (issuer('a'), issuer('b'));
    let server = JwksServer::start(vec![jwk(&a), jwk(&b)]).await;
    let verifier = verifier(&server, Duration::from_secs(60));
    assert_eq!(
        server.fetches(),
        0,
        "nothing is fetched before a token arrives"
    );
    for codec in [&a, &b, &a] {
        let verified = verifier
            .verify(token(codec, TokenType::Access, "3", json!({})).as_bytes())
            .await
            .expect("valid");
        assert_eq!(verified.claims.str("user_id"), Some("3"));
    }
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_per_interval() {
    let (a, b) = (issuer('a'), issuer('b'));
    let server = JwksServer::start(vec![jwk(&a)]).await;
    let interval = Duration::from_millis(300);
    let verifier = verifier(&server, interval);
    let from_b = token(&b, TokenType::Access, "1", json!({}));
    verifier
        .verify(token(&a, TokenType::Access, "1", json!({})).as_bytes())
        .await
        .expect("valid");
    assert_eq!(server.fetches(), 1);

    // B is unknown: one refetch right away (the fetch for A was not this interval's).
    tokio::time::sleep(interval).await;
    assert_eq!(
        refusal(verifier.verify(from_b.as_bytes()).await),
        TokenError::Invalid {
            reason: "no key with this kid"
        }
    );
    assert_eq!(server.fetches(), 2);
    // More tokens with unknown kids within the interval do not reach the issuer.
    for _ in 0..5 {
        assert!(verifier.verify(from_b.as_bytes()).await.is_err());
    }
    assert_eq!(server.fetches(), 2);

    // The issuer publishes B; once the interval has passed, B's token makes it refetch.
    server.publish(vec![jwk(&a), jwk(&b)]);
    tokio::time::sleep(interval).await;
    verifier
        .verify(from_b.as_bytes())
        .await
        .expect("B is published now");
    assert_eq!(server.fetches(), 3);
    // Known kids need no fetch.
    verifier.verify(from_b.as_bytes()).await.expect("cached");
    assert_eq!(server.fetches(), 3);
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_keys_fetched_before() {
    let a = issuer('a');
    let server = JwksServer::start(vec![jwk(&a)]).await;
    let client = JwksClient::new(server.url())
        .expect("client")
        .min_interval(Duration::ZERO)
        .max_age(Duration::ZERO);
    let verifier = Verifier::with_jwks(&Settings::default(), client).expect("verifier");
    let from_a = token(&a, TokenType::Access, "1", json!({}));
    verifier.verify(from_a.as_bytes()).await.expect("valid");
    // The issuer now fails.
    server.break_down();
    verifier
        .verify(from_a.as_bytes())
        .await
        .expect("still valid");
    assert!(server.fetches() >= 2, "max_age 0 refetches every time");
}

#[tokio::test]
async fn an_unreachable_jwks_url_refuses_tokens_as_invalid() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    drop(listener);
    let client = JwksClient::new(url).expect("client");
    let verifier = Verifier::with_jwks(&Settings::default(), client).expect("verifier");
    let from_a = token(&issuer('a'), TokenType::Access, "1", json!({}));
    assert!(matches!(
        refusal(verifier.verify(from_a.as_bytes()).await),
        TokenError::Invalid { .. }
    ));
}

#[tokio::test]
async fn audience_and_issuer_apply_to_jwks_tokens() {
    let matching = issuer_with('a', |s| {
        s.audience = vec!["orders".into()];
        s.issuer = Some("https://auth.example.com".into());
    });
    let server = JwksServer::start(vec![jwk(&matching)]).await;
    let settings = Settings {
        audience: vec!["orders".into()],
        issuer: Some("https://auth.example.com".into()),
        ..Settings::default()
    };
    let client = JwksClient::new(server.url()).expect("client");
    let verifier = Verifier::with_jwks(&settings, client).expect("verifier");
    verifier
        .verify(token(&matching, TokenType::Access, "1", json!({})).as_bytes())
        .await
        .expect("matching aud and iss");
    let plain = issuer('a');
    assert!(matches!(
        refusal(
            verifier
                .verify(token(&plain, TokenType::Access, "1", json!({})).as_bytes())
                .await
        ),
        TokenError::Invalid {
            reason: "audience does not match"
        }
    ));
}
