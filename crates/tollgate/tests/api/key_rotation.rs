//! Signing-key rotation with real `tollgate` processes: `tollgate keys rotate | list | prune`,
//! servers that pick up a rotation by polling or on SIGHUP, retired keys that verify until their
//! `verify_until` and no longer, and keys that are stored only encrypted.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::binary::{run, text, tollgate, Served};
use common::{Backend, TestDatabase};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_core::{unix_now, Algorithm, KeysEncryptionKey};

/// The KEYS_ENCRYPTION_KEY of these tests.
const SEALING: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";

/// An ES256 pair written by `tollgate keygen` into `dir`: (private PEM, public PEM).
fn es256_pair(dir: &Path) -> (String, String) {
    let out = dir.join("configured");
    let made = run(tollgate(
        dir,
        &[
            "keygen",
            "--alg",
            "ES256",
            "--out",
            out.to_str().expect("utf-8"),
        ],
    ));
    assert!(made.status.success(), "{}", text(&made.stderr));
    let read = |name: &str| std::fs::read_to_string(out.join(name)).expect("key file");
    (read("signing_key.pem"), read("verifying_key.pem"))
}

/// A `tollgate` command on `database_url` with the configured ES256 key, the encryption key
/// and token lifetimes of `lifetime`.
fn command(
    dir: &Path,
    database_url: &str,
    (private, public): &(String, String),
    lifetime: &str,
    args: &[&str],
) -> Command {
    let mut command = tollgate(dir, args);
    command
        .env("DATABASE_URL", database_url)
        .env("TOLLGATE_ALGORITHM", "ES256")
        .env("TOLLGATE_SIGNING_KEY", private)
        .env("TOLLGATE_VERIFYING_KEY", public)
        .env("TOLLGATE_KEYS_ENCRYPTION_KEY", SEALING)
        .env("TOLLGATE_ACCESS_TOKEN_LIFETIME", lifetime)
        .env("TOLLGATE_REFRESH_TOKEN_LIFETIME", lifetime)
        .env("TOLLGATE_SLIDING_TOKEN_LIFETIME", lifetime)
        .env("TOLLGATE_KEYS_RELOAD_INTERVAL", "1s")
        .env("TOLLGATE_METRICS_ENABLED", "true");
    command
}

