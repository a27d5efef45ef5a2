//! The published key set, so that other services verify tokens without calling Tollgate.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

/// How long clients may cache the key set. Short, so that a rotated key is seen soon.
const CACHE_CONTROL: &str = "public, max-age=60";

/// `GET /.well-known/jwks.json`: the public keys that verify Tollgate's tokens (the active key
/// first, then retired keys until their `verify_until`), each with its `kid`, `alg` and `use`.
/// HMAC secrets are never published, so with HS* keys alone the set is empty.
pub(crate) async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let ring = state.codec.keys();
    let keys: Vec<Value> = ring
        .public_jwks(tollgate_core::unix_now())
        .into_iter()
        .map(|jwk| Value::Object(jwk.clone()))
        .collect();
    (
        [(header::CACHE_CONTROL, CACHE_CONTROL)],
        Json(json!({ "keys": keys })),
    )
}
