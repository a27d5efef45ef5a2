//! Authenticating WebSockets: the token comes from `?token=` in the query string, from the
//! authorization header, or from the first text message, since browsers cannot set headers on a
//! WebSocket. A connection that does not authenticate is closed with
//! [`CLOSE_UNAUTHENTICATED`] and a reason such as `token_not_valid: Token is expired`.
//!
//! Two options follow what a Django Channels middleware built on simplejwt does:
//! [`WebSocketAuth::any_token_type`] accepts an access, refresh or sliding token (simplejwt's
//! `UntypedToken`), and [`WebSocketAuth::authenticate_optional`] lets a connection without a
//! token continue as anonymous.
//!
//! The handshake itself is always accepted: a browser's WebSocket API never sees the status of a
//! refused handshake, but it does see a close code and reason.
//!
//! Before it is authenticated a socket reads at most [`FIRST_MESSAGE_MAX_SIZE`] bytes
//! ([`WebSocketAuth::limit`]; a larger frame is refused from its header, unread, and closed
//! with [`CLOSE_TOO_BIG`]), and once authenticated it closes when its token expires
//! ([`Expiry`], [`recv_until`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRef, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Uri};
use tokio::time::Instant;
use tollgate_core::auth::{parse_header, ClassRefusal, HeaderCredentials};
use tollgate_core::{Claims, TokenError, TokenType};

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
/// The largest frame and message a socket reads before it is authenticated: room for any token,
/// and no more, so that an unauthenticated peer cannot make the server buffer megabytes.
pub const FIRST_MESSAGE_MAX_SIZE: usize = 8 * 1024;
/// The close code for a message over the size limit (RFC 6455 section 7.4.1, "Message Too Big").
pub const CLOSE_TOO_BIG: u16 = 1009;

