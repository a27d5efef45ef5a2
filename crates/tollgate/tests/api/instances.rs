//! Several instances behave as one (#4): real `tollgate serve` processes on one fresh
//! PostgreSQL database (and, where said, a private Redis that the test starts and stops).
//! Blacklisting, revocations and user changes made through one are seen by the others within a
//! second; of concurrent refreshes of one token across instances exactly one wins; Redis going
//! away lets no blacklisted token through; a killed instance loses nothing it acknowledged.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::binary::{create_user, run, text, tollgate, Served};
use common::redis_server::{free_port, PrivateRedis};
use common::{Backend, TestDatabase, TEST_KEY};
use reqwest::StatusCode;
use serde_json::{json, Value};

const PW: &str = "correct-horse-battery";

/// One fresh PostgreSQL database, a working directory, and user `ann`; None (the test is
/// skipped, with a message) without PostgreSQL outside CI.
struct Cluster {
    database: TestDatabase,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Cluster {
    async fn new() -> Option<Cluster> {
        if !common::postgres_available().await {
            return None;
        }
        let cluster = Cluster {
            database: TestDatabase::create(Backend::Postgres).await,
            dir: tempfile::tempdir().expect("temp dir"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        };
        let created = run(cluster
            .command(&[])
            .args(["createuser", "--username", "ann", "--no-input"])
            .env("TOLLGATE_USER_PASSWORD", PW));
        assert!(created.status.success(), "{}", text(&created.stderr));
        Some(cluster)
    }

    /// A `tollgate` command on the cluster's database with `settings` (NAME, value) as
    /// TOLLGATE_* variables.
    fn command(&self, settings: &[(&str, &str)]) -> Command {
        let mut command = tollgate(self.dir.path(), &[]);
        command
            .env("DATABASE_URL", self.database.url())
            .env("TOLLGATE_SIGNING_KEY", TEST_KEY)
            .env("TOLLGATE_LOG", "info");
        for (name, value) in settings {
            command.env(format!("TOLLGATE_{name}"), value);
        }
        command
    }

    async fn serve(&self, settings: &[(&str, &str)]) -> Served {
        Served::start(self.command(settings)).await
    }

    async fn post(
        &self,
        server: &Served,
        path: &str,
        body: Value,
        bearer: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", server.base))
            .json(&body);
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        read(request.send().await.expect("request sent")).await
    }

    async fn get(&self, server: &Served, path: &str, bearer: &str) -> (StatusCode, Value) {
        let request = self
            .client
            .get(format!("{}{path}", server.base))
            .header("authorization", format!("Bearer {bearer}"));
        read(request.send().await.expect("request sent")).await
    }

    /// Logs in through `server`: (refresh, access).
    async fn log_in(&self, server: &Served, password: &str) -> (String, String) {
        let (status, body) = self
            .post(
                server,
                "/api/token/",
                json!({"username": "ann", "password": password}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            common::token_field(&body, "refresh"),
            common::token_field(&body, "access"),
        )
    }
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, body)
}

/// Polls `check` until it holds, and returns how long that took; fails after `limit`.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not seen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const SECOND: Duration = Duration::from_secs(1);

fn blacklisted() -> (StatusCode, Value) {
    (
        StatusCode::UNAUTHORIZED,
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"}),
    )
}

/// A refresh token blacklisted through one instance is refused by the other at once, and with
/// ACCESS_TOKEN_REVOCATION the access token presented at that logout is refused by the other
/// within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_through_one_instance_is_seen_by_the_other() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let settings = [("ACCESS_TOKEN_REVOCATION", "true")];
    let (a, b) = (
        cluster.serve(&settings).await,
        cluster.serve(&settings).await,
    );
    let (refresh, access) = cluster.log_in(&a, PW).await;
    assert_eq!(
        cluster.get(&b, "/api/index/", &access).await.0,
        StatusCode::OK
    );

    let (status, _) = cluster
        .post(
            &a,
            "/api/token/blacklist/",
            json!({ "refresh": refresh }),
            Some(&access),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        cluster
            .post(
                &b,
                "/api/token/refresh/",
                json!({ "refresh": refresh }),
                None
            )
            .await,
        blacklisted()
    );
    let took = within(
        SECOND,
        "access token revoked on the other instance",
        || async { cluster.get(&b, "/api/index/", &access).await.0 == StatusCode::UNAUTHORIZED },
    )
    .await;
    eprintln!("revocation seen by the other instance after {took:?}");
    let (status, body) = cluster
        .post(&b, "/api/token/verify/", json!({ "token": access }), None)
        .await;
    assert_eq!((status, body), blacklisted());
}

/// Concurrent refreshes of one refresh token, half through each instance, with rotation and
/// blacklisting: exactly one succeeds, the others are told the token is blacklisted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_across_instances_let_exactly_one_win() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let settings = [
        ("ROTATE_REFRESH_TOKENS", "true"),
        ("BLACKLIST_AFTER_ROTATION", "true"),
    ];
    let (a, b) = (
        cluster.serve(&settings).await,
        cluster.serve(&settings).await,
    );
    for round in 0..5 {
        let (refresh, _) = cluster.log_in(&a, PW).await;
        let mut attempts = tokio::task::JoinSet::new();
        for i in 0..16 {
            let base = if i % 2 == 0 { &a.base } else { &b.base };
            let request = cluster
                .client
                .post(format!("{base}/api/token/refresh/"))
                .json(&json!({ "refresh": refresh }));
            attempts.spawn(async move { read(request.send().await.expect("sent")).await });
        }
        let outcomes = attempts.join_all().await;
        let won = outcomes
            .iter()
            .filter(|(status, _)| *status == StatusCode::OK)
            .count();
        assert_eq!(won, 1, "round {round}: {outcomes:?}");
        for outcome in outcomes.iter().filter(|(s, _)| *s != StatusCode::OK) {
            assert_eq!(outcome, &blacklisted());
        }
    }
}

