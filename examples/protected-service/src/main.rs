//! A service whose routes only Tollgate tokens open. It never calls Tollgate per request: it
//! verifies tokens with the public keys of Tollgate's JWKS URL, fetched once and again when a
//! token names a new key (after `tollgate keys rotate`).
//!
//! Configuration, from the environment:
//! - `JWKS_URL` (required): e.g. `http://127.0.0.1:8000/.well-known/jwks.json`.
//! - `BIND`: the address to listen on; defaults to `127.0.0.1:3000`. Port 0 picks a free port.
//! - `AUDIENCE`, `ISSUER`: when set, tokens must carry this `aud` / `iss`.
//! - `LEEWAY`: clock skew allowed, in seconds; defaults to 0.
//! - `JWKS_MIN_INTERVAL`: the shortest time between two fetches of the key set, in seconds;
//!   defaults to 10.
//!
//! It prints `listening on http://ADDRESS` once it accepts connections.
//!
//! Routes: `GET /health` (open), `GET /hello` (any valid access token), `GET /admin` (a token
//! whose `is_staff` claim is true), `GET /ws/echo` (WebSocket, see `tollgate_axum::ws`).

use std::process::ExitCode;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tollgate_axum::ws::{recv_until, Expiry, WebSocketAuth};
use tollgate_axum::{AuthLayer, JwksClient, Staff, TokenUser, Verifier};
use tollgate_core::Settings;

async fn hello(user: TokenUser) -> Json<Value> {
    Json(json!({ "user_id": user.id, "message": format!("hello, user {}", user.id) }))
}

async fn admin(Staff(user): Staff<TokenUser>) -> Json<Value> {
    Json(json!({ "user_id": user.id, "staff": true }))
}

async fn echo(
    ws: WebSocketUpgrade,
    auth: WebSocketAuth,
    State(verifier): State<Verifier>,
) -> Response {
    // At most a token's worth is read before the socket authenticates.
    auth.limit(ws).on_upgrade(move |mut socket| async move {
        let Some(user) = auth.authenticate(&mut socket, &verifier).await else {
            return;
        };
        let greeting = format!("hello, user {}", user.id);
        if socket.send(Message::Text(greeting.into())).await.is_err() {
            return;
        }
        // Closed with 4401 when the token expires.
        let expiry = Expiry::of(&verifier, &user);
        while let Some(message) = recv_until(&mut socket, &expiry).await {
            if socket.send(message).await.is_err() {
                break;
            }
        }
    })
}

fn app(verifier: Verifier) -> Router {
    let protected = Router::new()
        .route("/hello", get(hello))
        .route("/admin", get(admin))
        .layer(AuthLayer::new(verifier.clone()));
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        // The WebSocket authenticates after the handshake, so it sits outside the layer.
        .route("/ws/echo", get(echo))
        .merge(protected)
        .with_state(verifier)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn verifier() -> Result<Verifier, String> {
    let url = env("JWKS_URL").ok_or("JWKS_URL is not set")?;
    let seconds = |name: &str, default: u64| match env(name) {
        Some(text) => text
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("{name}: {text:?} is not a number of seconds")),
        None => Ok(Duration::from_secs(default)),
    };
    let settings = Settings {
        audience: env("AUDIENCE").into_iter().collect(),
        issuer: env("ISSUER"),
        leeway: seconds("LEEWAY", 0)?,
        ..Settings::default()
    };
    let jwks = JwksClient::new(url)
        .map_err(|err| err.to_string())?
        .min_interval(seconds("JWKS_MIN_INTERVAL", 10)?);
    Verifier::with_jwks(&settings, jwks).map_err(|err| err.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let verifier = match verifier() {
        Ok(verifier) => verifier,
        Err(message) => {
            eprintln!("protected-service: {message}");
            return ExitCode::from(2);
        }
    };
    let bind = env("BIND").unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let listener = match tokio::net::TcpListener::bind(&bind).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("protected-service: cannot listen on {bind}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(address) => println!("listening on http://{address}"),
        Err(err) => eprintln!("protected-service: {err}"),
    }
    if let Err(err) = axum::serve(listener, app(verifier)).await {
        eprintln!("protected-service: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
