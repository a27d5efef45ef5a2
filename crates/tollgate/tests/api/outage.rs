//! When PostgreSQL is unreachable: every request answers within DATABASE_ACQUIRE_TIMEOUT plus
//! one DATABASE_STATEMENT_TIMEOUT, with 503 `service_unavailable` and `Retry-After` where it
//! needs the database; everything works again within seconds of the database coming back; and
//! a refresh whose client hung up before its rotation was written does not spend the token.
//! The server reaches PostgreSQL through a relay that each test cuts and restores.

use crate::common;

use std::time::{Duration, Instant};

use common::{raw_request, token_field, Relay, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_core::Settings;

/// The acquire timeout and the statement timeout of these tests.
const TIMEOUT: Duration = Duration::from_secs(1);
/// What a request may take beyond them: the test's own scheduling on a busy machine.
const SLACK: Duration = Duration::from_millis(1500);

/// Refresh-token rotation on (so refresh goes through the rotation writer), small timeouts, and
/// users cached for the whole test (so a refresh gets as far as its rotation during an outage).
fn outage_settings(settings: &mut Settings) {
    settings.database_acquire_timeout = TIMEOUT;
    settings.database_statement_timeout = TIMEOUT;
    settings.rotate_refresh_tokens = true;
    settings.blacklist_after_rotation = true;
    settings.user_cache_ttl = Duration::from_secs(600);
    settings.metrics_enabled = true;
}

/// The most a request may wait while the database is down.
fn bound() -> Duration {
    2 * TIMEOUT + SLACK
}

/// The answer to a request that needed the database while it was unavailable.
fn unavailable() -> Value {
    json!({
        "detail": "The service is temporarily unavailable. Try again shortly.",
        "code": "service_unavailable"
    })
}

/// Status, `Retry-After` and JSON body of a POST, and how long it took.
async fn timed_post(
    server: &TestServer,
    path: &str,
    body: Value,
) -> (StatusCode, Option<String>, Value, Duration) {
    let started = Instant::now();
    let response = server
        .client
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .expect("answered");
    let (status, retry_after) = (response.status(), retry_after(&response));
    let body = response.json().await.expect("a JSON body");
    (status, retry_after, body, started.elapsed())
}

fn retry_after(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().expect("ASCII").to_owned())
}

/// Asserts a 503 with `Retry-After: 5` and the documented body, answered within the bound.
#[track_caller]
fn assert_unavailable_in_time(what: &str, answer: (StatusCode, Option<String>, Value, Duration)) {
    let (status, retry_after, body, took) = answer;
    assert_eq!(
        (status, retry_after.as_deref(), body),
        (StatusCode::SERVICE_UNAVAILABLE, Some("5"), unavailable()),
        "{what}"
    );
    assert!(
        took < bound(),
        "{what} took {took:?}, more than {:?}",
        bound()
    );
}

