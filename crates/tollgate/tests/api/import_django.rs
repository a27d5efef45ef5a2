//! `tollgate import-django` and the account commands, run as a user runs them (#3).

use crate::common;

use std::path::Path;

use common::binary::{create_user, run, text, tollgate, Served};
use common::payload;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;

/// The columns of Django's `auth_user` (django.contrib.auth, 4.x and 5.x), as Django's SQLite
/// backend creates them: datetimes are text in UTC.
const AUTH_USER_SQLITE: &str = "CREATE TABLE auth_user (
    id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    password varchar(128) NOT NULL,
    last_login datetime NULL,
    is_superuser bool NOT NULL,
    username varchar(150) NOT NULL UNIQUE,
    last_name varchar(150) NOT NULL,
    email varchar(254) NOT NULL,
    is_staff bool NOT NULL,
    is_active bool NOT NULL,
    date_joined datetime NOT NULL,
    first_name varchar(150) NOT NULL)";

/// Hashes written by Django's own hashers for "correct horse battery staple" (see
/// tollgate-core's password fixtures for how they were made).
const PBKDF2: &str = "pbkdf2_sha256$1000$saltsalt0$3FOIWq+8wztxFF0f9+QHX5gPK+0BKeH6elJMSfbkOIo=";
const ARGON2: &str = "argon2$argon2id$v=19$m=64,t=1,p=2$YXJnb25zYWx0MGFiY2RlZmdoaWo$h4YpnhBDlRKc+r0UVhMho1+cazNVqcbYURUyhVUQva4";
const BCRYPT_SHA256: &str =
    "bcrypt_sha256$$2b$04$abcdefghijklmnopqrst0eSJmDzZHV2RMUQ0nSxIQIePAr.CFNXxe";
const OLD_PASSWORD: &str = "correct horse battery staple";

/// (id, username, email, password, is_active, is_staff, date_joined, last_login)
type Row<'a> = (
    i64,
    &'a str,
    &'a str,
    &'a str,
    bool,
    bool,
    &'a str,
    Option<&'a str>,
);

const ROWS: &[Row<'static>] = &[
    (
        7,
        "ann",
        "ann@example.com",
        PBKDF2,
        true,
        true,
        "2021-03-04 05:06:07.123456",
        Some("2024-01-02 03:04:05"),
    ),
    (
        9,
        "bob",
        "bob@example.com",
        ARGON2,
        true,
        false,
        "2022-01-01 00:00:00",
        None,
    ),
    (
        12,
        "cid",
        "",
        BCRYPT_SHA256,
        true,
        false,
        "2022-06-01 12:00:00",
        None,
    ),
    (
        13,
        "dan",
        "dan@example.com",
        "!Xb3JqLwR0xUe4kYpQz7mVtA9sNc2HfGd1oEiKlMn",
        true,
        false,
        "2023-01-01 00:00:00",
        None,
    ),
    (
        14,
        "eve",
        "ANN@example.com",
        PBKDF2,
        true,
        false,
        "2023-02-01 00:00:00",
        None,
    ),
    (
        15,
        "fay",
        "fay@example.com",
        PBKDF2,
        false,
        false,
        "2023-03-01 00:00:00",
        None,
    ),
];

/// simplejwt's blacklist app as Django's SQLite backend creates it: the raw token beside its jti.
const TOKEN_BLACKLIST_SQLITE: [&str; 2] = [
    "CREATE TABLE token_blacklist_outstandingtoken (
        id integer NOT NULL PRIMARY KEY AUTOINCREMENT, token text NOT NULL,
        created_at datetime NULL, expires_at datetime NOT NULL,
        user_id integer NULL REFERENCES auth_user (id), jti varchar(255) NOT NULL UNIQUE)",
    "CREATE TABLE token_blacklist_blacklistedtoken (
        id integer NOT NULL PRIMARY KEY AUTOINCREMENT, blacklisted_at datetime NOT NULL,
        token_id bigint NOT NULL UNIQUE REFERENCES token_blacklist_outstandingtoken (id))",
];

/// (jti, expires in, blacklisted) of the tokens Django recorded for ann (id 7).
const DJANGO_TOKENS: [(&str, &str, bool); 3] = [
    ("dj-live", "+1 hour", false),
    ("dj-blacklisted", "+1 hour", true),
    ("dj-expired", "-1 hour", true),
];

