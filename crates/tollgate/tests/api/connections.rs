//! Holding connections open (#19): half-sent requests and idle kept-alive connections are
//! closed after their timeouts, one address cannot take every place, the total is capped, and
//! stalled sockets past the open-file limit do not starve a client. Also: the SQLite database
//! and its journal files are readable by their owner only.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::binary::{tollgate, Served};
use common::TestServer;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long a test waits for something that should happen within a second or two: long, so
/// that a loaded machine does not fail it.
const PATIENCE: Duration = Duration::from_secs(30);

fn address(server: &TestServer) -> SocketAddr {
    server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("the server's address")
}

/// A connection to `server` from the loopback address `from` (Linux answers on all of
/// 127.0.0.0/8), so that a test can play two clients.
async fn connect_from(from: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("binds a loopback address");
    socket.connect(server).await.expect("connects")
}

/// A connection that sent half a request line and nothing more.
async fn stalled(from: [u8; 4], server: SocketAddr) -> TcpStream {
    let mut stream = connect_from(from, server).await;
    stream.write_all(b"GET /heal").await.expect("writes");
    stream
}

/// Whether the server closes `stream` (end of file or reset) within `within`; whatever it
/// sends before is read and dropped.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Sends `GET /healthz` on `stream` and reads the whole answer: its status line.
async fn healthz_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tollgate\r\n\r\n")
        .await
        .expect("request written");
    read_response(stream).await
}

/// Reads one response (headers and a `Content-Length` body): its status line.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return head.lines().next().unwrap_or_default().to_owned();
            }
        }
        let read = stream.read(&mut buf).await.expect("reads the response");
        assert!(read > 0, "the connection closed before the whole response");
        received.extend_from_slice(&buf[..read]);
    }
}

