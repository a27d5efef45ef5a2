//! The example service (`examples/protected-service`) and a real `tollgate serve`, as two
//! processes: the service verifies Tollgate's tokens with nothing but the JWKS URL, before and
//! after `tollgate keys rotate`.
//!
//! The service's binary lands next to `tollgate`'s: `cargo test --workspace` builds it for the
//! service's own tests, `cargo build -p protected-service` alone.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::binary::{create_user, log_in, run, text, tollgate, Served, BINARY};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

const SEALING: &str = "5a4b3c2d1e0f5a4b3c2d1e0f5a4b3c2d1e0f5a4b3c2d1e0f5a4b3c2d1e0f5a4b";
const PASSWORD: &str = "correct horse battery";

fn service_binary() -> PathBuf {
    let path = Path::new(BINARY)
        .with_file_name(format!("protected-service{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p protected-service` (cargo test \
         --workspace does)",
        path.display()
    );
    path
}

/// The example service on a free port, killed when dropped.
struct Service {
    _child: tokio::process::Child,
    base: String,
}

impl Service {
    async fn start(jwks_url: &str) -> Service {
        let mut child = tokio::process::Command::new(service_binary())
            .env("JWKS_URL", jwks_url)
            .env("BIND", "127.0.0.1:0")
            .env("JWKS_MIN_INTERVAL", "1")
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
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Service {
            _child: child,
            base,
        }
    }

    async fn hello(&self, authorization: Option<String>) -> (StatusCode, Option<String>, Value) {
        let mut request = reqwest::Client::new().get(format!("{}/hello", self.base));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (
            status,
            challenge,
            response.json().await.unwrap_or(Value::Null),
        )
    }
}

fn command(dir: &Path, (private, public): &(String, String), args: &[&str]) -> Command {
    let mut command = tollgate(dir, args);
    command
        .env("TOLLGATE_ALGORITHM", "ES256")
        .env("TOLLGATE_SIGNING_KEY", private)
        .env("TOLLGATE_VERIFYING_KEY", public)
        .env("TOLLGATE_KEYS_ENCRYPTION_KEY", SEALING)
        .env("TOLLGATE_KEYS_RELOAD_INTERVAL", "1s");
    command
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("a kid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_service_accepts_tollgate_tokens_through_a_key_rotation() {
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
    create_user(command(dir.path(), &pair, &[]), "ann", PASSWORD);

    let served = Served::start(command(dir.path(), &pair, &[])).await;
    let service = Service::start(&format!("{}/.well-known/jwks.json", served.base)).await;

    // Before any rotation.
    let (before, refresh) = log_in(&served.base, "ann", PASSWORD).await;
    let (status, _, body) = service.hello(Some(format!("Bearer {before}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"user_id": "1", "message": "hello, user 1"}));
    let (status, challenge, body) = service.hello(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"api\""));
    assert_eq!(
        body,
        json!({"detail": "Authentication credentials were not provided."})
    );
    let (status, _, body) = service.hello(Some(format!("Bearer {refresh}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["messages"][0]["message"], "Token has wrong type");

    // Rotate; the server picks the new key up within KEYS_RELOAD_INTERVAL.
    let rotated = run(command(dir.path(), &pair, &["keys", "rotate"]));
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    let new_kid = text(&rotated.stdout).trim().to_owned();
    assert_ne!(new_kid, kid(&before));
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let (access, _) = log_in(&served.base, "ann", PASSWORD).await;
        if kid(&access) == new_kid {
            break access;
        }
        assert!(
            Instant::now() < deadline,
            "the server never signed with {new_kid}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The service has never seen the new key: the unknown kid makes it fetch the set again
    // (at most once per JWKS_MIN_INTERVAL, 1 second here, so it may take one more try).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = service.hello(Some(format!("Bearer {after}"))).await;
        if status == StatusCode::OK {
            assert_eq!(body["user_id"], "1");
            break;
        }
        assert_eq!(body["messages"][0]["message"], "Token is invalid");
        assert!(
            Instant::now() < deadline,
            "the new key was never accepted: {body}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The token signed before the rotation is still accepted: the retired key is published
    // until its tokens have expired.
    let (status, _, body) = service.hello(Some(format!("Bearer {before}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The service's WebSocket takes both tokens too, and closes on a refresh token.
    let ws = service.base.replacen("http", "ws", 1);
    for token in [&before, &after] {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(format!("{ws}/ws/echo?token={token}"))
                .await
                .expect("handshake");
        match socket.next().await {
            Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), "hello, user 1"),
            other => panic!("expected the greeting, got {other:?}"),
        }
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{ws}/ws/echo?token={refresh}"))
        .await
        .expect("handshake");
    match socket.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(
            (u16::from(frame.code), frame.reason.as_str()),
            (4401, "token_not_valid: Token has wrong type")
        ),
        other => panic!("expected a close frame, got {other:?}"),
    }
}