/// A refresh token as Django signed it, with `key`.
fn django_refresh_token(jti: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims = json!({
        "token_type": "refresh", "exp": now + 3600, "iat": now, "jti": jti, "user_id": "7",
    });
    common::sign_with(common::TEST_KEY, &common::test_settings(), claims)
}

async fn django_sqlite(path: &Path) {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.expect("opens");
    sqlx::query(AUTH_USER_SQLITE)
        .execute(&mut db)
        .await
        .expect("table");
    for (id, username, email, password, active, staff, joined, last_login) in ROWS {
        sqlx::query(
            "INSERT INTO auth_user (id, password, last_login, is_superuser, username, last_name, \
             email, is_staff, is_active, date_joined, first_name) \
             VALUES (?, ?, ?, 0, ?, 'Last', ?, ?, ?, ?, 'First')",
        )
        .bind(id)
        .bind(password)
        .bind(last_login)
        .bind(username)
        .bind(email)
        .bind(staff)
        .bind(active)
        .bind(joined)
        .execute(&mut db)
        .await
        .expect("row");
    }
    for sql in TOKEN_BLACKLIST_SQLITE {
        sqlx::query(sql).execute(&mut db).await.expect("table");
    }
    for (jti, expires, blacklisted) in DJANGO_TOKENS {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO token_blacklist_outstandingtoken (token, created_at, expires_at, user_id, jti) \
             VALUES (?, datetime('now'), datetime('now', ?), 7, ?) RETURNING id",
        )
        .bind(django_refresh_token(jti))
        .bind(expires)
        .bind(jti)
        .fetch_one(&mut db)
        .await
        .expect("token row");
        if blacklisted {
            sqlx::query(
                "INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id) \
                 VALUES (datetime('now'), ?)",
            )
            .bind(id)
            .execute(&mut db)
            .await
            .expect("blacklist row");
        }
    }
    db.close().await.expect("closes");
}

/// The server at `base` (verifying with Django's key) refuses the token Django blacklisted
/// and refreshes the live one.
async fn django_tokens_are_honoured(base: &str) {
    let client = reqwest::Client::new();
    let refresh = |jti: &str| {
        client
            .post(format!("{base}/api/token/refresh/"))
            .json(&json!({"refresh": django_refresh_token(jti)}))
            .send()
    };
    let refused = refresh("dj-blacklisted").await.expect("sent");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.json::<Value>().await.expect("JSON"),
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
    );
    let live = refresh("dj-live").await.expect("sent");
    assert_eq!(live.status(), StatusCode::OK);
}

fn import(dir: &Path, source: &str) -> String {
    let output = run(tollgate(dir, &["import-django", "--database", source]));
    let progress = text(&output.stderr);
    assert!(output.status.success(), "{progress}");
    // Without a terminal, progress is plain lines on standard error; the last one is the total.
    assert!(progress.contains("6 of 6 users read"), "{progress}");
    text(&output.stdout)
}