/// GET /healthz on a new connection from `from`, retried until answered within PATIENCE (a
/// place given back is seen by the server a moment after the client closes).
async fn healthz_eventually(from: [u8; 4], server: SocketAddr) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut stream = connect_from(from, server).await;
        let answer = tokio::time::timeout(Duration::from_secs(5), async {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: tollgate\r\n\r\n")
                .await
                .ok()?;
            let mut buf = [0u8; 1024];
            let read = stream.read(&mut buf).await.ok()?;
            (read > 0).then(|| String::from_utf8_lossy(&buf[..read]).into_owned())
        })
        .await;
        if let Ok(Some(answer)) = answer {
            return answer.lines().next().unwrap_or_default().to_owned();
        }
        assert!(Instant::now() < deadline, "no answer within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const OK: &str = "HTTP/1.1 200 OK";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_request_line_is_closed_after_header_read_timeout() {
    let server = TestServer::start_with(|s| {
        s.header_read_timeout = Duration::from_secs(1);
        s.keepalive_timeout = Duration::from_secs(600);
    })
    .await;
    let started = Instant::now();
    let mut stream = stalled([127, 0, 0, 1], address(&server)).await;
    assert!(
        closed_within(&mut stream, PATIENCE).await,
        "a half-sent request line was still open after {PATIENCE:?}"
    );
    // Not closed for some other reason before its time.
    assert!(started.elapsed() >= Duration::from_millis(900));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_byte_by_byte_are_closed_after_header_read_timeout() {
    let server = TestServer::start_with(|s| {
        s.header_read_timeout = Duration::from_secs(2);
        s.keepalive_timeout = Duration::from_secs(600);
    })
    .await;
    let mut stream = connect_from([127, 0, 0, 1], address(&server)).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: tollgate\r\nX-Slow: ";
    let dribble = async {
        // Each byte is progress, but the headers never end: the timeout counts from the first.
        for byte in request.iter().chain(std::iter::repeat(&b'a')) {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert!(
        tokio::time::timeout(PATIENCE, dribble).await.is_ok(),
        "headers dribbled byte by byte kept the connection open for {PATIENCE:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_kept_alive_connection_is_closed_after_keepalive_timeout() {
    let server = TestServer::start_with(|s| {
        s.header_read_timeout = Duration::from_secs(600);
        s.keepalive_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = connect_from([127, 0, 0, 1], address(&server)).await;
    assert_eq!(healthz_on(&mut stream).await, OK);
    assert!(
        closed_within(&mut stream, PATIENCE).await,
        "an idle kept-alive connection was still open after {PATIENCE:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_time_between_requests_is_not_held_to_the_header_timeout() {
    let server = TestServer::start_with(|s| {
        s.header_read_timeout = Duration::from_secs(1);
        s.keepalive_timeout = Duration::from_secs(600);
    })
    .await;
    let mut stream = connect_from([127, 0, 0, 1], address(&server)).await;
    assert_eq!(healthz_on(&mut stream).await, OK);
    // Three header timeouts of idling: the keep-alive timeout applies, not this one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(healthz_on(&mut stream).await, OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_per_address_cap_are_closed_and_others_are_served() {
    let server = TestServer::start_with(|s| {
        s.header_read_timeout = Duration::from_secs(600);
        s.max_connections_per_address = 3;
    })
    .await;
    let addr = address(&server);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(stalled([127, 0, 0, 1], addr).await);
    }
    for _ in 0..2 {
        let mut extra = stalled([127, 0, 0, 1], addr).await;
        assert!(
            closed_within(&mut extra, PATIENCE).await,
            "a connection past the address's cap was kept open"
        );
    }
    // Another client is served while the first address is at its cap.
    let mut other = connect_from([127, 0, 0, 2], addr).await;
    assert_eq!(healthz_on(&mut other).await, OK);
    // The held connections are still open: the cap refused the extra ones, not these.
    assert!(!closed_within(&mut held[0], Duration::from_millis(300)).await);
    // Once they close, the address gets its places back.
    drop(held);
    assert_eq!(healthz_eventually([127, 0, 0, 1], addr).await, OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_connections_a_new_connection_waits_for_a_place() {
    let server = TestServer::start_with(|s| {
        s.header_read_timeout = Duration::from_secs(600);
        s.max_connections = 3;
        s.max_connections_per_address = 0;
    })
    .await;
    let addr = address(&server);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(stalled([127, 0, 0, 1], addr).await);
    }
    let mut waiting = connect_from([127, 0, 0, 2], addr).await;
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tollgate\r\n\r\n")
        .await
        .expect("request written");
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_secs(2), waiting.read(&mut byte))
            .await
            .is_err(),
        "a fourth connection was served while three held every place"
    );
    drop(held.pop());
    let answer = tokio::time::timeout(PATIENCE, read_response(&mut waiting))
        .await
        .expect("served once a place was free");
    assert_eq!(answer, OK);
    server.stop().await;
}

/// The finding itself: a server whose open-file limit is 256 (set with `prlimit`), and 400
/// sockets that each send half a request line. Before, they took every descriptor and the
/// server answered no one; now MAX_CONNECTIONS keeps it under the limit and
/// HEADER_READ_TIMEOUT turns the stalled ones over, so a client is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_sockets_past_the_open_file_limit_do_not_starve_a_client() {
    let dir = tempfile::tempdir().expect("temp dir");
    let template = tollgate(dir.path(), &[]);
    let mut command = std::process::Command::new("prlimit");
    command
        .current_dir(dir.path())
        .args(["--nofile=256:256", "--"])
        .arg(template.get_program());
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command
        .env("TOLLGATE_MAX_CONNECTIONS", "128")
        .env("TOLLGATE_MAX_CONNECTIONS_PER_ADDRESS", "0")
        .env("TOLLGATE_HEADER_READ_TIMEOUT", "2");
    let server = Served::start(command).await;
    let addr: SocketAddr = server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let mut sockets = Vec::new();
    for _ in 0..400 {
        sockets.push(stalled([127, 0, 0, 1], addr).await);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("client");
    let response = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("answered despite 400 stalled sockets");
    assert_eq!(response.status(), StatusCode::OK);
    drop(sockets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_database_and_journal_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start().await;
    // A write, so that the -wal and -shm files exist.
    let (status, body) = server
        .post_json(
            "/api/users/",
            json!({"username": "mallory-reads-this", "password": "a-long-unusual-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let database = server
        .settings
        .database_url
        .strip_prefix("sqlite://")
        .expect("a SQLite URL")
        .to_owned();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{database}{suffix}");
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|err| panic!("{path}: {err}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{path} is {:o}", mode & 0o777);
    }
    server.stop().await;
}