/// User changes made elsewhere reach an instance that caches users (USER_CACHE_TTL of a
/// minute) within a second: a deactivation by the command line, and a password change through
/// the other instance (CHECK_REVOKE_TOKEN's fingerprint and ACCESS_TOKEN_REVOCATION both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_changes_reach_an_instance_that_caches_users() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let settings = [
        ("USER_CACHE_TTL", "60s"),
        ("CHECK_REVOKE_TOKEN", "true"),
        ("ACCESS_TOKEN_REVOCATION", "true"),
    ];
    let (a, b) = (
        cluster.serve(&settings).await,
        cluster.serve(&settings).await,
    );
    let (_, access) = cluster.log_in(&a, PW).await;
    // B caches ann.
    assert_eq!(
        cluster.get(&b, "/api/index/", &access).await.0,
        StatusCode::OK
    );

    let deactivated = run(cluster.command(&[]).args(["deactivate", "ann"]));
    assert!(
        deactivated.status.success(),
        "{}",
        text(&deactivated.stderr)
    );
    let inactive = json!({"detail": "User is inactive", "code": "user_inactive"});
    within(
        SECOND,
        "deactivation seen by a caching instance",
        || async {
            cluster.get(&b, "/api/index/", &access).await
                == (StatusCode::UNAUTHORIZED, inactive.clone())
        },
    )
    .await;
    let activated = run(cluster.command(&[]).args(["activate", "ann"]));
    assert!(activated.status.success(), "{}", text(&activated.stderr));
    within(SECOND, "activation seen by a caching instance", || async {
        cluster.get(&b, "/api/index/", &access).await.0 == StatusCode::OK
    })
    .await;

    let (status, body) = cluster
        .post(
            &a,
            "/api/user/password/",
            json!({"old_password": PW, "new_password": "n3w-horse-battery"}),
            Some(&access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    within(
        SECOND,
        "password change seen by a caching instance",
        || async { cluster.get(&b, "/api/index/", &access).await.0 == StatusCode::UNAUTHORIZED },
    )
    .await;
    let (_, fresh) = cluster.log_in(&b, "n3w-horse-battery").await;
    assert_eq!(
        cluster.get(&a, "/api/index/", &fresh).await.0,
        StatusCode::OK
    );
}

/// A revocation made while an instance's listening connection is cut is not lost: the instance
/// listens again and reloads the revocations from the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_lost_its_listener_reloads_revocations() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let settings = [("ACCESS_TOKEN_REVOCATION", "true")];
    let (a, mut b) = (
        cluster.serve(&settings).await,
        cluster.serve(&settings).await,
    );
    let (refresh, access) = cluster.log_in(&a, PW).await;
    assert_eq!(
        cluster.get(&b, "/api/index/", &access).await.0,
        StatusCode::OK
    );

    // Cut every listening connection (B's and A's) on the database, then log out through A.
    let name = match &cluster.database {
        TestDatabase::Postgres { name, .. } => name.clone(),
        TestDatabase::Sqlite(_) => unreachable!("a PostgreSQL cluster"),
    };
    admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND query LIKE 'LISTEN%'"
    ))
    .await;
    let (status, _) = cluster
        .post(
            &a,
            "/api/token/blacklist/",
            json!({ "refresh": refresh }),
            Some(&access),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    within(
        Duration::from_secs(5),
        "revocation reloaded by B",
        || async { cluster.get(&b, "/api/index/", &access).await.0 == StatusCode::UNAUTHORIZED },
    )
    .await;
    let logs = b.drain_logs().join("\n");
    assert!(logs.contains("revocation listener back"), "{logs}");
}

