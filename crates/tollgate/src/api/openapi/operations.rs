//! The operations endpoints' descriptions: health, readiness, the key set, the WebSocket.

#![allow(dead_code)] // The functions below exist only to carry their `#[utoipa::path]`.

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::ErrorDetail;

/// The process is up.
#[derive(Serialize, ToSchema)]
struct Health {
    status: String,
}

/// Readiness: `status` is `ok` or `unavailable`; each dependency is `ok` or `down`.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// `ok` when every dependency answers, else `unavailable`.
    status: String,
    /// The database: `ok` or `down`.
    database: String,
    /// Redis, present only when REDIS_URL is set: `ok` or `down`.
    #[schema(nullable = false)]
    redis: Option<String>,
}

/// A JSON Web Key Set.
#[derive(Serialize, ToSchema)]
struct Jwks {
    /// Public JWKs: kty, kid, alg, use and the key's public parameters.
    keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    description = "Liveness: the process is up.",
    responses((status = 200, description = "Up", body = Health)))]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    description = "Readiness: the database and, when REDIS_URL is set, Redis answer. A load balancer sends traffic only to instances that answer 200.",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is down; the body names it", body = Readiness),
    ))]
fn readyz() {}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys",
    description = "The public keys that verify tokens (RFC 7517), each with kid, alg and use: \
                   the active key first, then keys retired by a rotation until their tokens \
                   have expired. HMAC keys are never published (shared secrets).",
    responses((status = 200, description = "The key set", body = Jwks)))]
fn jwks() {}

#[utoipa::path(get, path = "/ws/echo/", tag = "websocket",
    description = "A WebSocket (RFC 6455) that greets its user (\"hello, USERNAME\") and then echoes \
                   every message. The access token comes from the `token` query parameter, the \
                   authorization header, or the first text message. A connection that does not \
                   authenticate is closed with code 4401 and a reason such as \
                   `token_not_valid: Token is expired`; an open one is closed the same way, within \
                   a second, when its token expires or is revoked (logout, password change) or its \
                   user is deactivated or deleted. Before it authenticates, a socket reads at most \
                   8 KiB a frame (larger: closed with 1009). A request that is not a WebSocket \
                   upgrade gets 426.",
    params(("token" = Option<String>, Query, description = "An access token")),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),        (status = 426, description = "Not a WebSocket upgrade request", body = ErrorDetail),
    ))]
fn ws_echo() {}

#[derive(OpenApi)]
#[openapi(paths(healthz, readyz, jwks, ws_echo))]
pub(super) struct Paths;
