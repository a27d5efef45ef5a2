//! The chat example (`examples/chat-service`) and a real `tollgate serve`, as two processes:
//! sockets join rooms with Tollgate's tokens of any type, or none to read anonymously; a
//! message is broadcast to its room with the sender's username; anonymous sockets may not post.
//!
//! The service's binary lands next to `tollgate`'s: `cargo test --workspace` builds it for the
//! service's own test, `cargo build -p chat-service` alone.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::binary::{create_user, log_in, run, text, tollgate, Served, BINARY};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "correct horse battery";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn service_binary() -> PathBuf {
    let path =
        Path::new(BINARY).with_file_name(format!("chat-service{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p chat-service` (cargo test --workspace \
         does)",
        path.display()
    );
    path
}

/// The chat service on a free port, killed when dropped: (process, `ws://host:port`).
async fn start_chat(jwks_url: &str) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(service_binary())
        .env("JWKS_URL", jwks_url)
        .env("BIND", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the service starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the service announces its address in time")
        .expect("stdout readable")
        .expect("a line");
    let base = line
        .strip_prefix("listening on http")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, format!("ws{base}"))
}

async fn join(base: &str, room: &str, token: Option<&str>) -> Socket {
    let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
    tokio_tungstenite::connect_async(format!("{base}/ws/chat/{room}{query}"))
        .await
        .expect("handshake")
        .0
}

async fn next_json(socket: &mut Socket) -> Value {
    let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a message in time");
    match next {
        Some(Ok(Message::Text(text))) => serde_json::from_str(text.as_str()).expect("JSON"),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Nothing arrives within half a second.
async fn silent(socket: &mut Socket) {
    let next = tokio::time::timeout(Duration::from_millis(500), socket.next()).await;
    assert!(next.is_err(), "unexpected {next:?}");
}

async fn post(socket: &mut Socket, body: Value) {
    socket
        .send(Message::text(body.to_string()))
        .await
        .expect("sent");
}

fn command(dir: &Path, (private, public): &(String, String)) -> Command {
    let mut command = tollgate(dir, &[]);
    command
        .env("TOLLGATE_ALGORITHM", "ES256")
        .env("TOLLGATE_SIGNING_KEY", private)
        .env("TOLLGATE_VERIFYING_KEY", public)
        .env("TOLLGATE_TOKEN_USER_CLAIMS", "username")
        .env("TOLLGATE_SLIDING_TOKEN_LIFETIME", "5m");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_example_broadcasts_users_messages_to_their_room_and_lets_anonymous_users_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    let made = run(tollgate(
        dir.path(),
        &[
            "keygen",
            "--alg",
            "ES256",
            "--out",
            keys.to_str().expect("utf-8"),
        ],
    ));
    assert!(made.status.success(), "{}", text(&made.stderr));
    let read = |name: &str| std::fs::read_to_string(keys.join(name)).expect("key file");
    let pair = (read("signing_key.pem"), read("verifying_key.pem"));
    create_user(command(dir.path(), &pair), "ann", PASSWORD);
    create_user(command(dir.path(), &pair), "bob", PASSWORD);
    let served = Served::start(command(dir.path(), &pair)).await;
    let (_chat, base) = start_chat(&format!("{}/.well-known/jwks.json", served.base)).await;

    let (ann_access, _) = log_in(&served.base, "ann", PASSWORD).await;
    let (bob_access, bob_refresh) = log_in(&served.base, "bob", PASSWORD).await;
    let sliding: Value = reqwest::Client::new()
        .post(format!("{}/api/token/sliding/", served.base))
        .json(&json!({"username": "ann", "password": PASSWORD}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let ann_sliding = common::token_field(&sliding, "token");

    // Any token type joins: an access token, a refresh token, a sliding token.
    let mut ann = join(&base, "lobby", Some(&ann_access)).await;
    assert_eq!(
        next_json(&mut ann).await,
        json!({"type": "joined", "room": "lobby", "username": "ann"})
    );
    let mut bob = join(&base, "lobby", Some(&bob_refresh)).await;
    assert_eq!(next_json(&mut bob).await["username"], "bob");
    let mut ann_elsewhere = join(&base, "kitchen", Some(&ann_sliding)).await;
    assert_eq!(
        next_json(&mut ann_elsewhere).await,
        json!({"type": "joined", "room": "kitchen", "username": "ann"})
    );
    let mut reader = join(&base, "lobby", None).await;
    assert_eq!(
        next_json(&mut reader).await,
        json!({"type": "joined", "room": "lobby", "username": null})
    );

    // A user's message reaches everyone in the room, the sender and the anonymous reader too,
    // with the sender's username; the other room hears nothing.
    post(&mut ann, json!({"message": "hello, lobby"})).await;
    let heard = json!({"type": "message", "message": "hello, lobby", "username": "ann"});
    for socket in [&mut ann, &mut bob, &mut reader] {
        assert_eq!(next_json(socket).await, heard);
    }
    silent(&mut ann_elsewhere).await;

    // The anonymous reader may not post; nobody else hears the attempt.
    post(&mut reader, json!({"message": "let me in"})).await;
    assert_eq!(
        next_json(&mut reader).await,
        json!({"type": "error", "error": "Anonymous users may not post."})
    );
    silent(&mut bob).await;
    // A user's malformed message is refused to them alone.
    post(&mut bob, json!({"text": "hi"})).await;
    assert_eq!(next_json(&mut bob).await["type"], "error");
    silent(&mut ann).await;

    // A refused token is not read as anonymous: the socket closes with the reason.
    let forged = format!("{}x", bob_access);
    let mut refused = join(&base, "lobby", Some(&forged)).await;
    match refused.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(
            (u16::from(frame.code), frame.reason.as_str()),
            (4401, "token_not_valid: Token is invalid")
        ),
        other => panic!("expected a close frame, got {other:?}"),
    }
}