/// A user `ann`, logged in `logins` times (each login's refresh token), her user cached by a
/// first refresh.
async fn ann_with_refresh_tokens(server: &TestServer, logins: usize) -> (Vec<String>, String) {
    server.create_user("ann", "pw-ann-123").await;
    let mut refresh_tokens = Vec::new();
    let mut access = String::new();
    for _ in 0..=logins {
        let (refresh, fresh_access) = server.obtain_pair("ann", "pw-ann-123").await;
        refresh_tokens.push(refresh);
        access = fresh_access;
    }
    let warm = refresh_tokens.pop().expect("one more login");
    let (status, body) = server
        .post_json("/api/token/refresh/", json!({ "refresh": warm }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (refresh_tokens, access)
}

/// Login, refresh alone and refreshes queued together, verify and a protected GET, with
/// PostgreSQL cut off: each answers within the acquire timeout plus a statement timeout, 503 +
/// `Retry-After` where it needs the database; the 503s are counted in /metrics. Restored,
/// everything works again within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_within_the_bound_and_heals() {
    if !common::postgres_available().await {
        return;
    }
    let relay = Relay::to_postgres().await;
    let server = TestServer::start_through(&relay, outage_settings).await;
    let (refresh_tokens, access) = ann_with_refresh_tokens(&server, 5).await;
    // The queue's connections are opened before the cut, as clients already connected are.
    let queued: Vec<Vec<u8>> = refresh_tokens[1..]
        .iter()
        .map(|refresh| {
            let body = json!({ "refresh": refresh });
            raw_request("POST", "/api/token/refresh/", &[], Some(&body))
        })
        .collect();

    relay.cut();
    let login = json!({"username": "ann", "password": "pw-ann-123"});
    assert_unavailable_in_time(
        "login",
        timed_post(&server, "/api/token/", login.clone()).await,
    );
    let single = json!({ "refresh": refresh_tokens[0] });
    assert_unavailable_in_time(
        "a refresh",
        timed_post(&server, "/api/token/refresh/", single.clone()).await,
    );
    let started = Instant::now();
    let answers = server.send_together(queued).await;
    let took = started.elapsed();
    assert_eq!(answers.len(), 4);
    for (status, body) in answers {
        assert_eq!(
            (status, body),
            (StatusCode::SERVICE_UNAVAILABLE, unavailable())
        );
    }
    assert!(took < bound(), "the queued refreshes took {took:?}");
    // Verify reads the blacklist, which is in the database.
    assert_unavailable_in_time(
        "verify",
        timed_post(
            &server,
            "/api/token/verify/",
            json!({ "token": refresh_tokens[0] }),
        )
        .await,
    );
    // An access token is checked without the database and the user is cached: the protected
    // GET still answers.
    let started = Instant::now();
    let (status, body) = server
        .get("/api/user/", Some(&format!("Bearer {access}")))
        .await;
    assert_eq!(
        (status, &body["username"]),
        (StatusCode::OK, &json!("ann")),
        "{body}"
    );
    assert!(started.elapsed() < bound());
    let (_, metrics) = metrics_text(&server).await;
    let counted = metrics
        .lines()
        .find(|line| {
            line.starts_with("tollgate_dependency_unavailable_total{dependency=\"database\"}")
        })
        .unwrap_or_else(|| panic!("no unavailability counted:\n{metrics}"));
    assert!(counted.ends_with(" 7"), "{counted}");

    relay.restore();
    let healed = Instant::now();
    let deadline = healed + Duration::from_secs(10);
    loop {
        let (status, body) = server.post_json("/api/token/", login.clone()).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(
            (status, body),
            (StatusCode::SERVICE_UNAVAILABLE, unavailable())
        );
        assert!(Instant::now() < deadline, "login did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing failed during the outage was written: every token still refreshes, once.
    for refresh in &refresh_tokens {
        let (status, body) = server
            .post_json("/api/token/refresh/", json!({ "refresh": refresh }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = server
            .post_json(
                "/api/token/verify/",
                json!({ "token": token_field(&body, "refresh") }),
            )
            .await;
        assert_eq!((status, body), (StatusCode::OK, json!({})));
    }
    assert!(
        healed.elapsed() < Duration::from_secs(10),
        "{:?}",
        healed.elapsed()
    );
    server.stop().await;
}

/// A refresh that arrives while the rotation writer waits for a connection fails when that
/// wait fails, instead of waiting for a connection again in its turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_queued_behind_a_rotation_without_a_connection_fails_with_it() {
    if !common::postgres_available().await {
        return;
    }
    let relay = Relay::to_postgres().await;
    // A longer acquire timeout, so that waiting once and twice are far apart.
    let acquire = Duration::from_secs(2);
    let server = TestServer::start_through(&relay, |settings| {
        outage_settings(settings);
        settings.database_acquire_timeout = acquire;
    })
    .await;
    let (refresh_tokens, _) = ann_with_refresh_tokens(&server, 2).await;

    relay.cut();
    let first = {
        let (client, url) = (server.client.clone(), server.url("/api/token/refresh/"));
        let body = json!({ "refresh": refresh_tokens[0] });
        tokio::spawn(async move { client.post(url).json(&body).send().await })
    };
    tokio::time::sleep(acquire / 2).await;
    let (status, retry_after, body, took) = timed_post(
        &server,
        "/api/token/refresh/",
        json!({ "refresh": refresh_tokens[1] }),
    )
    .await;
    assert_eq!(
        (status, retry_after.as_deref(), body),
        (StatusCode::SERVICE_UNAVAILABLE, Some("5"), unavailable())
    );
    // It waited for the rest of the first one's wait (about half of it), not for a wait of its
    // own after that one (about one and a half).
    assert!(took < acquire + Duration::from_millis(500), "took {took:?}");
    let first = first.await.expect("joined").expect("answered");
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);

    relay.restore();
    server.stop().await;
}

/// A refresh whose client hung up while its rotation waited in the queue is not written:
/// nobody would receive the new token, and the client, still holding the old one, would be
/// logged out. Its token still refreshes afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_whose_client_hung_up_before_its_rotation_spends_nothing() {
    use sqlx::Connection;
    use tokio::io::AsyncWriteExt;
    if !common::postgres_available().await {
        return;
    }
    let server = TestServer::start_on(common::Backend::Postgres, |settings| {
        outage_settings(settings);
        settings.database_statement_timeout = Duration::from_secs(10);
    })
    .await;
    let (refresh_tokens, _) = ann_with_refresh_tokens(&server, 2).await;
    let (holding, leaving) = (&refresh_tokens[0], &refresh_tokens[1]);

    // Another transaction inserts the first token's blacklist row and keeps it uncommitted:
    // the batch that rotates that token waits for it, and the next rotation waits in the
    // queue.
    let mut other = sqlx::PgConnection::connect(&server.settings.database_url)
        .await
        .expect("connects");
    sqlx::query("BEGIN")
        .execute(&mut other)
        .await
        .expect("begins");
    let jti = common::payload(holding)["jti"]
        .as_str()
        .expect("a jti")
        .to_owned();
    sqlx::query(
        "INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at) VALUES ($1, 0, 0)",
    )
    .bind(&jti)
    .execute(&mut other)
    .await
    .expect("inserted");
    let first = {
        let (client, url) = (server.client.clone(), server.url("/api/token/refresh/"));
        let body = json!({ "refresh": holding });
        tokio::spawn(async move { client.post(url).json(&body).send().await })
    };
    until_a_statement_waits_for_a_lock(&mut other).await;

    // The second client sends its refresh and hangs up before the answer.
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connects");
    let body = json!({ "refresh": leaving });
    stream
        .write_all(&raw_request(
            "POST",
            "/api/token/refresh/",
            &[],
            Some(&body),
        ))
        .await
        .expect("sent");
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The other transaction gives way: the first rotation is written and answered.
    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("rolled back");
    let first = first.await.expect("joined").expect("answered");
    assert_eq!(first.status(), StatusCode::OK);
    let (status, body) = server
        .post_json("/api/token/refresh/", json!({ "refresh": holding }))
        .await;
    assert_eq!(
        (status, &body["detail"]),
        (StatusCode::UNAUTHORIZED, &json!("Token is blacklisted")),
        "the first token was rotated: {body}"
    );
    // The second was not: its client can still refresh with it.
    let (status, body) = server
        .post_json("/api/token/refresh/", json!({ "refresh": leaving }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let _ = other.close().await;
    server.stop().await;
}

/// A batch of rotations whose answer never arrives (the network drops packets without closing
/// the connection) fails once the statement timeout has passed, and the refreshes queued behind
/// it answer too, instead of all waiting for as long as the connection stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_whose_answer_is_lost_on_the_network_fails_at_the_statement_timeout() {
    use sqlx::Connection;
    if !common::postgres_available().await {
        return;
    }
    let relay = Relay::to_postgres().await;
    let server = TestServer::start_through(&relay, outage_settings).await;
    let (refresh_tokens, _) = ann_with_refresh_tokens(&server, 2).await;

    // The first token's batch waits in PostgreSQL for another transaction's uncommitted row,
    // long enough for the network to freeze while it runs.
    let direct = server.settings.database_url.replacen(
        &format!("127.0.0.1:{}", relay.port()),
        &common::authority(&common::postgres_admin_url()),
        1,
    );
    let mut other = sqlx::PgConnection::connect(&direct)
        .await
        .expect("connects");
    sqlx::query("BEGIN")
        .execute(&mut other)
        .await
        .expect("begins");
    let jti = common::payload(&refresh_tokens[0])["jti"]
        .as_str()
        .expect("a jti")
        .to_owned();
    sqlx::query(
        "INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at) VALUES ($1, 0, 0)",
    )
    .bind(&jti)
    .execute(&mut other)
    .await
    .expect("inserted");
    let refresh = |token: &str| {
        let (client, url) = (server.client.clone(), server.url("/api/token/refresh/"));
        let body = json!({ "refresh": token });
        tokio::spawn(async move {
            let started = Instant::now();
            let response = client.post(url).json(&body).send().await.expect("answered");
            let status = response.status();
            (status, retry_after(&response), started.elapsed())
        })
    };
    let first = refresh(&refresh_tokens[0]);
    until_a_statement_waits_for_a_lock(&mut other).await;
    relay.freeze();
    let queued = refresh(&refresh_tokens[1]);

    for (what, answer) in [("the batch", first), ("the refresh queued", queued)] {
        let (status, retry_after, took) = answer.await.expect("joined");
        assert_eq!(
            (status, retry_after.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("5")),
            "{what}"
        );
        assert!(took < bound(), "{what} took {took:?}");
    }

    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("rolled back");
    let _ = other.close().await;
    relay.restore();
    // PostgreSQL cancelled the batch at the statement timeout: both tokens still refresh.
    for token in &refresh_tokens {
        let (status, body) = server
            .post_json("/api/token/refresh/", json!({ "refresh": token }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    server.stop().await;
}

/// A statement held up inside the database (here by a lock another transaction keeps) is
/// cancelled at DATABASE_STATEMENT_TIMEOUT, and the request answers 503 instead of waiting for
/// the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_held_up_in_the_database_is_cancelled_at_the_statement_timeout() {
    use sqlx::Connection;
    if !common::postgres_available().await {
        return;
    }
    let server = TestServer::start_on(common::Backend::Postgres, outage_settings).await;
    server.create_user("ann", "pw-ann-123").await;
    let mut other = sqlx::PgConnection::connect(&server.settings.database_url)
        .await
        .expect("connects");
    sqlx::query("BEGIN")
        .execute(&mut other)
        .await
        .expect("begins");
    sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut other)
        .await
        .expect("locked");

    let login = json!({"username": "ann", "password": "pw-ann-123"});
    assert_unavailable_in_time(
        "login behind a lock",
        timed_post(&server, "/api/token/", login.clone()).await,
    );

    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("released");
    let (status, body) = server.post_json("/api/token/", login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let _ = other.close().await;
    server.stop().await;
}

/// Waits (up to 10 s) until a statement of the database `other` is connected to waits for a
/// lock: the rotation batch held up by `other`'s uncommitted row.
async fn until_a_statement_waits_for_a_lock(other: &mut sqlx::PgConnection) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *other)
        .await
        .expect("counted");
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no rotation waits for the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metrics_text(server: &TestServer) -> (StatusCode, String) {
    let response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("answered");
    let status = response.status();
    (status, response.text().await.expect("a body"))
}