/// The value of one series of `/metrics`, e.g.
/// `tollgate_signing_key_reloads_total{trigger="SIGHUP",outcome="rotated"}`; 0 when absent.
async fn metric(base: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn post(base: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The `kid`s the server publishes, in order.
async fn published(base: &str) -> Vec<String> {
    let body: Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON");
    let keys = body["keys"].as_array().expect("a key list");
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "published {private}: {key}");
        }
    }
    keys.iter()
        .map(|key| key["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// Waits (up to 10 s) until the server publishes exactly `kids`.
async fn until_published(base: &str, kids: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = published(base).await;
        if now == kids {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{base} publishes {now:?}, not {kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("a kid")
}

async fn verifies(base: &str, token: &str) -> StatusCode {
    post(base, "/api/token/verify/", json!({ "token": token }))
        .await
        .0
}

/// Two servers on one PostgreSQL database follow `tollgate keys rotate`: one by polling, one on
/// SIGHUP (its polling is off). Tokens from before the rotation keep verifying on both, new
/// tokens carry the new kid, and the JWKS lists both keys; once the old key's verify_until has
/// passed, its tokens are refused and it leaves the JWKS. The database holds the new private
/// key only encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_follow_a_rotation_until_the_old_key_retires() {
    if !common::postgres_available().await {
        return;
    }
    let database = TestDatabase::create(Backend::Postgres).await;
    let url = database.url();
    let dir = tempfile::tempdir().expect("temp dir");
    let pair = es256_pair(dir.path());
    // Tokens live 15 s; the retired key then verifies for 15 s + KEYS_RELOAD_INTERVAL (1 s):
    // long enough for the steps before the wait on a busy machine, short enough to wait out.
    let lifetime = "15s";
    let tollgate = |args: &[&str]| command(dir.path(), &url, &pair, lifetime, args);
    let created = run(
        tollgate(&["createuser", "--username", "alice", "--no-input"])
            .env("TOLLGATE_USER_PASSWORD", "alice-password"),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));

    let polling = Served::start(tollgate(&[])).await;
    let mut signalled = tollgate(&[]);
    signalled.env("TOLLGATE_KEYS_RELOAD_INTERVAL", "0");
    let signalled = Served::start(signalled).await;

    let old_kid = published(&polling.base).await;
    assert_eq!(old_kid.len(), 1);
    let old_kid = old_kid[0].clone();
    assert_eq!(published(&signalled.base).await, [old_kid.as_str()]);
    let (status, pair_before) = post(
        &polling.base,
        "/api/token/",
        json!({"username": "alice", "password": "alice-password"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pair_before}");
    let access_before = pair_before["access"].as_str().expect("access").to_owned();
    let refresh_before = pair_before["refresh"].as_str().expect("refresh").to_owned();
    assert_eq!(kid_of(&access_before), old_kid);
    // A token of the old key that outlives the key itself, to see the key's end and not the
    // token's: signed with the configured private key, as the server signs.
    let user_id = common::payload(&access_before)["user_id"].clone();
    let long_lived = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(old_kid.clone()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256)
        },
        &json!({"token_type": "access", "exp": unix_now() + 3600, "iat": unix_now(),
                "jti": tollgate_core::new_jti(), "user_id": user_id}),
        &jsonwebtoken::EncodingKey::from_ec_pem(pair.0.as_bytes()).expect("PEM"),
    )
    .expect("signs");

    let rotated = run(tollgate(&["keys", "rotate"]));
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    let new_kid = text(&rotated.stdout).trim().to_owned();
    assert_ne!(new_kid, old_kid);
    let pid = signalled.child.id().expect("running").to_string();
    assert!(run(Command::new("kill").args(["-HUP", &pid]))
        .status
        .success());
    for server in [&signalled, &polling] {
        until_published(&server.base, &[&new_kid, &old_kid]).await;
    }
    // Each read of the stored keys is counted by what asked for it and what came of it.
    let reloads = "tollgate_signing_key_reloads_total";
    assert_eq!(
        metric(
            &signalled.base,
            &format!("{reloads}{{trigger=\"SIGHUP\",outcome=\"rotated\"}}")
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            &polling.base,
            &format!("{reloads}{{trigger=\"interval\",outcome=\"rotated\"}}")
        )
        .await,
        1.0
    );

    for server in [&polling, &signalled] {
        for token in [&access_before, &long_lived] {
            assert_eq!(
                verifies(&server.base, token).await,
                StatusCode::OK,
                "{}",
                server.base
            );
        }
    }
    // New tokens, from a login or a refresh with an old refresh token, carry the new kid and
    // verify on the other server.
    let (status, refreshed) = post(
        &signalled.base,
        "/api/token/refresh/",
        json!({ "refresh": refresh_before }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let access_after = refreshed["access"].as_str().expect("access").to_owned();
    let (status, login) = post(
        &signalled.base,
        "/api/token/",
        json!({"username": "alice", "password": "alice-password"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for token in [&access_after, login["access"].as_str().expect("access")] {
        assert_eq!(kid_of(token), new_kid);
        assert_eq!(verifies(&polling.base, token).await, StatusCode::OK);
    }

    // What the database holds: the new private key sealed, nothing of the configured one.
    let rows = stored_rows(&url).await;
    let row = |kid: &str| {
        rows.iter()
            .find(|r| r.0 == kid)
            .unwrap_or_else(|| panic!("no row {kid}"))
            .clone()
    };
    let (_, public_key, sealed, verify_until) = row(&new_kid);
    let sealed = sealed.expect("the new key is stored sealed");
    assert!(!sealed.contains("PRIVATE KEY") && sealed.starts_with("v1."));
    assert!(public_key.expect("public key").contains("PUBLIC KEY"));
    assert_eq!(verify_until, None);
    let wrong = KeysEncryptionKey::parse(&"ab".repeat(32)).expect("valid");
    assert!(wrong.open(&new_kid, Algorithm::ES256, &sealed).is_err());
    let right = KeysEncryptionKey::parse(SEALING).expect("valid");
    let opened = right
        .open(&new_kid, Algorithm::ES256, &sealed)
        .expect("opens with the setting");
    assert!(opened.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
    let (_, _, configured_sealed, old_until) = row(&old_kid);
    assert_eq!(
        configured_sealed, None,
        "SIGNING_KEY never enters the database"
    );
    let private_body: String = pair.0.lines().filter(|l| !l.starts_with("-----")).collect();
    for (kid, public, sealed, _) in &rows {
        for text in [Some(kid), public.as_ref(), sealed.as_ref()]
            .into_iter()
            .flatten()
        {
            assert!(
                !text.contains(&private_body[..40]),
                "the configured private key is stored"
            );
        }
    }

    // Past the old key's verify_until: its tokens are refused and it is no longer published.
    let old_until = old_until.expect("the retired key has an end");
    assert!(
        old_until > unix_now(),
        "the test ran past verify_until too early"
    );
    let wait = u64::try_from(old_until + 1 - unix_now()).unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    for server in [&polling, &signalled] {
        until_published(&server.base, &[&new_kid]).await;
        assert_eq!(
            verifies(&server.base, &long_lived).await,
            StatusCode::UNAUTHORIZED,
            "{}",
            server.base
        );
    }

    let listed = run(tollgate(&["keys", "list"]));
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    assert!(
        listing.contains(&format!("{new_kid}  ES256  active")),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("{old_kid}  ES256  expired")),
        "{listing}"
    );
    let pruned = run(tollgate(&["keys", "prune"]));
    assert!(pruned.status.success(), "{}", text(&pruned.stderr));
    assert_eq!(text(&pruned.stdout).trim(), old_kid);
    assert_eq!(stored_rows(&url).await.len(), 1);
    // Most reads on the interval find nothing new.
    assert!(
        metric(
            &polling.base,
            &format!("{reloads}{{trigger=\"interval\",outcome=\"unchanged\"}}")
        )
        .await
            >= 1.0
    );
}

/// (kid, public_key, sealed_key, verify_until) of every stored key.
async fn stored_rows(url: &str) -> Vec<(String, Option<String>, Option<String>, Option<i64>)> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url).await.expect("connects");
    let rows = sqlx::query_as("SELECT kid, public_key, sealed_key, verify_until FROM signing_keys")
        .fetch_all(&mut connection)
        .await
        .expect("reads");
    let _ = connection.close().await;
    rows
}

/// Rotation needs KEYS_ENCRYPTION_KEY, and refuses one the stored keys were not sealed with;
/// a server without it does not start once keys are stored; `keys list` shows no key material;
/// `keys reseal` moves the stored keys to a new encryption key.
#[test]
fn rotation_needs_the_encryption_key_it_was_sealed_with() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command.env(
            "TOLLGATE_SIGNING_KEY",
            "an-hmac-signing-key-for-the-cli-test-0123456789",
        );
        command
    };
    let refused = run(plain(&["keys", "rotate"]));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("KEYS_ENCRYPTION_KEY is not set"),
        "{}",
        text(&refused.stderr)
    );
    let sealed = |args: &[&str], key: &str| {
        let mut command = plain(args);
        command.env("TOLLGATE_KEYS_ENCRYPTION_KEY", key);
        command
    };
    let rotated = run(sealed(&["keys", "rotate", "--alg", "EdDSA"], SEALING));
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    let kid = text(&rotated.stdout).trim().to_owned();
    let other = "1".repeat(64);
    let mismatch = run(sealed(&["keys", "rotate"], &other));
    assert_eq!(mismatch.status.code(), Some(1));
    assert!(
        text(&mismatch.stderr).contains("does not decrypt"),
        "{}",
        text(&mismatch.stderr)
    );
    let bad_alg = run(sealed(&["keys", "rotate", "--alg", "none"], SEALING));
    assert_eq!(bad_alg.status.code(), Some(2));

    let without = run(plain(&["serve", "--bind", "127.0.0.1:0"]));
    assert_eq!(without.status.code(), Some(1));
    assert!(
        text(&without.stderr).contains("set KEYS_ENCRYPTION_KEY"),
        "{}",
        text(&without.stderr)
    );

    // The second rotation keeps the algorithm of the key signing now.
    let again = run(sealed(&["keys", "rotate"], SEALING));
    assert!(again.status.success(), "{}", text(&again.stderr));
    let active = text(&again.stdout).trim().to_owned();

    // `tollgate token` signs with the active stored key.
    let created = run(
        sealed(&["createuser", "--username", "bob", "--no-input"], SEALING)
            .env("TOLLGATE_USER_PASSWORD", "bob-password-long"),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let minted = run(sealed(&["token", "--user", "bob"], SEALING));
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    let pair: Value = serde_json::from_slice(&minted.stdout).expect("JSON");
    for name in ["refresh", "access"] {
        let token = pair[name].as_str().expect("a token");
        assert_eq!(kid_of(token), active);
        assert_eq!(
            jsonwebtoken::decode_header(token).expect("header").alg,
            jsonwebtoken::Algorithm::EdDSA
        );
    }
    let listed = run(plain(&["keys", "list"]));
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 4, "{listing}");
    assert!(lines[0].starts_with("KID"), "{listing}");
    assert!(lines[1].contains("EdDSA  active"), "{listing}");
    assert!(
        lines[2].starts_with(&kid) && lines[2].contains("EdDSA  retired"),
        "{listing}"
    );
    assert!(lines[3].contains("HS256  retired") && lines[3].ends_with("SIGNING_KEY"));
    assert!(
        !listing.contains("v1.") && !listing.contains("BEGIN"),
        "{listing}"
    );
    assert!(!listing.contains("an-hmac-signing-key"), "{listing}");

    // Replacing the encryption key: the new one as KEYS_ENCRYPTION_KEY, the old one as
    // KEYS_PREVIOUS_ENCRYPTION_KEY, then `keys reseal`; afterwards the new key alone suffices
    // and the old one no longer opens anything.
    let next = "c3".repeat(32);
    let both = |args: &[&str]| {
        let mut command = sealed(args, &next);
        command.env("TOLLGATE_KEYS_PREVIOUS_ENCRYPTION_KEY", SEALING);
        command
    };
    let resealed = run(both(&["keys", "reseal"]));
    assert!(resealed.status.success(), "{}", text(&resealed.stderr));
    let mut kids: Vec<String> = text(&resealed.stdout).lines().map(str::to_owned).collect();
    kids.sort();
    let mut expected = vec![kid.clone(), active.clone()];
    expected.sort();
    assert_eq!(kids, expected, "both stored keys, not the configured one");
    let again = run(both(&["keys", "reseal"]));
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), "", "nothing left to re-encrypt");
    let with_new = run(sealed(&["keys", "rotate"], &next));
    assert!(with_new.status.success(), "{}", text(&with_new.stderr));

    // A retired key ended early, as for a key suspected leaked; the active one cannot be.
    let expired = run(plain(&["keys", "expire", &kid]));
    assert!(expired.status.success(), "{}", text(&expired.stderr));
    let listed = text(&run(plain(&["keys", "list"])).stdout);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&kid))
        .expect("listed");
    assert!(line.contains("EdDSA  expired"), "{listed}");
    let newest = listed.lines().nth(1).expect("the active key");
    let newest_kid = newest.split_whitespace().next().expect("kid");
    let refused = run(plain(&["keys", "expire", newest_kid]));
    assert_eq!(refused.status.code(), Some(1), "{listed}");
    assert!(text(&refused.stderr).contains("rotate first"));
    let with_old = run(sealed(&["keys", "rotate"], SEALING));
    assert_eq!(with_old.status.code(), Some(1));
    assert!(
        text(&with_old.stderr).contains("does not decrypt"),
        "{}",
        text(&with_old.stderr)
    );
}

