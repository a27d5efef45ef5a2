//! `GET /ws/echo/`: a WebSocket that greets its user by name, then echoes every message. It
//! shows WebSocket authentication: the token comes from `?token=`, the authorization header
//! or the first text message, and is checked as a bearer token is on any protected endpoint.
//! A connection that does not authenticate is closed with 4401 and a reason such as
//! `token_not_valid: Token is expired`.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use tollgate_axum::ws::{close_with, WebSocketAuth};

use crate::auth::authenticate_token;
use crate::error::ApiError;
use crate::state::AppState;

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
    upgrade.on_upgrade(move |socket| serve(socket, auth, state))
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
            if let ApiError::Internal(cause) = &error {
                tracing::error!(cause = %cause, "websocket authentication failed");
            }
            let (code, reason) = error.close_frame();
            close_with(&mut socket, code, reason).await;
            return;
        }
    };
    let greeting = format!("hello, {}", user.user.username);
    if socket.send(Message::Text(greeting.into())).await.is_err() {
        return;
    }
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            Message::Close(_) => break,
            // Pings are answered by the WebSocket layer itself.
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}