/// The token a WebSocket upgrade request carries, if any: `?token=` first, then the
/// authorization header (AUTH_HEADER_NAME, AUTH_HEADER_TYPES). Extracting it never fails;
/// [`WebSocketAuth::authenticate`] decides once the socket is open.
///
/// ```
/// use axum::extract::{ws::{Message, WebSocketUpgrade}, FromRef, State};
/// use axum::response::Response;
/// use tollgate_axum::{Verifier, ws::WebSocketAuth};
///
/// use tollgate_axum::ws::{recv_until, Expiry};
///
/// async fn echo(ws: WebSocketUpgrade, auth: WebSocketAuth, State(verifier): State<Verifier>) -> Response {
///     // Caps what an unauthenticated peer may send.
///     auth.limit(ws).on_upgrade(move |mut socket| async move {
///         // Closed with 4401 and the reason when the token is missing or refused.
///         let Some(user) = auth.authenticate(&mut socket, &verifier).await else { return };
///         let _ = socket.send(Message::Text(format!("hello, {}", user.id).into())).await;
///         // Closed with 4401 `token_not_valid: Token is expired` when the token expires.
///         let expiry = Expiry::of(&verifier, &user);
///         while let Some(message) = recv_until(&mut socket, &expiry).await {
///             if socket.send(message).await.is_err() { break }
///         }
///     })
/// }
/// ```
#[derive(Debug, Clone)]
pub struct WebSocketAuth {
    found: Result<Option<String>, AuthError>,
    timeout: Duration,
    max_size: usize,
    any_type: bool,
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
                max_size: FIRST_MESSAGE_MAX_SIZE,
                any_type: false,
            };
        }
        WebSocketAuth {
            found: header_token(headers, header_name, header_types),
            timeout: FIRST_MESSAGE_TIMEOUT,
            max_size: FIRST_MESSAGE_MAX_SIZE,
            any_type: false,
        }
    }

    /// Accept a token of any type Tollgate issues ([`ANY_TOKEN_TYPE`]: access, refresh or
    /// sliding) instead of AUTH_TOKEN_CLASSES alone, as simplejwt's `UntypedToken` does in a
    /// Channels middleware. The signature, `exp` and the other claims are checked as always.
    /// A refresh token is long-lived and, verified here without asking Tollgate, stays accepted
    /// after a logout until its `exp`: prefer access tokens where clients have them.
    ///
    /// ```
    /// # use axum::extract::{ws::WebSocketUpgrade, State};
    /// # use axum::response::Response;
    /// # use tollgate_axum::{Verifier, ws::WebSocketAuth};
    /// async fn feed(ws: WebSocketUpgrade, auth: WebSocketAuth, State(verifier): State<Verifier>) -> Response {
    ///     let auth = auth.any_token_type();
    ///     auth.limit(ws).on_upgrade(move |mut socket| async move {
    ///         let Some(user) = auth.authenticate(&mut socket, &verifier).await else { return };
    ///         let _ = user.token_type; // access, refresh or sliding
    ///     })
    /// }
    /// ```
    pub fn any_token_type(self) -> WebSocketAuth {
        WebSocketAuth {
            any_type: true,
            ..self
        }
    }

    /// The largest first message (and frame) read when the token must come from it. Defaults
    /// to [`FIRST_MESSAGE_MAX_SIZE`].
    pub fn first_message_max_size(self, max_size: usize) -> WebSocketAuth {
        WebSocketAuth { max_size, ..self }
    }

    /// The upgrade with the limits of an unauthenticated socket, to call before
    /// `on_upgrade`. A socket whose request carries its token reads nothing before it is
    /// authenticated and keeps the upgrade's limits. One that must send its token in its first
    /// message reads at most the first-message size per frame and per message; a larger frame
    /// is refused from its header, before its payload is read. axum fixes a socket's limits at
    /// the handshake, so that socket keeps this limit once authenticated: clients that send
    /// larger messages pass their token in `?token=` or the header.
    pub fn limit(&self, upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
        match self.found {
            Ok(None) => upgrade
                .max_frame_size(self.max_size)
                .max_message_size(self.max_size),
            _ => upgrade,
        }
    }

    /// How long to wait for a first message carrying the token. Defaults to
    /// [`FIRST_MESSAGE_TIMEOUT`].
    pub fn first_message_timeout(self, timeout: Duration) -> WebSocketAuth {
        WebSocketAuth { timeout, ..self }
    }

    /// The token: from the request, or else the first text message (which must come within
    /// the first-message timeout). Does not close the socket (see [`close`]), except for a
    /// first message over the limit of [`WebSocketAuth::limit`], which is closed at once with
    /// [`CLOSE_TOO_BIG`].
    pub async fn token(self, socket: &mut WebSocket) -> Result<String, AuthError> {
        if let Some(token) = self.found? {
            return Ok(token);
        }
        let first = tokio::time::timeout(self.timeout, async {
            loop {
                match socket.recv().await {
                    Some(Ok(Message::Text(text))) => return Some(text.trim().to_owned()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Binary(_) | Message::Close(_))) | None => return None,
                    Some(Err(error)) => {
                        if too_big(&error) {
                            close_with(socket, CLOSE_TOO_BIG, "message too big".to_owned()).await;
                        }
                        return None;
                    }
                }
            }
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
        let any_type = self.any_type;
        let result = async {
            let token = self.token(socket).await?;
            user_of(verifier, &token, any_type).await
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

    /// The user of the connection's token, or `None` for a connection whose request carries
    /// no token, which continues as anonymous (as Django Channels' `AnonymousUser`): the
    /// handler decides what an anonymous socket may do. No first message is awaited, so the
    /// token comes in `?token=` or the header. A token that is sent and refused (expired,
    /// forged, of the wrong type), or a malformed header, still closes the socket with
    /// [`CLOSE_UNAUTHENTICATED`] and the reason, returned here: a client that meant to
    /// authenticate learns why it did not, instead of silently losing its rights.
    ///
    /// ```
    /// use axum::extract::{ws::{Message, WebSocketUpgrade}, State};
    /// use axum::response::Response;
    /// use tollgate_axum::{Verifier, ws::WebSocketAuth};
    ///
    /// async fn board(ws: WebSocketUpgrade, auth: WebSocketAuth, State(verifier): State<Verifier>) -> Response {
    ///     auth.limit(ws).on_upgrade(move |mut socket| async move {
    ///         let Ok(user) = auth.authenticate_optional(&mut socket, &verifier).await else { return };
    ///         let greeting = match &user {
    ///             Some(user) => format!("hello, {}", user.username),
    ///             None => "hello, stranger: you may read".to_owned(),
    ///         };
    ///         let _ = socket.send(Message::Text(greeting.into())).await;
    ///     })
    /// }
    /// ```
    pub async fn authenticate_optional(
        self,
        socket: &mut WebSocket,
        verifier: &Verifier,
    ) -> Result<Option<TokenUser>, AuthError> {
        let result = match &self.found {
            Ok(None) => return Ok(None),
            Ok(Some(token)) => user_of(verifier, token, self.any_type).await,
            Err(error) => Err(error.clone()),
        };
        match result {
            Ok(user) => Ok(Some(user)),
            Err(error) => {
                close(socket, &error).await;
                Err(error)
            }
        }
    }
}

/// The user of a raw token, of AUTH_TOKEN_CLASSES or, with `any_type`, of any type.
async fn user_of(verifier: &Verifier, token: &str, any_type: bool) -> Result<TokenUser, AuthError> {
    let verified = if any_type {
        verifier
            .verify_as(token.as_bytes(), &crate::ANY_TOKEN_TYPE)
            .await?
    } else {
        verifier.verify(token.as_bytes()).await?
    };
    TokenUser::from_token(verifier, verified)
}

/// Whether a read failed because a frame or message was over the socket's limit.
fn too_big(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|inner| inner.downcast_ref::<tungstenite::Error>())
        .is_some_and(|inner| matches!(inner, tungstenite::Error::Capacity(_)))
}

/// When an authenticated socket must close because its token expired: at its `exp` plus
/// LEEWAY, the moment a request with it would be refused. A token without `exp` never
/// expires.
///
/// ```
/// use std::time::Duration;
/// use tollgate_axum::ws::Expiry;
/// use tollgate_core::{Claims, TokenType};
///
/// let mut claims = Claims::default();
/// claims.insert("exp", tollgate_core::unix_now() - 5);
/// let expiry = Expiry::from_claims(&claims, TokenType::Access, Duration::ZERO);
/// assert_eq!(expiry.error().reason(), "token_not_valid: Token is expired");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Expiry {
    at: Option<Instant>,
    token_type: TokenType,
}

