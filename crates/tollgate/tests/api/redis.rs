//! The Redis denylist (#4): blacklisted jtis in Redis with their token's remaining lifetime,
//! the database asked while Redis is down, and Redis trusted again once it is back and filled.
//! Each test runs a private `redis-server` on a free port, which it stops and starts.

use crate::common;

use std::time::{Duration, Instant};

use common::redis_server::{free_port, PrivateRedis};
use common::{token_field, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use tollgate_core::Settings;

async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A test server whose Redis denylist is `url` (keys under `tollgate-test:`), once it trusts
/// that Redis; `edit` sets anything else.
async fn server_on_redis(url: &str, edit: impl FnOnce(&mut Settings)) -> TestServer {
    let server = TestServer::start_with(|s| {
        s.redis_url = Some(url.to_owned());
        s.redis_key_prefix = "tollgate-test:".into();
        edit(s);
    })
    .await;
    let store = server.store().clone();
    wait_until("redis in use", || store.redis_healthy() == Some(true)).await;
    server
}

/// A connection of the test's own to the Redis at `url`, to look at what Tollgate wrote.
async fn redis_at(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

/// Blacklisting writes the jti to Redis with the token's remaining lifetime; with Redis stopped
/// a blacklisted token is still refused (and new blacklisting works); a restarted, empty Redis
/// is filled from the database, including the jtis blacklisted while it was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_denylist_survives_redis_going_down_and_coming_back() {
    let port = free_port();
    let mut redis_server = Some(PrivateRedis::start(port));
    let url = format!("redis://127.0.0.1:{port}/0");
    let server = server_on_redis(&url, |s| {
        s.rotate_refresh_tokens = true;
        s.blacklist_after_rotation = true;
    })
    .await;
    let store = server.store().clone();
    server.create_user("alice", "alice-password").await;

    let (refresh, _) = server.obtain_pair("alice", "alice-password").await;
    let (status, _) = server
        .post_json("/api/token/blacklist/", json!({ "refresh": refresh }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let jti = token_field(&common::payload(&refresh), "jti");
    let mut redis = redis_at(&url).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("tollgate-test:denylist:{jti}"))
        .query_async(&mut redis)
        .await
        .expect("TTL");
    let lifetime = server.settings.refresh_token_lifetime.as_secs() as i64;
    assert!(
        (lifetime - 5..=lifetime).contains(&ttl),
        "TTL {ttl}, lifetime {lifetime}"
    );
    let refused = json!({"detail": "Token is blacklisted", "code": "token_not_valid"});
    assert_eq!(
        server
            .post_json("/api/token/refresh/", json!({ "refresh": refresh }))
            .await,
        (StatusCode::UNAUTHORIZED, refused.clone())
    );

    // Redis goes away. A rotating refresh learns a token is blacklisted from the rotation
    // itself; logging out again reads the denylist first, and so finds Redis gone.
    drop(redis_server.take());
    assert_eq!(
        server
            .post_json("/api/token/refresh/", json!({ "refresh": refresh }))
            .await,
        (StatusCode::UNAUTHORIZED, refused.clone())
    );
    assert_eq!(
        server
            .post_json("/api/token/blacklist/", json!({ "refresh": refresh }))
            .await,
        (StatusCode::UNAUTHORIZED, refused.clone())
    );
    assert_eq!(store.redis_healthy(), Some(false));
    let (status, body) = server.get("/readyz", None).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "database": "ok", "redis": "down"})
        )
    );
    // Blacklisting while it is down still works, through the database.
    let (second, _) = server.obtain_pair("alice", "alice-password").await;
    let (status, _) = server
        .post_json("/api/token/blacklist/", json!({ "refresh": second }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server
            .post_json("/api/token/refresh/", json!({ "refresh": second }))
            .await,
        (StatusCode::UNAUTHORIZED, refused.clone())
    );

    // Redis comes back empty; Tollgate fills it and trusts it again.
    let _redis_server = PrivateRedis::start(port);
    wait_until("redis in use again", || store.redis_healthy() == Some(true)).await;
    let mut redis = redis_at(&url).await;
    let second_jti = token_field(&common::payload(&second), "jti");
    for jti in [&jti, &second_jti] {
        let listed: bool = redis::cmd("EXISTS")
            .arg(format!("tollgate-test:denylist:{jti}"))
            .query_async(&mut redis)
            .await
            .expect("EXISTS");
        assert!(listed, "{jti} was not copied back into Redis");
    }
    for token in [&refresh, &second] {
        assert_eq!(
            server
                .post_json("/api/token/refresh/", json!({ "refresh": token }))
                .await,
            (StatusCode::UNAUTHORIZED, refused.clone())
        );
    }
    let (status, _) = server.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

/// A password change blacklists the user's refresh tokens in Redis too: a server that trusts
/// its Redis denylist must not take Redis's "not blacklisted" for a token that the change
/// blacklisted in the database. Verify reads the denylist alone (as do sliding tokens on every
/// request), so it would otherwise call the old refresh token valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_reaches_the_redis_denylist() {
    let (_redis_server, url) = PrivateRedis::start_anywhere();
    let server = server_on_redis(&url, |s| {
        s.blacklist_after_rotation = true;
    })
    .await;
    let store = server.store().clone();
    server.create_user("alice", "alice-password").await;
    let (refresh, access) = server.obtain_pair("alice", "alice-password").await;
    let verify = || server.post_json("/api/token/verify/", json!({ "token": refresh }));
    assert_eq!(verify().await, (StatusCode::OK, json!({})));

    let (status, _) = server
        .send(
            reqwest::Method::POST,
            "/api/user/password/",
            Some(&access),
            Some(json!({"old_password": "alice-password", "new_password": "n3w-horse-battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        verify().await,
        (
            StatusCode::BAD_REQUEST,
            json!({"non_field_errors": ["Token is blacklisted"]})
        )
    );
    assert_eq!(
        store.redis_healthy(),
        Some(true),
        "answered by the database"
    );
    let jti = token_field(&common::payload(&refresh), "jti");
    let mut redis = redis_at(&url).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("tollgate-test:denylist:{jti}"))
        .query_async(&mut redis)
        .await
        .expect("TTL");
    let lifetime = server.settings.refresh_token_lifetime.as_secs() as i64;
    assert!(
        (lifetime - 5..=lifetime).contains(&ttl),
        "TTL {ttl}, lifetime {lifetime}"
    );
    server.stop().await;
}

/// `tollgate changepassword` copies the tokens it blacklists into the Redis denylist of
/// REDIS_URL, so that servers trusting Redis refuse them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_changepassword_command_reaches_the_redis_denylist() {
    use common::binary::{create_user, log_in, run, text, tollgate, Served};
    let (_redis_server, url) = PrivateRedis::start_anywhere();
    let dir = tempfile::tempdir().expect("temp dir");
    let with_redis = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command
            .env("TOLLGATE_REDIS_URL", &url)
            .env("TOLLGATE_REDIS_KEY_PREFIX", "tollgate-test:")
            .env("TOLLGATE_BLACKLIST_AFTER_ROTATION", "true")
            .env("TOLLGATE_SIGNING_KEY", common::TEST_KEY);
        command
    };
    create_user(with_redis(&[]), "ann", "quantum-ferret-72");
    let served = Served::start(with_redis(&[])).await;
    // Ready once Redis is filled and trusted.
    served.until_ready().await;
    let client = reqwest::Client::new();
    let (_, refresh) = log_in(&served.base, "ann", "quantum-ferret-72").await;
    let verify = || async {
        let response = client
            .post(format!("{}/api/token/verify/", served.base))
            .json(&json!({ "token": refresh }))
            .send()
            .await
            .expect("sent");
        let status = response.status();
        (
            status,
            response.json::<serde_json::Value>().await.expect("JSON"),
        )
    };
    assert_eq!(verify().await, (StatusCode::OK, json!({})));

    let changed = run(with_redis(&["changepassword", "ann", "--no-input"])
        .env("TOLLGATE_NEW_PASSWORD", "n3w-horse-battery"));
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    assert!(
        !text(&changed.stderr).contains("does not answer"),
        "{}",
        text(&changed.stderr)
    );
    assert_eq!(
        verify().await,
        (
            StatusCode::BAD_REQUEST,
            json!({"non_field_errors": ["Token is blacklisted"]})
        )
    );
}