/// Users imported from a Django SQLite file log in with their old passwords, keep their ids
/// and dates, and a second import imports nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_users_are_imported_once_and_log_in_with_their_old_passwords() {
    let dir = tempfile::tempdir().expect("temp dir");
    let django = dir.path().join("django.sqlite3");
    django_sqlite(&django).await;
    let source = django.display().to_string();

    let first = import(dir.path(), &source);
    assert!(
        first.starts_with("Imported 5, skipped 0 (already imported), failed 1."),
        "{first}"
    );
    assert!(
        first.contains("failed: eve: the email is taken by another user"),
        "{first}"
    );
    let tokens_line = "Imported 2 live tokens from token_blacklist (1 blacklisted); \
                       their raw tokens were not copied.";
    assert!(first.contains(tokens_line), "{first}");
    let second = import(dir.path(), &format!("sqlite://{source}"));
    assert!(
        second.starts_with("Imported 0, skipped 5 (already imported), failed 1."),
        "{second}"
    );
    assert!(second.contains(tokens_line), "{second}");

    // Tollgate verifies with Django's key: the token Django blacklisted stays refused, the
    // live one refreshes.
    let mut command = tollgate(dir.path(), &[]);
    command.env("TOLLGATE_SIGNING_KEY", common::TEST_KEY);
    let served = Served::start(command).await;
    let client = reqwest::Client::new();
    let login = |username: &'static str, password: &'static str| {
        let request = client
            .post(format!("{}/api/token/", served.base))
            .json(&json!({"username": username, "password": password}));
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    for (username, id) in [("ann", 7), ("bob", 9), ("cid", 12)] {
        let (status, body) = login(username, OLD_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{username}: {body}");
        let access = body["access"].as_str().expect("access");
        assert_eq!(payload(access)["user_id"], json!(id.to_string()));
        // The second login finds the argon2id hash written by the first.
        let (status, _) = login(username, OLD_PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = login(username, "wrong password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    django_tokens_are_honoured(&served.base).await;
    // Unusable passwords and inactive users stay out.
    for username in ["dan", "fay"] {
        let (status, _) = login(username, OLD_PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{username}");
    }
    let (_, body) = login("ann", OLD_PASSWORD).await;
    let access = body["access"].as_str().expect("access").to_owned();
    let me: Value = client
        .get(format!("{}/api/user/", served.base))
        .bearer_auth(&access)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        (&me["id"], &me["date_joined"], &me["first_name"]),
        (&json!(7), &json!("2021-03-04T05:06:07Z"), &json!("First"))
    );
    // New users get ids after the imported ones.
    let (status, body) = {
        let response = client
            .post(format!("{}/api/users/", served.base))
            .json(&json!({"username": "newbie", "password": "quantum-ferret-72"}))
            .send()
            .await
            .expect("sent");
        (
            response.status(),
            response.json::<Value>().await.expect("JSON"),
        )
    };
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["id"].as_i64().expect("id") > 15);
}

/// Imported while servers run on a Redis denylist they trust, a token that Django blacklisted
/// goes into Redis too, so that those servers refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_blacklisted_under_django_reach_a_running_redis_denylist() {
    use common::redis_server::PrivateRedis;
    let (_redis_server, url) = PrivateRedis::start_anywhere();
    let dir = tempfile::tempdir().expect("temp dir");
    let django = dir.path().join("django.sqlite3");
    django_sqlite(&django).await;
    let with_redis = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command
            .env("TOLLGATE_REDIS_URL", &url)
            .env("TOLLGATE_SIGNING_KEY", common::TEST_KEY);
        command
    };
    let served = Served::start(with_redis(&[])).await;
    // Ready once Redis is filled (with nothing yet) and trusted.
    served.until_ready().await;

    let output = run(with_redis(&[
        "import-django",
        "--database",
        &django.display().to_string(),
    ]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    django_tokens_are_honoured(&served.base).await;
}

/// A source that is not a Django database is a clear error, not a crash.
#[test]
fn a_source_without_auth_user_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nothing.sqlite3");
    let output = run(tollgate(
        dir.path(),
        &[
            "import-django",
            "--database",
            &missing.display().to_string(),
        ],
    ));
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("cannot read auth_user"),
        "{}",
        text(&output.stderr)
    );
}

/// changepassword, deactivate and activate act on the named user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_commands_change_passwords_and_activity() {
    let dir = tempfile::tempdir().expect("temp dir");
    create_user(tollgate(dir.path(), &[]), "ann", "quantum-ferret-72");

    let weak = run(
        tollgate(dir.path(), &["changepassword", "ann", "--no-input"])
            .env("TOLLGATE_NEW_PASSWORD", "123"),
    );
    assert!(!weak.status.success());
    assert!(
        text(&weak.stderr).contains("This password is too short."),
        "{}",
        text(&weak.stderr)
    );
    let changed = run(
        tollgate(dir.path(), &["changepassword", "ann", "--no-input"])
            .env("TOLLGATE_NEW_PASSWORD", "n3w-horse-battery"),
    );
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    assert!(text(&changed.stdout).contains("Password changed successfully for user 'ann'"));
    let unknown = run(tollgate(dir.path(), &["deactivate", "nobody"]));
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("user 'nobody' does not exist"));
    assert!(run(tollgate(dir.path(), &["deactivate", "ann"]))
        .status
        .success());

    let served = Served::start(tollgate(dir.path(), &[])).await;
    let client = reqwest::Client::new();
    let login = |password: &'static str| {
        let request = client
            .post(format!("{}/api/token/", served.base))
            .json(&json!({"username": "ann", "password": password}));
        async move { request.send().await.expect("sent").status() }
    };
    assert_eq!(login("n3w-horse-battery").await, StatusCode::UNAUTHORIZED);
    assert!(run(tollgate(dir.path(), &["activate", "ann"]))
        .status
        .success());
    assert_eq!(login("n3w-horse-battery").await, StatusCode::OK);
    assert_eq!(login("quantum-ferret-72").await, StatusCode::UNAUTHORIZED);
}