/// `tollgate keys list` while a pre-published key waits: the next key shows when it signs, the
/// key signing now until when it verifies, both as `keys rotate` printed them.
#[test]
fn keys_list_shows_when_the_next_key_signs_and_the_old_one_stops_verifying() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sealed = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command
            .env(
                "TOLLGATE_SIGNING_KEY",
                "an-hmac-signing-key-for-the-cli-test-0123456789",
            )
            .env("TOLLGATE_KEYS_ENCRYPTION_KEY", SEALING);
        command
    };
    let staged = run(sealed(&["keys", "rotate", "--publish-first", "1h"]));
    assert!(staged.status.success(), "{}", text(&staged.stderr));
    let next_kid = text(&staged.stdout).trim().to_owned();
    let said = text(&staged.stderr);
    let after = |marker: &str, end: char| {
        let start = said
            .find(marker)
            .unwrap_or_else(|| panic!("{marker:?} in {said}"))
            + marker.len();
        said[start..]
            .split(end)
            .next()
            .expect("a time")
            .trim()
            .to_owned()
    };
    let signs_from = after("signs from ", ';');
    let verify_until = after("verifies until ", '\n');

    let listed = run(sealed(&["keys", "list"]));
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    let mut lines = listing.lines();
    let header: Vec<&str> = lines
        .next()
        .expect("a header")
        .split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "KID",
            "ALG",
            "STATE",
            "CREATED",
            "SIGNS FROM",
            "VERIFY UNTIL",
            "SECRET"
        ],
        "{listing}"
    );
    let rows: Vec<Vec<&str>> = lines
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{listing}");
    let next = rows
        .iter()
        .find(|row| row[0] == next_kid)
        .expect("the next key");
    assert_eq!(next[1..3], ["HS256", "next"], "{listing}");
    assert_eq!(
        (next[4], next[5], next[6]),
        (signs_from.as_str(), "-", "encrypted"),
        "{listing}"
    );
    let current = rows
        .iter()
        .find(|row| row[0] != next_kid)
        .expect("the key signing now");
    assert_eq!(current[2], "active", "{listing}");
    assert_eq!(
        (current[4], current[5], current[6]),
        ("-", verify_until.as_str(), "SIGNING_KEY"),
        "{listing}"
    );
    assert!(
        signs_from.ends_with('Z') && verify_until.ends_with('Z'),
        "{said}"
    );
}