async fn admin(sql: &str) {
    use sqlx::Connection;
    let url = std::env::var("TOLLGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut connection = sqlx::PgConnection::connect(&url)
        .await
        .expect("admin connects");
    sqlx::query(sql).execute(&mut connection).await.expect(sql);
    let _ = connection.close().await;
}

/// Waits until `server` logged a line containing `needle`.
async fn logged(server: &mut Served, needle: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        if server.drain_logs().iter().any(|line| line.contains(needle)) {
            return;
        }
        assert!(Instant::now() < deadline, "never logged {needle:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two instances on one PostgreSQL and one Redis. While Redis is down, no blacklisted token is
/// accepted by either, whichever instance blacklisted it and when; once Redis is back, both
/// use it again and it holds every blacklisted jti.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_down_under_two_instances_lets_no_blacklisted_token_through() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let port = free_port();
    let mut redis_server = Some(PrivateRedis::start(port));
    let url = format!("redis://127.0.0.1:{port}/0");
    let settings = [
        ("REDIS_URL", url.as_str()),
        ("REDIS_KEY_PREFIX", "instances-test:"),
        ("ROTATE_REFRESH_TOKENS", "true"),
        ("BLACKLIST_AFTER_ROTATION", "true"),
    ];
    let mut a = cluster.serve(&settings).await;
    let mut b = cluster.serve(&settings).await;
    // Each instance logs this (before it announces its address) once Redis is in use, and
    // again whenever it uses Redis again after an outage.
    let ready = "redis denylist available";

    let (before, _) = cluster.log_in(&a, PW).await;
    let (status, _) = cluster
        .post(
            &a,
            "/api/token/blacklist/",
            json!({ "refresh": before }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    drop(redis_server.take());
    // While Redis is down: the token blacklisted before, and one blacklisted through each
    // instance now, are refused by both.
    let mut refused = vec![before];
    for server in [&a, &b] {
        let (token, _) = cluster.log_in(server, PW).await;
        let (status, _) = cluster
            .post(
                server,
                "/api/token/blacklist/",
                json!({ "refresh": token }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        refused.push(token);
    }
    for server in [&a, &b] {
        for token in &refused {
            assert_eq!(
                cluster
                    .post(
                        server,
                        "/api/token/refresh/",
                        json!({ "refresh": token }),
                        None
                    )
                    .await,
                blacklisted()
            );
        }
    }
    let (status, _) = read(
        cluster
            .client
            .get(format!("{}/readyz", a.base))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // Redis returns empty: an instance fills it, both use it again.
    a.drain_logs();
    b.drain_logs();
    let _redis_server = PrivateRedis::start(port);
    let (live, _) = cluster.log_in(&b, PW).await;
    for server in [&a, &b] {
        // A request that reaches the denylist lets the instance notice Redis is back.
        let _ = cluster
            .post(server, "/api/token/verify/", json!({ "token": live }), None)
            .await;
    }
    logged(&mut a, ready, Duration::from_secs(10)).await;
    logged(&mut b, ready, Duration::from_secs(10)).await;
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    for token in &refused {
        let jti = common::token_field(&common::payload(token), "jti");
        let listed: bool = redis::cmd("EXISTS")
            .arg(format!("instances-test:denylist:{jti}"))
            .query_async(&mut redis)
            .await
            .expect("EXISTS");
        assert!(listed, "{jti} missing from Redis after it came back");
    }
    for server in [&a, &b] {
        for token in &refused {
            assert_eq!(
                cluster
                    .post(
                        server,
                        "/api/token/refresh/",
                        json!({ "refresh": token }),
                        None
                    )
                    .await,
                blacklisted()
            );
        }
    }
    let (status, _) = cluster
        .post(&a, "/api/token/refresh/", json!({ "refresh": live }), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// kill -9 of an instance in the middle of traffic, then a restart: every refresh token it
/// handed out is recorded as outstanding, every logout it acknowledged is still refused (by the
/// restarted instance and by the other), and every access revocation too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_traffic_loses_nothing_it_acknowledged() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let settings = [
        ("ROTATE_REFRESH_TOKENS", "true"),
        ("BLACKLIST_AFTER_ROTATION", "true"),
        ("ACCESS_TOKEN_REVOCATION", "true"),
    ];
    let mut a = cluster.serve(&settings).await;
    let b = cluster.serve(&settings).await;
    let base = a.base.clone();

    // Traffic on A: log in, rotate once, log out with the access token; record what A answered.
    let traffic = {
        let client = cluster.client.clone();
        tokio::spawn(async move {
            let mut issued = Vec::new(); // refresh tokens A handed out
            let mut logged_out = Vec::new(); // (refresh, access) whose logout A acknowledged
            loop {
                let post = |path: &str, body: Value, bearer: Option<String>| {
                    let mut request = client.post(format!("{base}{path}")).json(&body);
                    if let Some(token) = bearer {
                        request = request.header("authorization", format!("Bearer {token}"));
                    }
                    async move {
                        let response = request.send().await.ok()?;
                        let status = response.status();
                        let body: Value = response.json().await.ok()?;
                        Some((status, body))
                    }
                };
                let Some((StatusCode::OK, pair)) = post(
                    "/api/token/",
                    json!({"username": "ann", "password": PW}),
                    None,
                )
                .await
                else {
                    break;
                };
                issued.push(common::token_field(&pair, "refresh"));
                let Some((StatusCode::OK, rotated)) = post(
                    "/api/token/refresh/",
                    json!({ "refresh": pair["refresh"] }),
                    None,
                )
                .await
                else {
                    break;
                };
                let refresh = common::token_field(&rotated, "refresh");
                let access = common::token_field(&rotated, "access");
                issued.push(refresh.clone());
                match post(
                    "/api/token/blacklist/",
                    json!({ "refresh": refresh }),
                    Some(access.clone()),
                )
                .await
                {
                    Some((StatusCode::OK, _)) => logged_out.push((refresh, access)),
                    _ => break,
                }
            }
            (issued, logged_out)
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = a.child.id().expect("running").to_string();
    let killed = run(Command::new("kill").args(["-KILL", &pid]));
    assert!(killed.status.success());
    let _ = a.child.wait().await;
    let (issued, logged_out) = traffic.await.expect("traffic task");
    assert!(
        logged_out.len() >= 3,
        "too little traffic before the kill: {}",
        logged_out.len()
    );

    let restarted = cluster.serve(&settings).await;
    for server in [&restarted, &b] {
        for (refresh, access) in &logged_out {
            assert_eq!(
                cluster
                    .post(
                        server,
                        "/api/token/refresh/",
                        json!({ "refresh": refresh }),
                        None
                    )
                    .await,
                blacklisted()
            );
            assert_eq!(
                cluster.get(server, "/api/index/", access).await.0,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(&cluster.database.url())
        .await
        .expect("connects");
    for token in &issued {
        let jti = common::token_field(&common::payload(token), "jti");
        let found: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outstanding_tokens WHERE jti = $1")
                .bind(&jti)
                .fetch_one(&mut connection)
                .await
                .expect("query");
        assert_eq!(found, 1, "refresh token {jti} handed out but not recorded");
    }
    let _ = connection.close().await;
    eprintln!(
        "{} refresh tokens issued, {} logouts acknowledged before the kill",
        issued.len(),
        logged_out.len()
    );
}

/// With Redis, instances also tell each other through Redis pub/sub: two instances on one
/// SQLite file (where nothing else announces user changes) caching users for a minute see a
/// password change made through the other within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_carries_user_changes_between_instances() {
    let (_redis_server, url) = PrivateRedis::start_anywhere();
    let dir = tempfile::tempdir().expect("temp dir");
    create_user(tollgate(dir.path(), &[]), "ann", PW);
    let serve = || {
        let mut command = tollgate(dir.path(), &[]);
        command
            .env("TOLLGATE_SIGNING_KEY", TEST_KEY)
            .env("TOLLGATE_REDIS_URL", &url)
            .env("TOLLGATE_REDIS_KEY_PREFIX", "pubsub-test:")
            .env("TOLLGATE_USER_CACHE_TTL", "60s")
            .env("TOLLGATE_CHECK_REVOKE_TOKEN", "true");
        Served::start(command)
    };
    let (a, b) = (serve().await, serve().await);
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    within(Duration::from_secs(10), "both instances subscribed", || {
        let mut redis = redis.clone();
        async move {
            let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("pubsub-test:user_changed")
                .query_async(&mut redis)
                .await
                .expect("PUBSUB");
            counts.first().is_some_and(|(_, n)| *n == 2)
        }
    })
    .await;
    let _ = &mut redis;

    let http = reqwest::Client::new();
    let post = |server: &Served, path: &str, body: Value, bearer: Option<&str>| {
        let mut request = http.post(format!("{}{path}", server.base)).json(&body);
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        async move { read(request.send().await.expect("sent")).await }
    };
    let index = |server: &Served, access: &str| {
        let request = http
            .get(format!("{}/api/index/", server.base))
            .header("authorization", format!("Bearer {access}"));
        async move { read(request.send().await.expect("sent")).await.0 }
    };
    let (status, pair) = post(
        &a,
        "/api/token/",
        json!({"username": "ann", "password": PW}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let access = common::token_field(&pair, "access");
    // B caches ann.
    assert_eq!(index(&b, &access).await, StatusCode::OK);
    let (status, body) = post(
        &a,
        "/api/user/password/",
        json!({"old_password": PW, "new_password": "n3w-horse-battery"}),
        Some(&access),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    within(SECOND, "password change seen through redis", || async {
        index(&b, &access).await == StatusCode::UNAUTHORIZED
    })
    .await;
}
