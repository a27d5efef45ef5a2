//! `GET /ws/echo/` with a real WebSocket client: the token from the query string, the header or
//! the first message; refused connections closed with 4401 and the reason; open sockets closed
//! when their token is revoked or expires, or their user changes, on every instance (#19).

use crate::common;

use std::time::{Duration, Instant};

use common::binary::{create_user, log_in, text, tollgate, Served};
use common::{claims, Backend, TestDatabase, TestServer, TEST_KEY};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "correct horse battery";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &TestServer, query: &str, authorization: Option<&str>) -> Socket {
    let url = format!("{}/ws/echo/{query}", server.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("request");
    if let Some(value) = authorization {
        request
            .headers_mut()
            .insert("authorization", value.parse().expect("header value"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .expect("handshake")
        .0
}

async fn next_text(socket: &mut Socket) -> String {
    match socket.next().await {
        Some(Ok(Message::Text(text))) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

async fn closed(socket: &mut Socket) -> (u16, String) {
    match socket.next().await {
        Some(Ok(Message::Close(Some(frame)))) => (u16::from(frame.code), frame.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

on_both_backends! {
    async fn a_valid_access_token_is_greeted_by_name_from_query_header_or_first_message(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        server.create_user("ann", PASSWORD).await;
        let (_, access) = server.obtain_pair("ann", PASSWORD).await;

        let mut by_query = connect(&server, &format!("?token={access}"), None).await;
        assert_eq!(next_text(&mut by_query).await, "hello, ann");
        by_query.send(Message::text("ping")).await.expect("send");
        assert_eq!(next_text(&mut by_query).await, "ping");
        by_query.send(Message::binary(vec![1u8, 2, 3])).await.expect("send");
        assert_eq!(
            by_query.next().await.expect("a message").expect("ok"),
            Message::binary(vec![1u8, 2, 3])
        );

        let mut by_header = connect(&server, "", Some(&format!("Bearer {access}"))).await;
        assert_eq!(next_text(&mut by_header).await, "hello, ann");

        let mut by_message = connect(&server, "", None).await;
        by_message.send(Message::text(access.clone())).await.expect("send");
        assert_eq!(next_text(&mut by_message).await, "hello, ann");
        by_message.send(Message::text("again")).await.expect("send");
        assert_eq!(next_text(&mut by_message).await, "again");
        server.stop().await;
    }
}

#[tokio::test]
async fn no_expired_or_refresh_token_is_closed_with_4401_and_the_reason() {
    let server = TestServer::start().await;
    let user = server.create_user("ann", PASSWORD).await;
    let (refresh, _) = server.obtain_pair("ann", PASSWORD).await;
    let expired = server.sign(claims("access", &user.id.to_string(), -10));
    for (token, reason) in [
        (expired, "token_not_valid: Token is expired"),
        (refresh, "token_not_valid: Token has wrong type"),
        (
            "not-a-token".to_owned(),
            "token_not_valid: Token is invalid",
        ),
    ] {
        let mut by_query = connect(&server, &format!("?token={token}"), None).await;
        assert_eq!(closed(&mut by_query).await, (4401, reason.to_owned()));
        let mut by_header = connect(&server, "", Some(&format!("Bearer {token}"))).await;
        assert_eq!(closed(&mut by_header).await, (4401, reason.to_owned()));
        let mut by_message = connect(&server, "", None).await;
        by_message.send(Message::text(token)).await.expect("send");
        assert_eq!(closed(&mut by_message).await, (4401, reason.to_owned()));
    }
    let not_provided = (
        4401,
        "not_authenticated: Authentication credentials were not provided.".to_owned(),
    );
    // An empty first message carries no token.
    let mut empty = connect(&server, "", None).await;
    empty.send(Message::text("")).await.expect("send");
    assert_eq!(closed(&mut empty).await, not_provided);
    // Nothing at all: closed when the first-message wait (10 seconds) is over.
    let mut silent = connect(&server, "", None).await;
    assert_eq!(closed(&mut silent).await, not_provided);
    server.stop().await;
}

#[tokio::test]
async fn a_deactivated_user_is_closed_with_the_reason() {
    let server = TestServer::start().await;
    let user = server.create_user("ann", PASSWORD).await;
    let access = server.sign(claims("access", &user.id.to_string(), 300));
    server
        .store()
        .set_active(user.id, false)
        .await
        .expect("deactivated");
    let mut socket = connect(&server, &format!("?token={access}"), None).await;
    assert_eq!(
        closed(&mut socket).await,
        (4401, "user_inactive: User is inactive".to_owned())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_plain_request_gets_426_with_a_json_body() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/ws/echo/", None).await;
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(
        body,
        json!({"detail": "This endpoint speaks WebSocket: send an upgrade request."})
    );
    server.stop().await;
}

/// How long a revocation may take to close an open socket: the other instance hears of it
/// within about a second (SQLite is read once a second, PostgreSQL notifies), and a socket
/// checks every 250 ms; the rest is slack for a loaded machine.
const CLOSE_WITHIN: Duration = Duration::from_secs(4);

/// Two `tollgate serve` processes on one database (#19): a SQLite file in a shared directory,
/// or a fresh PostgreSQL database. None (skipped, with a message) without PostgreSQL outside CI.
struct Instances {
    database: Option<TestDatabase>,
    dir: tempfile::TempDir,
    a: Served,
    b: Served,
}

impl Instances {
    async fn start(backend: Backend, settings: &[(&str, &str)]) -> Option<Instances> {
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres if common::postgres_available().await => {
                Some(TestDatabase::create(backend).await)
            }
            Backend::Postgres => return None,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let command = |database: &Option<TestDatabase>| {
            let mut command = tollgate(dir.path(), &[]);
            command.env("TOLLGATE_SIGNING_KEY", TEST_KEY);
            if let Some(database) = database {
                command.env("DATABASE_URL", database.url());
            }
            for (name, value) in settings {
                command.env(format!("TOLLGATE_{name}"), value);
            }
            command
        };
        create_user(command(&database), "ann", PASSWORD);
        let a = Served::start(command(&database)).await;
        let b = Served::start(command(&database)).await;
        Some(Instances {
            dir,
            a,
            b,
            database,
        })
    }

    /// A `tollgate` command on the instances' database.
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = tollgate(self.dir.path(), args);
        command.env("TOLLGATE_SIGNING_KEY", TEST_KEY);
        if let Some(database) = &self.database {
            command.env("DATABASE_URL", database.url());
        }
        command
    }

    fn database_url(&self) -> String {
        match &self.database {
            Some(database) => database.url(),
            None => format!("sqlite://{}/tollgate.db", self.dir.path().display()),
        }
    }
}

/// A socket opened on `base` with `access` in the query string, greeted and echoing.
async fn echoing(base: &str, access: &str) -> Socket {
    let url = format!("{}/ws/echo/?token={access}", base.replacen("http", "ws", 1));
    let mut socket = tokio_tungstenite::connect_async(url)
        .await
        .expect("handshake")
        .0;
    assert_eq!(next_text(&mut socket).await, "hello, ann");
    socket
        .send(Message::text("still here"))
        .await
        .expect("send");
    assert_eq!(next_text(&mut socket).await, "still here");
    socket
}

/// Waits for the close frame, which must come within `limit`; returns it with the time taken.
async fn closed_within(socket: &mut Socket, limit: Duration) -> ((u16, String), Duration) {
    let started = Instant::now();
    let frame = tokio::time::timeout(limit, closed(socket))
        .await
        .unwrap_or_else(|_| panic!("the socket was still open after {limit:?}"));
    (frame, started.elapsed())
}

async fn http(method: Method, base: &str, path: &str, access: &str, body: Value) -> StatusCode {
    reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(access)
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("request sent")
        .status()
}

fn blacklisted() -> (u16, String) {
    (4401, "token_not_valid: Token is blacklisted".to_owned())
}

on_both_backends! {
    /// Logging out everywhere through one instance closes the user's sockets on the other.
    async fn logout_everywhere_on_another_instance_closes_open_sockets(backend) {
        let Some(instances) = Instances::start(backend, &[]).await else { return };
        let (access, _) = log_in(&instances.b.base, "ann", PASSWORD).await;
        let mut socket = echoing(&instances.b.base, &access).await;
        let (other, _) = log_in(&instances.a.base, "ann", PASSWORD).await;
        let status = http(Method::POST, &instances.a.base, "/api/token/blacklist/all/", &other, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (frame, took) = closed_within(&mut socket, CLOSE_WITHIN).await;
        assert_eq!(frame, blacklisted());
        eprintln!("closed {took:?} after the logout");
    }

    /// A password change through one instance closes the user's sockets on the other.
    async fn password_change_on_another_instance_closes_open_sockets(backend) {
        let Some(instances) = Instances::start(backend, &[]).await else { return };
        let (access, _) = log_in(&instances.b.base, "ann", PASSWORD).await;
        let mut socket = echoing(&instances.b.base, &access).await;
        let (other, _) = log_in(&instances.a.base, "ann", PASSWORD).await;
        let body = json!({"old_password": PASSWORD, "new_password": "n3w-horse-battery"});
        let status = http(Method::POST, &instances.a.base, "/api/user/password/", &other, body).await;
        assert_eq!(status, StatusCode::OK);
        let (frame, took) = closed_within(&mut socket, CLOSE_WITHIN).await;
        assert_eq!(frame, blacklisted());
        eprintln!("closed {took:?} after the password change");
    }

    /// With ACCESS_TOKEN_REVOCATION off, CHECK_REVOKE_TOKEN still closes the sockets of a
    /// password changed by the command line.
    async fn password_changed_by_the_command_line_closes_open_sockets(backend) {
        let settings = [("ACCESS_TOKEN_REVOCATION", "false"), ("CHECK_REVOKE_TOKEN", "true")];
        let Some(instances) = Instances::start(backend, &settings).await else { return };
        let (access, _) = log_in(&instances.a.base, "ann", PASSWORD).await;
        let mut socket = echoing(&instances.a.base, &access).await;
        let mut command = instances.command(&["changepassword", "ann", "--no-input"]);
        command.env("TOLLGATE_NEW_PASSWORD", "n3w-horse-battery");
        let changed = common::binary::run(command);
        assert!(changed.status.success(), "{}", text(&changed.stderr));
        let (frame, took) = closed_within(&mut socket, CLOSE_WITHIN).await;
        assert_eq!(frame, (4401, "password_changed: The user's password has been changed.".to_owned()));
        eprintln!("closed {took:?} after the password change");
    }

    /// Deactivating the user with the command line closes their sockets on every instance.
    async fn deactivation_by_the_command_line_closes_open_sockets(backend) {
        let Some(instances) = Instances::start(backend, &[]).await else { return };
        let (access, _) = log_in(&instances.a.base, "ann", PASSWORD).await;
        let mut on_a = echoing(&instances.a.base, &access).await;
        let mut on_b = echoing(&instances.b.base, &access).await;
        let deactivated = common::binary::run(instances.command(&["deactivate", "ann"]));
        assert!(deactivated.status.success(), "{}", text(&deactivated.stderr));
        for socket in [&mut on_a, &mut on_b] {
            let (frame, took) = closed_within(socket, CLOSE_WITHIN).await;
            assert_eq!(frame, (4401, "user_inactive: User is inactive".to_owned()));
            eprintln!("closed {took:?} after the deactivation");
        }
    }

    /// Deleting the user (here straight in the database, as an admin tool would) closes
    /// their sockets.
    async fn deletion_closes_open_sockets(backend) {
        let Some(instances) = Instances::start(backend, &[]).await else { return };
        let (access, _) = log_in(&instances.a.base, "ann", PASSWORD).await;
        let mut socket = echoing(&instances.a.base, &access).await;
        let store = tollgate_store::Store::connect(&instances.database_url(), tollgate_store::PoolConfig::default())
            .await
            .expect("database opens");
        let user = store
            .find_user(tollgate_store::UserField::Username, "ann")
            .await
            .expect("query")
            .expect("ann exists");
        assert!(store.delete_user(user.id).await.expect("deleted"));
        store.close().await;
        let (frame, took) = closed_within(&mut socket, CLOSE_WITHIN).await;
        assert_eq!(frame, (4401, "user_not_found: User not found".to_owned()));
        eprintln!("closed {took:?} after the deletion");
    }
}

/// A socket is closed when its token expires, as a request with it would be refused.
#[tokio::test]
async fn an_open_socket_is_closed_when_its_token_expires() {
    let server = TestServer::start_with(|s| s.access_token_lifetime = Duration::from_secs(2)).await;
    server.create_user("ann", PASSWORD).await;
    let (_, access) = server.obtain_pair("ann", PASSWORD).await;
    let mut socket = echoing(&server.base, &access).await;
    let exp = common::payload(&access)["exp"].as_i64().expect("exp");
    let (frame, _) = closed_within(&mut socket, Duration::from_secs(10)).await;
    assert_eq!(
        frame,
        (4401, "token_not_valid: Token is expired".to_owned())
    );
    assert!(tollgate_core::unix_now() >= exp, "closed before exp");
    server.stop().await;
}

/// Before it authenticates, a socket reads no more than a token's worth: a frame announcing
/// 1 MiB is refused from its header, closed with 1009 at once rather than waited for (the
/// payload is never sent), and a token in a small first message still works.
#[tokio::test]
async fn a_large_first_frame_is_refused_unread_before_authentication() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    server.create_user("ann", PASSWORD).await;
    let (_, access) = server.obtain_pair("ann", PASSWORD).await;

    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connects");
    let handshake = format!(
        "GET /ws/echo/ HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake sent");
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream
            .read_exact(&mut byte)
            .await
            .expect("handshake answered");
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    // A masked text frame header announcing 1 MiB, and a few bytes of it: a server that buffers
    // would wait for the rest until the first-message timeout (10 s).
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(1u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[b'x'; 64]);
    stream.write_all(&frame).await.expect("frame sent");
    let mut close = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut close))
        .await
        .expect("closed before the first-message timeout")
        .expect("a close frame");
    assert_eq!(close[0], 0x88, "a close frame");
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1009);

    let mut small = connect(&server, "", None).await;
    small.send(Message::text(access)).await.expect("send");
    assert_eq!(next_text(&mut small).await, "hello, ann");
    server.stop().await;
}
