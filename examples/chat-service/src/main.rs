//! A chat over WebSocket whose users are Tollgate's, as a Django Channels consumer behind a
//! simplejwt middleware serves one: a socket joins the room named in its path, a message a user
//! sends is broadcast to everyone in the room with the sender's username, and a socket without
//! a token may read but not post. The service never calls Tollgate: it verifies tokens with the
//! public keys of Tollgate's JWKS URL.
//!
//! Configuration, from the environment:
//! - `JWKS_URL` (required): e.g. `http://127.0.0.1:8000/.well-known/jwks.json`.
//! - `BIND`: the address to listen on; defaults to `127.0.0.1:3001`. Port 0 picks a free port.
//!
//! Tollgate must write the username into its tokens (`TOKEN_USER_CLAIMS = ["username"]`);
//! without it a user is shown as `user <id>`.
//!
//! It prints `listening on http://ADDRESS` once it accepts connections.
//!
//! `GET /ws/chat/{room}` (WebSocket): the token in `?token=` or the authorization header, of
//! any type (access, refresh or sliding), or none to read anonymously. The service sends JSON:
//! `{"type": "joined", "room", "username"}` (username null when anonymous), then
//! `{"type": "message", "message", "username"}` for each message posted in the room, and
//! `{"type": "error", "error"}` to a socket whose message was refused. A client posts
//! `{"message": "text"}`. A refused token closes the socket with 4401 and the reason; an
//! authenticated socket closes the same way when its token expires.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRef, Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tollgate_axum::ws::{close, Expiry, WebSocketAuth};
use tollgate_axum::{JwksClient, TokenUser, Verifier};
use tollgate_core::Settings;

/// The largest message a socket may send: room for chat lines, not for floods.
const MAX_MESSAGE: usize = 16 * 1024;
/// How many messages a slow reader may fall behind before it misses some.
const ROOM_BACKLOG: usize = 64;

/// The rooms that have someone in them, each a broadcast channel of JSON messages.
#[derive(Clone, Default)]
struct Rooms(Arc<Mutex<HashMap<String, broadcast::Sender<String>>>>);

impl Rooms {
    fn join(&self, room: &str) -> (broadcast::Sender<String>, broadcast::Receiver<String>) {
        let mut rooms = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let sender = rooms
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(ROOM_BACKLOG).0)
            .clone();
        let receiver = sender.subscribe();
        (sender, receiver)
    }

    /// Forgets a room once its last reader has left.
    fn leave(&self, room: &str) {
        let mut rooms = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if rooms
            .get(room)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            rooms.remove(room);
        }
    }
}

#[derive(Clone)]
struct AppState {
    verifier: Verifier,
    rooms: Rooms,
}

// What WebSocketAuth needs of the state (written out: axum's derive needs its `macros`
// feature, which nothing else here uses).
impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Verifier {
        state.verifier.clone()
    }
}

async fn chat(
    ws: WebSocketUpgrade,
    auth: WebSocketAuth,
    Path(room): Path<String>,
    State(state): State<AppState>,
) -> Response {
    // A Channels middleware built on simplejwt's UntypedToken takes any token type.
    let auth = auth.any_token_type();
    let ws = ws.max_message_size(MAX_MESSAGE).max_frame_size(MAX_MESSAGE);
    auth.limit(ws).on_upgrade(move |mut socket| async move {
        let Ok(user) = auth
            .authenticate_optional(&mut socket, &state.verifier)
            .await
        else {
            return;
        };
        let (room_sender, receiver) = state.rooms.join(&room);
        converse(socket, &state.verifier, &room, user, room_sender, receiver).await;
        state.rooms.leave(&room);
    })
}

/// What the user is called in the room.
fn display_name(user: &TokenUser) -> String {
    if user.username.is_empty() {
        format!("user {}", user.id)
    } else {
        user.username.clone()
    }
}

async fn converse(
    mut socket: WebSocket,
    verifier: &Verifier,
    room: &str,
    user: Option<TokenUser>,
    room_sender: broadcast::Sender<String>,
    mut receiver: broadcast::Receiver<String>,
) {
    let name = user.as_ref().map(display_name);
    let joined = json!({ "type": "joined", "room": room, "username": name });
    if send(&mut socket, &joined).await.is_err() {
        return;
    }
    // An anonymous socket has no token to expire.
    let expiry = user.as_ref().map(|user| Expiry::of(verifier, user));
    loop {
        tokio::select! {
            received = socket.recv() => {
                let text = match received {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Binary(_))) => {
                        if refuse(&mut socket, "Send text: {\"message\": \"...\"}.").await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                };
                let Some(name) = &name else {
                    if refuse(&mut socket, "Anonymous users may not post.").await.is_err() {
                        return;
                    }
                    continue;
                };
                let posted = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|body| body.get("message")?.as_str().map(str::to_owned));
                let Some(message) = posted else {
                    if refuse(&mut socket, "Send {\"message\": \"...\"}.").await.is_err() {
                        return;
                    }
                    continue;
                };
                let out = json!({ "type": "message", "message": message, "username": name });
                // Everyone in the room hears it, the sender too; with no one left it is lost.
                let _ = room_sender.send(out.to_string());
            }
            heard = receiver.recv() => match heard {
                Ok(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                // A reader too slow for the room misses what it could not keep.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = async {
                match &expiry {
                    Some(expiry) => expiry.reached().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(expiry) = &expiry {
                    close(&mut socket, &expiry.error()).await;
                }
                return;
            }
        }
    }
}

async fn send(socket: &mut WebSocket, value: &Value) -> Result<(), axum::Error> {
    socket.send(Message::Text(value.to_string().into())).await
}

async fn refuse(socket: &mut WebSocket, error: &str) -> Result<(), axum::Error> {
    send(socket, &json!({ "type": "error", "error": error })).await
}

fn app(verifier: Verifier) -> Router {
    Router::new()
        .route("/ws/chat/{room}", get(chat))
        .with_state(AppState {
            verifier,
            rooms: Rooms::default(),
        })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn verifier() -> Result<Verifier, String> {
    let url = env("JWKS_URL").ok_or("JWKS_URL is not set")?;
    let jwks = JwksClient::new(url).map_err(|err| err.to_string())?;
    Verifier::with_jwks(&Settings::default(), jwks).map_err(|err| err.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let verifier = match verifier() {
        Ok(verifier) => verifier,
        Err(message) => {
            eprintln!("chat-service: {message}");
            return ExitCode::from(2);
        }
    };
    let bind = env("BIND").unwrap_or_else(|| "127.0.0.1:3001".to_owned());
    let listener = match tokio::net::TcpListener::bind(&bind).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("chat-service: cannot listen on {bind}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(address) => println!("listening on http://{address}"),
        Err(err) => eprintln!("chat-service: {err}"),
    }
    if let Err(err) = axum::serve(listener, app(verifier)).await {
        eprintln!("chat-service: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
