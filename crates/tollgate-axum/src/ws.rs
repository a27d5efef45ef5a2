//! Authenticating WebSockets: the token comes from `?token=` in the query string, from the
//! authorization header, or from the first text message, since browsers cannot set headers on a
//! WebSocket. A connection that does not authenticate is closed with
//! [`CLOSE_UNAUTHENTICATED`] and a reason such as `token_not_valid: Token is expired`.
//!
//! The handshake itself is always accepted: a browser's WebSocket API never sees the status of a
//! refused handshake, but it does see a close code and reason.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{FromRef, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Uri};
use tollgate_core::auth::{parse_header, HeaderCredentials};

use crate::error::AuthError;
use crate::extract::TokenUser;
use crate::verifier::Verifier;

/// The close code for a connection that did not authenticate (4000–4999 are for applications,
/// RFC 6455 section 7.4.2; 4401 echoes HTTP's 401).
pub const CLOSE_UNAUTHENTICATED: u16 = 4401;
/// The close code for an authenticated user who may not use the endpoint (HTTP's 403).
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// How long a connection without a token in its request may take to send its first message.
pub const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The token a WebSocket upgrade request carries, if any: `?token=` first, then the
/// authorization header (AUTH_HEADER_NAME, AUTH_HEADER_TYPES). Extracting it never fails;
/// [`WebSocketAuth::authenticate`] decides once the socket is open.
///
/// ```
/// use axum::extract::{ws::{Message, WebSocketUpgrade}, FromRef, State};
/// use axum::response::Response;
/// use tollgate_axum::{Verifier, ws::WebSocketAuth};
///
/// async fn echo(ws: WebSocketUpgrade, auth: WebSocketAuth, State(verifier): State<Verifier>) -> Response {
///     ws.on_upgrade(move |mut socket| async move {
///         // Closed with 4401 and the reason when the token is missing or refused.
///         let Some(user) = auth.authenticate(&mut socket, &verifier).await else { return };
///         let _ = socket.send(Message::Text(format!("hello, {}", user.id).into())).await;
///     })
/// }
/// ```
#[derive(Debug, Clone)]
pub struct WebSocketAuth {
    found: Result<Option<String>, AuthError>,
    timeout: Duration,
}

impl WebSocketAuth {
    /// The token of a request's query string or header (`header_name`, with a scheme of
    /// `header_types`). For servers that verify tokens their own way; services use the
    /// extractor.
    pub fn new(
        uri: &Uri,
        headers: &HeaderMap,
        header_name: &HeaderName,
        header_types: &[String],
    ) -> Self {
        let query = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| pairs)
            .unwrap_or_default();
        if let Some((_, token)) = query.into_iter().find(|(name, _)| name == "token") {
            return WebSocketAuth {
                found: Ok(Some(token)),
                timeout: FIRST_MESSAGE_TIMEOUT,
            };
        }
        WebSocketAuth {
            found: header_token(headers, header_name, header_types),
            timeout: FIRST_MESSAGE_TIMEOUT,
        }
    }

    /// How long to wait for a first message carrying the token. Defaults to
    /// [`FIRST_MESSAGE_TIMEOUT`].
    pub fn first_message_timeout(self, timeout: Duration) -> WebSocketAuth {
        WebSocketAuth { timeout, ..self }
    }

    /// The token: from the request, or else the first text message (which must come within
    /// the first-message timeout). Does not close the socket; see [`close`].
    pub async fn token(self, socket: &mut WebSocket) -> Result<String, AuthError> {
        if let Some(token) = self.found? {
            return Ok(token);
        }
        let first = tokio::time::timeout(self.timeout, async {
            while let Some(Ok(message)) = socket.recv().await {
                match message {
                    Message::Text(text) => return Some(text.trim().to_owned()),
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(_) | Message::Close(_) => return None,
                }
            }
            None
        })
        .await;
        first
            .ok()
            .flatten()
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::NotAuthenticated)
    }

    /// The user of the connection's token, verified as [`TokenUser`] is; on failure the socket
    /// is closed with [`CLOSE_UNAUTHENTICATED`] and the reason, and `None` returned.
    pub async fn authenticate(
        self,
        socket: &mut WebSocket,
        verifier: &Verifier,
    ) -> Option<TokenUser> {
        let result = async {
            let token = self.token(socket).await?;
            let verified = verifier.verify(token.as_bytes()).await?;
            TokenUser::from_token(verifier, verified)
        }
        .await;
        match result {
            Ok(user) => Some(user),
            Err(error) => {
                close(socket, &error).await;
                None
            }
        }
    }
}

fn header_token(
    headers: &HeaderMap,
    header_name: &HeaderName,
    header_types: &[String],
) -> Result<Option<String>, AuthError> {
    let header = headers
        .get(header_name)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    match parse_header(header, header_types) {
        HeaderCredentials::Absent => Ok(None),
        HeaderCredentials::Malformed => Err(AuthError::BadAuthorizationHeader),
        HeaderCredentials::Token(raw) => String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| AuthError::BadAuthorizationHeader),
    }
}

impl<S> FromRequestParts<S> for WebSocketAuth
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        let (name, types) = verifier.header();
        Ok(WebSocketAuth::new(&parts.uri, &parts.headers, name, types))
    }
}

/// Closes the socket because of `error`: code [`CLOSE_FORBIDDEN`] for
/// [`AuthError::PermissionDenied`], [`CLOSE_UNAUTHENTICATED`] otherwise, and the reason
/// [`AuthError::reason`].
pub async fn close(socket: &mut WebSocket, error: &AuthError) {
    let code = match error {
        AuthError::PermissionDenied => CLOSE_FORBIDDEN,
        _ => CLOSE_UNAUTHENTICATED,
    };
    close_with(socket, code, error.reason()).await;
}

/// Closes the socket with `code` and `reason`, cut to the 123 bytes a close frame holds.
pub async fn close_with(socket: &mut WebSocket, code: u16, mut reason: String) {
    while reason.len() > 123 {
        reason.pop();
    }
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    // The peer may already be gone; there is nobody left to tell.
    let _ = socket.send(Message::Close(Some(frame))).await;
}