/// With REDIS_URL, failed logins count across the instances on that Redis: failures split
/// between two servers reach LOGIN_FAILURES_PER_ACCOUNT together, and both then answer 429;
/// a successful login on one clears the account on both. With Redis gone, each server's own
/// counts still hold the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_counted_across_instances() {
    let (redis_server, url) = PrivateRedis::start_anywhere();
    let start = || server_on_redis(&url, |s| s.login_failures_per_account = 4);
    let (one, two) = (start().await, start().await);
    for server in [&one, &two] {
        server.create_user("ann", "ann-password").await;
        server.create_user("bob", "bob-password").await;
    }
    for server in [&one, &two, &one] {
        assert_eq!(
            login(server, "ann", "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Logging in on the second server clears the three failures on both: the first server,
    // which saw two of them, allows three more and a login.
    assert_eq!(login(&two, "ann", "ann-password").await.0, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            login(&one, "ann", "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(login(&one, "ann", "ann-password").await.0, StatusCode::OK);
    // Four failures, two on each server: the account is at its limit everywhere; Bob is not.
    for server in [&two, &one, &two, &one] {
        assert_eq!(
            login(server, "ann", "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    for server in [&one, &two] {
        let (status, body) = login(server, "ann", "ann-password").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("Request was throttled.")),
            "{body}"
        );
        assert_eq!(login(server, "bob", "bob-password").await.0, StatusCode::OK);
    }
    drop(redis_server);
    for _ in 0..4 {
        assert_eq!(
            login(&one, "bob", "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&one, "bob", "bob-password").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    one.stop().await;
    two.stop().await;
}

async fn login(
    server: &TestServer,
    username: &str,
    password: &str,
) -> (StatusCode, serde_json::Value) {
    server
        .post_json(
            "/api/token/",
            json!({ "username": username, "password": password }),
        )
        .await
}

/// A rotated token found already blacklisted is copied into Redis again: if an instance
/// stopped between committing a rotation and copying it, the next presentation of the old
/// token repairs Redis, for verify and sliding checks on every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_rotated_token_is_copied_into_redis_again() {
    let (_redis_server, url) = PrivateRedis::start_anywhere();
    let server = server_on_redis(&url, |s| {
        s.rotate_refresh_tokens = true;
        s.blacklist_after_rotation = true;
    })
    .await;
    server.create_user("alice", "alice-password").await;
    let (refresh, _) = server.obtain_pair("alice", "alice-password").await;
    let (status, _) = server
        .post_json("/api/token/refresh/", json!({ "refresh": refresh }))
        .await;
    assert_eq!(status, StatusCode::OK);
    // The copy in Redis goes missing, as if the instance had stopped right after its commit.
    let key = format!(
        "tollgate-test:denylist:{}",
        token_field(&common::payload(&refresh), "jti")
    );
    let mut redis = redis_at(&url).await;
    redis::cmd("DEL")
        .arg(&key)
        .query_async::<()>(&mut redis)
        .await
        .expect("DEL");

    let refused = json!({"detail": "Token is blacklisted", "code": "token_not_valid"});
    assert_eq!(
        server
            .post_json("/api/token/refresh/", json!({ "refresh": refresh }))
            .await,
        (StatusCode::UNAUTHORIZED, refused)
    );
    let listed: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("EXISTS");
    assert!(listed, "the replay did not copy {key} back into Redis");
    assert_eq!(
        server
            .post_json("/api/token/verify/", json!({ "token": refresh }))
            .await,
        (
            StatusCode::BAD_REQUEST,
            json!({"non_field_errors": ["Token is blacklisted"]})
        )
    );
    server.stop().await;
}

/// Logging out writes the token to Redis before the database commits: an instance that stops
/// between the two cannot leave a logged-out token that instances trusting Redis still accept.
/// The test holds SQLite's write lock so that the logout waits in its database write, and
/// finds the jti in Redis meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_reaches_redis_before_the_database_commits() {
    use sqlx::Connection as _;

    let (_redis_server, url) = PrivateRedis::start_anywhere();
    let server = server_on_redis(&url, |_| {}).await;
    server.create_user("alice", "alice-password").await;
    let (refresh, _) = server.obtain_pair("alice", "alice-password").await;
    let key = format!(
        "tollgate-test:denylist:{}",
        token_field(&common::payload(&refresh), "jti")
    );

    let mut lock = sqlx::SqliteConnection::connect(&server.settings.database_url)
        .await
        .expect("opens the database");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .expect("takes the write lock");
    let logout = reqwest::Client::new()
        .post(server.url("/api/token/blacklist/"))
        .json(&json!({ "refresh": refresh }))
        .send();
    let logout = tokio::spawn(logout);
    let mut redis = redis_at(&url).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let listed: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .expect("EXISTS");
        if listed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{key} not in Redis while the database write waits"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!logout.is_finished(), "the database write did not wait");
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("releases the write lock");
    let answered = logout.await.expect("runs").expect("logout answered");
    assert_eq!(answered.status(), StatusCode::OK);
    server.stop().await;
}

/// A logout that reached Redis but not the database (its database write failed after the
/// Redis write) is completed when the token is presented again: the database then holds it,
/// so a Redis refilled from the database after a restart still refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_listed_in_redis_alone_reaches_the_database_when_presented_again() {
    let (_redis_server, url) = PrivateRedis::start_anywhere();
    let server = server_on_redis(&url, |_| {}).await;
    server.create_user("alice", "alice-password").await;
    let (refresh, _) = server.obtain_pair("alice", "alice-password").await;
    let jti = token_field(&common::payload(&refresh), "jti");
    let mut redis = redis_at(&url).await;
    redis::cmd("SET")
        .arg(format!("tollgate-test:denylist:{jti}"))
        .arg(1)
        .arg("EX")
        .arg(3600)
        .query_async::<()>(&mut redis)
        .await
        .expect("SET");
    let database = tollgate_store::Store::connect(
        &server.settings.database_url,
        tollgate_store::PoolConfig::default(),
    )
    .await
    .expect("opens the database");
    assert!(!database.is_blacklisted(&jti).await.expect("query"));

    assert_eq!(
        server
            .post_json("/api/token/blacklist/", json!({ "refresh": refresh }))
            .await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
        )
    );
    assert!(
        database.is_blacklisted(&jti).await.expect("query"),
        "the database does not hold the logged-out token"
    );
    server.stop().await;
}

/// Guesses sent together to two instances on one Redis get no more password checks than one
/// account's limit in all: each is admitted by one atomic step in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_on_two_instances_share_one_limit() {
    let (_redis_server, url) = PrivateRedis::start_anywhere();
    let start = || server_on_redis(&url, |s| s.login_failures_per_account = 10);
    let (one, two) = (start().await, start().await);
    for server in [&one, &two] {
        server.create_user("ann", "ann-password").await;
    }
    let guesses = || {
        (0..30)
            .map(|n| {
                let body = json!({"username": "ann", "password": format!("guess-{n}")});
                common::raw_request("POST", "/api/token/", &[], Some(&body))
            })
            .collect()
    };
    let (on_one, on_two) = tokio::join!(one.send_together(guesses()), two.send_together(guesses()));
    let answers: Vec<_> = on_one.into_iter().chain(on_two).collect();
    let checked = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, throttled), (10, 50), "{answers:?}");
    for server in [&one, &two] {
        assert_eq!(
            login(server, "ann", "ann-password").await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}
