//! `GET /ws/echo/`: a WebSocket that greets its user by name, then echoes every message. It
//! shows WebSocket authentication: the token comes from `?token=`, the authorization header
//! or the first text message, and is checked as a bearer token is on any protected endpoint.
//! A connection that does not authenticate is closed with 4401 and a reason such as
//! `token_not_valid: Token is expired`.
//!
//! Before it authenticates, a socket reads no more than a token's worth
//! (`tollgate_axum::ws::FIRST_MESSAGE_MAX_SIZE`; larger is closed with 1009). Once open, it
//! lives no longer than its token would on a request: it is closed with 4401 and the same
//! reason at the token's `exp` (plus LEEWAY), and within a second or so of a logout, a password
//! change, a deactivation or a deletion made through any instance or command.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use tokio::time::{Instant, MissedTickBehavior};
use tollgate_axum::ws::{close_with, Expiry, WebSocketAuth};
use tollgate_core::TokenType;

use crate::auth::{authenticate_token, recheck};
use crate::error::ApiError;
use crate::state::AppState;

/// How often an open socket checks its token against the revocations in memory: a lookup,
/// so a short interval costs little and bounds how long a revoked socket lives.
const RECHECK: Duration = Duration::from_millis(250);
/// How often it reads its user again at least (through the user cache, and at once when the
/// store reports a user change): with USER_CACHE_TTL off, changes made elsewhere are seen only
/// by reading, so this bounds both the delay and the reads.
const USER_RECHECK: Duration = Duration::from_secs(1);

/// What woke an authenticated socket.
enum Event {
    Received(Option<Result<Message, axum::Error>>),
    Expired,
    Recheck,
}

pub(crate) async fn echo(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return ApiError::UpgradeRequired.into_response();
    };
    let auth = WebSocketAuth::new(
        &uri,
        &headers,
        &state.auth_header,
        &state.settings.auth_header_types,
    );
    auth.limit(upgrade)
        .on_upgrade(move |socket| serve(socket, auth, state))
}

async fn serve(mut socket: WebSocket, auth: WebSocketAuth, state: AppState) {
    let user = match auth.token(&mut socket).await {
        Ok(token) => authenticate_token(token.as_bytes(), &state, false).await,
        Err(refused) => {
            tollgate_axum::ws::close(&mut socket, &refused).await;
            return;
        }
    };
    let user = match user {
        Ok(user) => user,
        Err(error) => {
            end(&mut socket, &error).await;
            return;
        }
    };
    let greeting = format!("hello, {}", user.user.username);
    if socket.send(Message::Text(greeting.into())).await.is_err() {
        return;
    }
    let expiry = Expiry::from_claims(
        &user.claims,
        user.token_type.unwrap_or(TokenType::Access),
        state.settings.leeway,
    );
    let mut ticks = tokio::time::interval(RECHECK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut epoch, mut read_at) = (state.store.user_epoch(), Instant::now());
    loop {
        // Each branch only yields an event; the socket is written once the others are dropped,
        // so no send is ever cut short.
        let event = tokio::select! {
            received = socket.recv() => Event::Received(received),
            () = expiry.reached() => Event::Expired,
            _ = ticks.tick() => Event::Recheck,
        };
        let reply = match event {
            Event::Received(Some(Ok(message @ (Message::Text(_) | Message::Binary(_))))) => message,
            // Pings are answered by the WebSocket layer itself.
            Event::Received(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Event::Received(_) => break,
            Event::Expired => {
                tollgate_axum::ws::close(&mut socket, &expiry.error()).await;
                break;
            }
            Event::Recheck => {
                let current = state.store.user_epoch();
                let read_store = current != epoch || read_at.elapsed() >= USER_RECHECK;
                if read_store {
                    (epoch, read_at) = (current, Instant::now());
                }
                match recheck(&state, &user, read_store).await {
                    Ok(()) => continue,
                    Err(error) => {
                        end(&mut socket, &error).await;
                        break;
                    }
                }
            }
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

/// Closes a socket whose token or user is not (or no longer) accepted. A failure to check
/// is logged and closes too: the socket cannot be vouched for (1013, try again later, when the
/// database is unavailable; 1011 for a defect).
async fn end(socket: &mut WebSocket, error: &ApiError) {
    match error {
        ApiError::Internal(cause) => {
            tracing::error!(cause = %cause, "websocket authentication failed");
        }
        ApiError::Unavailable { dependency, cause } => tracing::warn!(
            dependency = dependency.as_str(),
            cause = %cause,
            "websocket authentication failed: dependency unavailable"
        ),
        _ => {}
    }
    let (code, reason) = error.close_frame();
    close_with(socket, code, reason).await;
}