/// The same import from a Django PostgreSQL database, where datetimes are `timestamptz`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_users_are_imported_from_postgresql() {
    if !common::postgres_available().await {
        return;
    }
    let admin = std::env::var("TOLLGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("django_src_{}", tollgate_core::new_jti());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("admin connects");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("created");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    let mut db = sqlx::PgConnection::connect(&url).await.expect("connects");
    sqlx::query(
        "CREATE TABLE auth_user (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
         password varchar(128) NOT NULL, last_login timestamptz NULL, is_superuser boolean NOT NULL, \
         username varchar(150) NOT NULL UNIQUE, first_name varchar(150) NOT NULL, \
         last_name varchar(150) NOT NULL, email varchar(254) NOT NULL, is_staff boolean NOT NULL, \
         is_active boolean NOT NULL, date_joined timestamptz NOT NULL)",
    )
    .execute(&mut db)
    .await
    .expect("table");
    sqlx::query(
        "INSERT INTO auth_user (id, password, last_login, is_superuser, username, first_name, \
         last_name, email, is_staff, is_active, date_joined) VALUES \
         (3, $1, NULL, true, 'ann', 'Ann', 'Lee', 'ann@example.com', true, true, '2021-03-04 05:06:07.5+00'), \
         (4, $2, '2024-01-01 00:00:00+00', false, 'bob', '', '', '', false, true, '2022-01-01 00:00:00+00')",
    )
    .bind(PBKDF2)
    .bind(ARGON2)
    .execute(&mut db)
    .await
    .expect("rows");
    db.close().await.expect("closes");

    let dir = tempfile::tempdir().expect("temp dir");
    let command = |dir: &Path| run(tollgate(dir, &["import-django", "--database", &url]));
    let (first, second) = (command(dir.path()), command(dir.path()));
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("dropped");
    assert!(first.status.success(), "{}", text(&first.stderr));
    let (first, second) = (text(&first.stdout), text(&second.stdout));
    assert!(
        first.starts_with("Imported 2, skipped 0 (already imported), failed 0."),
        "{first}"
    );
    assert!(
        second.starts_with("Imported 0, skipped 2 (already imported), failed 0."),
        "{second}"
    );

    let served = Served::start(tollgate(dir.path(), &[])).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/token/", served.base))
        .json(&json!({"username": "bob", "password": OLD_PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        payload(body["access"].as_str().expect("access"))["user_id"],
        "4"
    );
}

/// Rows per page of an import, as `import-django` reads and writes them.
const PAGE: i64 = tollgate_store::DJANGO_IMPORT_PAGE as i64;

/// A Django SQLite database of `2 * PAGE + 100` users, `userN` with `userN@example.com`, and a
/// live token for each but every 41st (expired), every 10th blacklisted; some rows collide
/// with others of their page or of an earlier one. Returns the failures that importing it
/// reports, in id order.
async fn django_sqlite_of_pages(path: &Path) -> Vec<String> {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.expect("opens");
    let users = 2 * PAGE + 100;
    let mut statements = vec![
        AUTH_USER_SQLITE.to_owned(),
        TOKEN_BLACKLIST_SQLITE[0].to_owned(),
        TOKEN_BLACKLIST_SQLITE[1].to_owned(),
        format!(
            "INSERT INTO auth_user (id, password, last_login, is_superuser, username, last_name, \
             email, is_staff, is_active, date_joined, first_name) \
             WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < {users}) \
             SELECT id, '{PBKDF2}', NULL, 0, 'user' || id, '', 'user' || id || '@example.com', 0, 1, \
             '2022-01-01 00:00:00', '' FROM n"
        ),
        format!(
            "INSERT INTO token_blacklist_outstandingtoken (id, token, created_at, expires_at, \
             user_id, jti) \
             WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < {users}) \
             SELECT id, 'eyJ', datetime('now'), \
             datetime('now', CASE WHEN id % 41 = 0 THEN '-1 hour' ELSE '+1 hour' END), id, \
             'jti-' || id FROM n"
        ),
        "INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id) \
         SELECT datetime('now'), id FROM token_blacklist_outstandingtoken WHERE id % 10 = 0"
            .to_owned(),
    ];
    // (id, username, email, the failure reported)
    let collisions = [
        // Inside the first page: another user's email address as username.
        (
            5,
            "user3@EXAMPLE.com".to_owned(),
            "user5@example.com".to_owned(),
            "the username is another user's email".to_owned(),
        ),
        // Inside the first page: a username that Django's normal form makes another's.
        (
            10,
            "ｕｓｅｒ9".to_owned(),
            "user10@example.com".to_owned(),
            "the username is taken by another user (id 9)".to_owned(),
        ),
        // The first row of the second page: the last one of the first page's email.
        (
            PAGE + 1,
            format!("user{}", PAGE + 1),
            format!("USER{PAGE}@example.com"),
            "the email is taken by another user".to_owned(),
        ),
        // In the second page: an email of the first page.
        (
            PAGE + 10,
            format!("user{}", PAGE + 10),
            "User7@Example.COM".to_owned(),
            "the email is taken by another user".to_owned(),
        ),
        // In the third page: a username of the second page as email.
        (
            2 * PAGE + 5,
            format!("user{}", 2 * PAGE + 5),
            format!("USER{}", PAGE + 500),
            "the email is another user's username".to_owned(),
        ),
        // The email of row 5, which failed: free.
        (
            2 * PAGE + 6,
            format!("user{}", 2 * PAGE + 6),
            "user5@example.com".to_owned(),
            String::new(),
        ),
    ];
    let mut failures = Vec::new();
    for (id, username, email, failure) in collisions {
        statements.push(format!(
            "UPDATE auth_user SET username = '{username}', email = '{email}' WHERE id = {id}"
        ));
        if !failure.is_empty() {
            let shown = tollgate_core::identity::normalize_username(&username);
            failures.push(format!("  failed: {shown}: {failure}"));
        }
    }
    for sql in statements {
        sqlx::query(&sql).execute(&mut db).await.expect(&sql);
    }
    db.close().await.expect("closes");
    failures
}

on_both_backends! {
    /// A source of several pages imports as row by row would: collisions inside a page and
    /// across pages fail with their reasons, the rest go in, tokens of every page arrive (the
    /// blacklisted ones in Redis too), and a second run imports nothing twice.
    async fn a_source_of_several_pages_imports_as_row_by_row(backend) {
        use common::redis_server::PrivateRedis;
        let (_redis_server, redis_url) = PrivateRedis::start_anywhere();
        let database = common::TestDatabase::create(backend).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let django = dir.path().join("django.sqlite3");
        let failures = django_sqlite_of_pages(&django).await;
        let users = 2 * PAGE + 100;
        let live = users - users / 41;
        let blacklisted = (1..=users).filter(|id| id % 10 == 0 && id % 41 != 0).count();
        let import = || {
            let mut command = tollgate(
                dir.path(),
                &["import-django", "--database", &django.display().to_string()],
            );
            command
                .env("DATABASE_URL", database.url())
                .env("TOLLGATE_REDIS_URL", &redis_url);
            let output = common::binary::run(command);
            let progress = text(&output.stderr);
            assert!(output.status.success(), "{progress}");
            assert!(progress.contains(&format!("{users} of {users} users read")), "{progress}");
            assert!(progress.contains(&format!("{live} of {live} tokens read")), "{progress}");
            text(&output.stdout)
        };
        let failed = failures.len() as i64;
        let listed = failures.join("\n");
        let tokens_line = format!(
            "Imported {live} live tokens from token_blacklist ({blacklisted} blacklisted); \
             their raw tokens were not copied."
        );

        let first = import();
        let summary = format!(
            "Imported {}, skipped 0 (already imported), failed {failed}.\n{listed}\n{tokens_line}\n",
            users - failed
        );
        assert_eq!(first, summary);
        let second = import();
        let summary = format!(
            "Imported 0, skipped {} (already imported), failed {failed}.\n{listed}\n{tokens_line}\n",
            users - failed
        );
        assert_eq!(second, summary);

        let store = tollgate_store::Store::connect(
            &database.url(),
            tollgate_store::PoolConfig::default(),
        )
        .await
        .expect("connects");
        assert_eq!(
            store.token_counts().await.expect("counts"),
            (live, blacklisted as i64)
        );
        let last = store
            .find_user(tollgate_store::UserField::Id, &users.to_string())
            .await
            .expect("query")
            .expect("the last user is imported");
        assert_eq!(last.username, format!("user{users}"));
        store.close().await;
        // Every live blacklisted jti, and the marker of a filled denylist.
        let redis = redis::Client::open(redis_url.as_str()).expect("URL");
        let mut connection = redis
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("tollgate:denylist:jti-*")
            .query_async(&mut connection)
            .await
            .expect("KEYS");
        assert_eq!(keys.len(), blacklisted);
    }
}
