//! Running Tollgate in production (#4): readiness, waiting for a database that is starting,
//! giving up clearly when it never comes, and finishing requests in flight on SIGTERM. The
//! server is the real binary; the database is the real PostgreSQL, reached through a TCP relay
//! that the test opens and closes to play a database that is starting or going away.

use crate::common;

use std::time::{Duration, Instant};

use common::binary::{create_user, run, text, tollgate, Served};
use common::{Backend, TestDatabase, TestServer, TEST_KEY};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

on_both_backends! {
    /// With its database up, an instance is ready.
    async fn readyz_is_ok_when_the_database_answers(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (status, body) = server.get("/readyz", None).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok", "database": "ok"})));
        server.stop().await;
    }
}

/// A port nothing listens on (bound, read, released).
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    listener.local_addr().expect("address").port()
}

/// The `host:port` of a PostgreSQL URL.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split('/').next().unwrap_or(rest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
fn via_port(url: &str, port: u16) -> String {
    url.replacen(&authority(url), &format!("127.0.0.1:{port}"), 1)
}

/// A TCP relay from 127.0.0.1:`port` to `target`; aborting it closes the port and every
/// connection relayed, as a database going away does.
fn relay(port: u16, target: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("relay binds");
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            let target = target.clone();
            connections.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

fn serve_command(dir: &std::path::Path, database_url: &str) -> std::process::Command {
    let mut command = tollgate(dir, &[]);
    command
        .env("DATABASE_URL", database_url)
        .env("TOLLGATE_SIGNING_KEY", TEST_KEY);
    command
}

async fn get_json(url: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

/// `serve` waits for a database that is still starting, and `/readyz` follows the database
/// going away and coming back, naming it while it is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_waits_for_the_database_and_readyz_follows_it() {
    if !common::postgres_available().await {
        return;
    }
    let database = TestDatabase::create(Backend::Postgres).await;
    let target = authority(&database.url());
    let port = free_port().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = serve_command(dir.path(), &via_port(&database.url(), port));
    command.env("TOLLGATE_DATABASE_CONNECT_TIMEOUT", "30s");
    let starting = tokio::spawn(Served::start(command));

    // The database "starts" a moment after the server.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let relayed = relay(port, target.clone());
    // Had it not waited, it would have exited and never announced an address.
    let server = starting.await.expect("server task");
    let readyz = format!("{}/readyz", server.base);
    assert_eq!(
        get_json(&readyz).await,
        (StatusCode::OK, json!({"status": "ok", "database": "ok"}))
    );

    relayed.abort();
    let _ = relayed.await;
    assert_eq!(
        get_json(&readyz).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "database": "down"})
        )
    );
    // Liveness does not depend on the database.
    assert_eq!(
        get_json(&format!("{}/healthz", server.base)).await.0,
        StatusCode::OK
    );

    let relayed = relay(port, target);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get_json(&readyz).await;
        if status == StatusCode::OK {
            assert_eq!(body, json!({"status": "ok", "database": "ok"}));
            break;
        }
        assert!(Instant::now() < deadline, "not ready again: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
    relayed.abort();
}

/// A PostgreSQL URL on a port where nothing listens.
fn unreachable_postgres() -> String {
    let port = common::redis_server::free_port();
    format!("postgres://postgres@127.0.0.1:{port}/tollgate")
}

/// A database that never comes: the command gives up after DATABASE_CONNECT_TIMEOUT with an
/// error that says so, instead of hanging or failing at the first refusal.
#[test]
fn a_database_that_never_comes_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = unreachable_postgres();
    let started = Instant::now();
    let output = run(serve_command(dir.path(), &url)
        .args(["migrate"])
        .env("TOLLGATE_DATABASE_CONNECT_TIMEOUT", "2s"));
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: cannot open the database")
            && stderr.contains("still unreachable after 2s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("database unreachable, retrying"),
        "{stderr}"
    );
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "gave up after {took:?}"
    );
}

/// SIGHUP asks a running server to reload its keys; one that arrives while the server is still
/// starting (here, waiting for its database) is ignored rather than killing it.
#[cfg(unix)]
#[test]
fn a_hangup_during_start_up_does_not_kill_the_server() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = unreachable_postgres();
    let mut child = serve_command(dir.path(), &url)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("TOLLGATE_DATABASE_CONNECT_TIMEOUT", "3s")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("piped"));
    let mut seen = String::new();
    while !seen.contains("database unreachable, retrying") {
        let mut line = String::new();
        let read = stderr.read_line(&mut line).expect("stderr");
        assert!(
            read > 0,
            "serve ended before waiting for its database: {seen}"
        );
        seen.push_str(&line);
    }
    let hangup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(hangup.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("stderr");
    let status = child.wait().expect("waited");
    // Killed by the signal, it would have no exit code; it gives up on its database instead.
    assert_eq!(status.code(), Some(1), "{seen}{rest}");
    assert!(rest.contains("still unreachable after 3s"), "{seen}{rest}");
}

/// SIGTERM: the listener closes at once, a request already in flight still gets its full
/// answer, and the process then exits successfully.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish() {
    let dir = tempfile::tempdir().expect("temp dir");
    create_user(tollgate(dir.path(), &[]), "alice", "alice-password");
    let mut server = Served::start(tollgate(dir.path(), &[])).await;
    let address = server.base.trim_start_matches("http://").to_owned();

    // A login whose body is still being sent when the signal comes.
    let body = r#"{"username": "alice", "password": "alice-password"}"#;
    let head = format!(
        "POST /api/token/ HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(&address).await.expect("connects");
    stream.write_all(head.as_bytes()).await.expect("writes");
    stream
        .write_all(&body.as_bytes()[..10])
        .await
        .expect("writes");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = server.child.id().expect("running").to_string();
    let killed = run(std::process::Command::new("kill").args(["-TERM", &pid]));
    assert!(killed.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .drain_logs()
        .iter()
        .any(|line| line.contains("shutting down"))
    {
        assert!(Instant::now() < deadline, "no shutdown logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // New connections are refused from the signal on: the listener closes right after the
    // log line, so allow it a moment (it races the line, not the requests in flight).
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&address).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    stream
        .write_all(&body.as_bytes()[10..])
        .await
        .expect("writes");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("answered in time")
        .expect("reads");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let (_, json_body) = answer.split_once("\r\n\r\n").expect("a body");
    let pair: Value = serde_json::from_str(json_body).expect("JSON");
    assert!(pair["access"].is_string() && pair["refresh"].is_string());

    let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("exits in time")
        .expect("waits");
    assert!(status.success(), "{status:?}");
}
