//! The published key set, so that other services verify tokens without calling Tollgate.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

/// How long clients may cache the key set. Short, so that a rotated key is seen soon.
const CACHE_CONTROL: &str = "public, max-age=60";

/// `GET /.well-known/jwks.json`: the public keys that verify Tollgate's tokens, each with its
/// `kid`, `alg` and `use`. HMAC secrets are never published, so under HS* the set is empty.
pub(crate) async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let keys: Vec<Value> = state
        .codec
        .keys()
        .public_jwk()
        .map(|jwk| Value::Object(jwk.clone()))
        .into_iter()
        .collect();
    (
        [(header::CACHE_CONTROL, CACHE_CONTROL)],
        Json(json!({ "keys": keys })),
    )
}