on_both_backends! {
    /// `tollgate keys rotate --publish-first`: the key set lists the next key (after the one
    /// signing) while tokens are still signed with the old key, for at least that long, so
    /// that a key-set client caching the set (PyJWT's PyJWKClient) knows the new `kid` before
    /// it sees it; then new tokens carry the new `kid`, and the old key's tokens still verify.
    /// No other rotation is accepted meanwhile.
    async fn a_pre_published_key_is_in_the_key_set_before_it_signs(backend) {
        let database = TestDatabase::create(backend).await;
        let url = database.url();
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = es256_pair(dir.path());
        let tollgate = |args: &[&str]| command(dir.path(), &url, &pair, "5m", args);
        let created = common::binary::run(
            tollgate(&["createuser", "--username", "alice", "--no-input"])
                .env("TOLLGATE_USER_PASSWORD", "alice-password"),
        );
        assert!(created.status.success(), "{}", text(&created.stderr));
        let served = Served::start(tollgate(&[])).await;
        let login = || async {
            let (status, body) = post(&served.base, "/api/token/",
                json!({"username": "alice", "password": "alice-password"})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["access"].as_str().expect("access").to_owned()
        };
        let before = login().await;
        let old_kid = kid_of(&before);

        let publish_first = Duration::from_secs(3);
        let staged = common::binary::run(tollgate(&["keys", "rotate", "--publish-first", "3s"]));
        assert!(staged.status.success(), "{}", text(&staged.stderr));
        let new_kid = text(&staged.stdout).trim().to_owned();
        assert!(text(&staged.stderr).contains("is published now and signs from"), "{}", text(&staged.stderr));
        until_published(&served.base, &[&old_kid, &new_kid]).await;
        let seen_published = Instant::now();
        assert_eq!(kid_of(&login().await), old_kid, "published, not signing yet");
        let listed = common::binary::run(tollgate(&["keys", "list"]));
        let listing = text(&listed.stdout);
        let state_of = |kid: &str| {
            listing.lines().find(|line| line.starts_with(kid))
                .and_then(|line| line.split_whitespace().nth(2))
                .map(str::to_owned)
        };
        assert_eq!(state_of(&new_kid).as_deref(), Some("next"), "{listing}");
        assert_eq!(state_of(&old_kid).as_deref(), Some("active"), "{listing}");
        let again = common::binary::run(tollgate(&["keys", "rotate"]));
        assert_eq!(again.status.code(), Some(1));
        assert!(text(&again.stderr).contains("A pre-published key waits to sign"), "{}", text(&again.stderr));

        // Every token until the switch carries the old kid; the first with the new one comes
        // no sooner than `publish_first` after the key was published.
        let deadline = Instant::now() + Duration::from_secs(20);
        let after = loop {
            let access = login().await;
            if kid_of(&access) == new_kid {
                break access;
            }
            assert_eq!(kid_of(&access), old_kid);
            assert!(Instant::now() < deadline, "the server never signed with {new_kid}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let published_for = seen_published.elapsed();
        assert!(
            published_for + Duration::from_millis(300) >= publish_first,
            "signed with the new key {published_for:?} after publishing it"
        );
        until_published(&served.base, &[&new_kid, &old_kid]).await;
        for token in [&before, &after] {
            assert_eq!(verifies(&served.base, token).await, StatusCode::OK);
        }
        // Once the new key signs, the next rotation is accepted again.
        let rotated = common::binary::run(tollgate(&["keys", "rotate"]));
        assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    }

    /// Rotations run at once from several places leave exactly one active key: each either
    /// succeeds, retiring the key active when it committed, or fails with KeyRotationRace and
    /// changes nothing.
    async fn concurrent_rotations_leave_one_active_key(backend) {
        use tollgate_store::{PoolConfig, SigningKeyRecord, Store, StoreError};
        let database = TestDatabase::create(backend).await;
        let store = Store::connect(&database.url(), PoolConfig::default())
            .await
            .expect("connects");
        store.migrate().await.expect("migrates");
        let record = |kid: String, sealed: bool| SigningKeyRecord {
            kid,
            algorithm: "ES256".to_owned(),
            public_key: Some("public".to_owned()),
            sealed_key: sealed.then(|| "v1.sealed".to_owned()),
            created_at: 100,
            retired_at: None,
            verify_until: None,
            signs_from: None,
        };
        let configured = record("configured".to_owned(), false);
        for round in 0..3 {
            let attempts = (0..4).map(|n| {
                let (store, configured) = (store.clone(), configured.clone());
                let new = record(format!("key-{round}-{n}"), true);
                tokio::spawn(async move {
                    store.rotate_signing_key(&new, &configured, 100, 100, 200).await
                })
            });
            for outcome in join_tasks(attempts).await {
                match outcome {
                    Ok(_) | Err(StoreError::KeyRotationRace) => {}
                    Err(err) => panic!("{err}"),
                }
            }
            let rows = store.signing_keys().await.expect("lists");
            let active: Vec<&SigningKeyRecord> =
                rows.iter().filter(|r| r.retired_at.is_none()).collect();
            assert_eq!(active.len(), 1, "{rows:#?}");
            assert!(active[0].sealed_key.is_some());
            assert!(rows
                .iter()
                .filter(|r| r.retired_at.is_some())
                .all(|r| r.verify_until == Some(200)));
            assert_eq!(
                rows.iter().filter(|r| r.kid == "configured").count(),
                1,
                "the configured key is recorded once"
            );
        }
        store.close().await;
    }
}

/// Waits for every task and returns their outcomes.
async fn join_tasks<T>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut outcomes = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        outcomes.push(task.await.expect("task"));
    }
    outcomes
}