impl Expiry {
    /// The expiry of an authenticated user's token, with the verifier's LEEWAY.
    pub fn of(verifier: &Verifier, user: &TokenUser) -> Expiry {
        Expiry::from_claims(&user.claims, user.token_type, verifier.leeway())
    }

    /// The expiry of a token with these claims, accepted as `token_type`.
    pub fn from_claims(claims: &Claims, token_type: TokenType, leeway: Duration) -> Expiry {
        let at = claims.timestamp("exp").map(|exp| {
            let end = u64::try_from(exp)
                .ok()
                .and_then(|exp| UNIX_EPOCH.checked_add(Duration::from_secs(exp)))
                .and_then(|end| end.checked_add(leeway));
            // Past, or beyond what a clock can hold: now, or far enough never to matter.
            let left = match end {
                Some(end) => end
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
                None if exp < 0 => Duration::ZERO,
                None => Duration::from_secs(100 * 365 * 24 * 3600),
            };
            let now = Instant::now();
            now.checked_add(left)
                .unwrap_or(now + Duration::from_secs(365 * 24 * 3600))
        });
        Expiry { at, token_type }
    }

    /// Resolves when the token expires; never, for a token without `exp`.
    pub async fn reached(&self) {
        match self.at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// The refusal an expired token gets: its reason is `token_not_valid: Token is expired`.
    pub fn error(&self) -> AuthError {
        AuthError::NoValidTokenType(vec![ClassRefusal {
            token_type: self.token_type,
            error: TokenError::Expired,
        }])
    }
}

/// The next message of an authenticated socket, or `None` once it is over: closed by the peer,
/// failed, or closed here with [`CLOSE_UNAUTHENTICATED`] and `token_not_valid: Token is
/// expired` when `expiry` is reached. Pings are answered by axum and skipped.
pub async fn recv_until(socket: &mut WebSocket, expiry: &Expiry) -> Option<Message> {
    loop {
        tokio::select! {
            received = socket.recv() => match received {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return Some(message),
            },
            () = expiry.reached() => {
                close(socket, &expiry.error()).await;
                return None;
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
