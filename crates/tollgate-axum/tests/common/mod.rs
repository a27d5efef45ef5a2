//! Shared test helpers: token issuers with the fixture keys, and a real HTTP server that
//! publishes a JWK Set and counts how often it is fetched.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tollgate_core::settings::Secret;
use tollgate_core::{unix_now, Algorithm, Claims, Settings, TokenCodec, TokenType};

/// An ES256 issuer with fixture pair `a` or `b`, its settings edited by `edit`.
pub fn issuer_with(pair: char, edit: impl FnOnce(&mut Settings)) -> TokenCodec {
    let (private, public) = match pair {
        'a' => (
            include_str!("../../../tollgate-core/fixtures/keys/p256_a.pem"),
            include_str!("../../../tollgate-core/fixtures/keys/p256_a.pub.pem"),
        ),
        _ => (
            include_str!("../../../tollgate-core/fixtures/keys/p256_b.pem"),
            include_str!("../../../tollgate-core/fixtures/keys/p256_b.pub.pem"),
        ),
    };
    let mut settings = Settings {
        algorithm: Algorithm::ES256,
        signing_key: Secret(private.to_owned()),
        verifying_key: public.to_owned(),
        ..Settings::default()
    };
    edit(&mut settings);
    TokenCodec::new(&settings).expect("fixture keys")
}

pub fn issuer(pair: char) -> TokenCodec {
    issuer_with(pair, |_| {})
}

/// Settings that verify the issuer's tokens with its public key only.
pub fn verifying_settings(pair: char) -> Settings {
    let public = match pair {
        'a' => include_str!("../../../tollgate-core/fixtures/keys/p256_a.pub.pem"),
        _ => include_str!("../../../tollgate-core/fixtures/keys/p256_b.pub.pem"),
    };
    Settings {
        algorithm: Algorithm::ES256,
        verifying_key: public.to_owned(),
        ..Settings::default()
    }
}

/// A token of `kind` for user `user_id`, issued `age` seconds ago, with extra claims.
pub fn token_aged(
    codec: &TokenCodec,
    kind: TokenType,
    user_id: &str,
    extra: Value,
    age: i64,
) -> String {
    let mut claims: Claims = codec.claims_for_user(kind, user_id, unix_now() - age);
    if let Value::Object(extra) = extra {
        for (name, value) in extra {
            claims.insert(name, value);
        }
    }
    codec.sign(claims).expect("signs").token
}

pub fn token(codec: &TokenCodec, kind: TokenType, user_id: &str, extra: Value) -> String {
    token_aged(codec, kind, user_id, extra, 0)
}

pub fn jwk(codec: &TokenCodec) -> Value {
    Value::Object(
        codec
            .keys()
            .signing_keys()
            .public_jwk()
            .cloned()
            .expect("public key"),
    )
}

/// A real HTTP server publishing a JWK Set at `/jwks.json`.
pub struct JwksServer {
    pub address: SocketAddr,
    keys: Arc<Mutex<Option<Vec<Value>>>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub async fn start(keys: Vec<Value>) -> JwksServer {
        let keys = Arc::new(Mutex::new(Some(keys)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (Arc::clone(&keys), Arc::clone(&fetches));
        let app = Router::new().route(
            "/jwks.json",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let keys = served.lock().expect("lock").clone();
                async move {
                    match keys {
                        Some(keys) => Ok(Json(json!({ "keys": keys }))),
                        None => Err(axum::http::StatusCode::SERVICE_UNAVAILABLE),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        JwksServer {
            address,
            keys,
            fetches,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.address)
    }

    pub fn publish(&self, keys: Vec<Value>) {
        *self.keys.lock().expect("lock") = Some(keys);
    }

    /// From now on, answer 503 instead of the set.
    pub fn break_down(&self) {
        *self.keys.lock().expect("lock") = None;
    }

    /// How many times the set was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}
