//! The `tollgate` binary, run as a user runs it: subcommands, settings from the environment,
//! and the seeds' curl sequence against `tollgate serve`.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::binary::{run, text, tollgate, tollgate_without_create, Served};
use common::payload;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn create_superuser(dir: &Path, username: &str, password: &str) -> Output {
    run(tollgate(
        dir,
        &[
            "createsuperuser",
            "--username",
            username,
            "--email",
            "a@example.com",
            "--no-input",
        ],
    )
    .env("TOLLGATE_SUPERUSER_PASSWORD", password))
}

#[test]
fn help_is_available_for_every_subcommand() {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in [
        "serve",
        "migrate",
        "createsuperuser",
        "createuser",
        "token",
        "flushexpiredtokens",
        "check",
        "keygen",
        "import-django",
        "changepassword",
        "activate",
        "deactivate",
        "events",
        "unlock",
        "deleteuser",
        "users",
    ] {
        let output = run(tollgate(dir.path(), &[sub, "--help"]));
        assert!(output.status.success(), "{sub}: {}", text(&output.stderr));
        assert!(text(&output.stdout).contains("Usage: tollgate"), "{sub}");
    }
    let output = run(tollgate(dir.path(), &["no-such-command"]));
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn completions_are_printed_for_common_shells() {
    let dir = tempfile::tempdir().expect("temp dir");
    for shell in ["bash", "zsh", "fish"] {
        let output = run(tollgate(dir.path(), &["completions", shell]));
        assert!(output.status.success(), "{shell}: {}", text(&output.stderr));
        let script = text(&output.stdout);
        assert!(
            script.contains("createsuperuser") && script.contains("flushexpiredtokens"),
            "{shell}"
        );
    }
}

#[test]
fn createsuperuser_then_token_for_that_user() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = create_superuser(dir.path(), "admin", "s3cret-pass");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("Superuser created successfully: admin"));

    let again = create_superuser(dir.path(), "admin", "s3cret-pass");
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains(
            "the user was not created: username: A user with that username already exists."
        ),
        "{}",
        text(&again.stderr)
    );

    let output = run(tollgate(dir.path(), &["token", "--user", "admin"])
        .env("TOLLGATE_ACCESS_TOKEN_LIFETIME", "2m"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let pair: Value = serde_json::from_slice(&output.stdout).expect("JSON pair");
    let access = payload(pair["access"].as_str().expect("access"));
    assert_eq!(access["token_type"], "access");
    assert_eq!(access["user_id"], "1");
    assert_eq!(
        access["exp"].as_i64().expect("exp") - access["iat"].as_i64().expect("iat"),
        120
    );
    assert_eq!(
        payload(pair["refresh"].as_str().expect("refresh"))["token_type"],
        "refresh"
    );

    let missing = run(tollgate(dir.path(), &["token", "--user", "nobody"]));
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        text(&missing.stderr).lines().last(),
        Some("error: user 'nobody' does not exist")
    );
}

/// Every command that names a user refuses a missing one with the same message.
#[test]
fn every_command_names_a_missing_user_alike() {
    let dir = tempfile::tempdir().expect("temp dir");
    let created = create_superuser(dir.path(), "admin", "admin-password-123");
    assert!(created.status.success(), "{}", text(&created.stderr));
    for args in [
        &["token", "--user", "nobody"][..],
        &["changepassword", "nobody", "--no-input"],
        &["deactivate", "nobody"],
        &["activate", "nobody"],
        &["sessions", "list", "--user", "nobody"],
        &["sessions", "revoke", "--user", "nobody", "--all"],
        &["events", "--user", "nobody"],
        &["unlock", "nobody"],
        &["deleteuser", "nobody", "--yes"],
    ] {
        let output = run(tollgate(dir.path(), args));
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert_eq!(
            stderr.lines().last(),
            Some("error: user 'nobody' does not exist"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn createuser_without_a_password_says_which_variable_to_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run(tollgate(
        dir.path(),
        &["createuser", "--username", "bob", "--no-input"],
    ));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("TOLLGATE_USER_PASSWORD"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn check_prints_effective_settings_with_secrets_masked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("tollgate.toml");
    std::fs::write(
        &config,
        "ACCESS_TOKEN_LIFETIME = \"10m\"\nrotate_refresh_tokens = true\n",
    )
    .expect("written");
    let output = run(
        tollgate(dir.path(), &["check", "--config", "tollgate.toml"])
            .env(
                "TOLLGATE_SIGNING_KEY",
                "a-very-secret-value-that-must-not-be-printed-0123",
            )
            .env("TOLLGATE_ROTATE_REFRESH_TOKENS", "false"),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("ACCESS_TOKEN_LIFETIME = \"10m\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("ROTATE_REFRESH_TOKENS = false"),
        "environment wins: {stdout}"
    );
    assert!(stdout.contains("SIGNING_KEY = \"<redacted>\""), "{stdout}");
    assert!(!stdout.contains("a-very-secret-value"));
}

/// Durations are shown as an operator writes them, from the file, the environment or the
/// defaults: `90d`, not humantime's calendar `2months 29days 2h 52m 48s`.
#[test]
fn check_shows_durations_as_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("tollgate.toml"),
        "REFRESH_TOKEN_LIFETIME = \"30d\"\n",
    )
    .expect("written");
    let output = run(
        tollgate(dir.path(), &["check", "--config", "tollgate.toml"])
            .env("TOLLGATE_ACCESS_TOKEN_LIFETIME", "5400"),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for line in [
        "REFRESH_TOKEN_LIFETIME = \"30d\"",
        "ACCESS_TOKEN_LIFETIME = \"1h 30m\"",
        "LOGIN_EVENTS_RETENTION = \"90d\"",
        "LOGIN_LOCKOUT_DURATION = \"15m\"",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line} not in {stdout}");
    }
}

/// DEVELOPMENT_MODE, the former name of DEVELOPMENT, sets it with a warning, and is no unknown
/// variable for `--strict`: there is one development switch.
#[test]
fn development_mode_sets_development_with_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run(tollgate(dir.path(), &["check", "--strict"])
        .env("TOLLGATE_DEVELOPMENT_MODE", "true")
        .env("TOLLGATE_SIGNING_KEY", "short-development-key"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.lines().any(|l| l == "DEVELOPMENT = true"),
        "{stdout}"
    );
    assert!(!stdout.contains("DEVELOPMENT_MODE"), "{stdout}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "warning: TOLLGATE_DEVELOPMENT_MODE is a former name, applied as \
             TOLLGATE_DEVELOPMENT; rename it to TOLLGATE_DEVELOPMENT"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("warning: DEVELOPMENT is on"), "{stderr}");
}

#[test]
fn bad_settings_stop_with_an_error_naming_the_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, value, expected) in [
        (
            "TOLLGATE_ACCESS_TOKEN_LIFETIME",
            "soon",
            "ACCESS_TOKEN_LIFETIME",
        ),
        ("TOLLGATE_ALGORITHM", "none", "ALGORITHM"),
    ] {
        let output = run(tollgate(dir.path(), &["serve"]).env(name, value));
        assert_eq!(output.status.code(), Some(1), "{name}");
        assert!(
            text(&output.stderr).contains(expected),
            "{name}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn flushexpiredtokens_reports_what_it_deleted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run(tollgate(dir.path(), &["flushexpiredtokens"]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout).trim(),
        "deleted 0 expired outstanding and 0 expired blacklisted tokens"
    );
    assert!(
        dir.path().join("tollgate.db").exists(),
        "the database is created on first use"
    );
}

/// The seeds' sequence against the real binary: obtain, call, refresh, blacklist, refused.
/// Also: the development key is made once and reused, so tokens survive a restart.
#[tokio::test]
async fn the_seed_sequence_against_tollgate_serve() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(create_superuser(dir.path(), "user1", "user1-password")
        .status
        .success());
    let configured = || {
        let mut command = tollgate(dir.path(), &[]);
        command
            .env("TOLLGATE_ROTATE_REFRESH_TOKENS", "true")
            .env("TOLLGATE_BLACKLIST_AFTER_ROTATION", "true");
        command
    };
    let server = Served::start(configured()).await;
    assert!(dir.path().join("tollgate.db.signing-key").exists());
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);

    let response = client
        .post(url("/api/token/"))
        .form(&[("username", "user1"), ("password", "user1-password")])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await.expect("JSON");
    let (refresh, access) = (
        pair["refresh"].as_str().expect("refresh"),
        pair["access"].as_str().expect("access"),
    );

    let index = client
        .get(url("/api/index/"))
        .bearer_auth(access)
        .send()
        .await
        .expect("sent");
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(
        index.json::<Value>().await.expect("JSON"),
        json!({"id": 1, "username": "user1"})
    );

    let refreshed = client
        .post(url("/api/token/refresh/"))
        .form(&[("refresh", refresh)])
        .send()
        .await
        .expect("sent");
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.expect("JSON");
    let new_refresh = refreshed["refresh"].as_str().expect("rotated").to_owned();

    let logout = client
        .post(url("/api/token/blacklist/"))
        .form(&[("refresh", &new_refresh)])
        .send()
        .await
        .expect("sent");
    assert_eq!(logout.status(), StatusCode::OK);
    let again = client
        .post(url("/api/token/refresh/"))
        .form(&[("refresh", &new_refresh)])
        .send()
        .await
        .expect("sent");
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        again.json::<Value>().await.expect("JSON"),
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
    );

    // A restart keeps the generated key: an access token from before still works (one of a
    // live session: the logout above revoked the first one's).
    let (kept, _) = common::binary::log_in(&server.base, "user1", "user1-password").await;
    drop(server);
    let server = Served::start(configured()).await;
    let index = client
        .get(format!("{}/api/index/", server.base))
        .bearer_auth(kept)
        .send()
        .await
        .expect("sent");
    assert_eq!(index.status(), StatusCode::OK);
}

#[test]
fn keygen_writes_a_key_pair_that_serves_tokens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    let keys_arg = keys.to_str().expect("utf-8 path");
    let output = run(tollgate(
        dir.path(),
        &["keygen", "--alg", "ES256", "--out", keys_arg],
    ));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let signing = std::fs::read_to_string(keys.join("signing_key.pem")).expect("private key");
    let verifying = std::fs::read_to_string(keys.join("verifying_key.pem")).expect("public key");
    assert!(signing.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(verifying.starts_with("-----BEGIN PUBLIC KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(keys.join("signing_key.pem"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the private key is readable by others");
    }

    // The pair is what the settings take: check accepts it.
    let output = run(tollgate(dir.path(), &["check"])
        .env("TOLLGATE_ALGORITHM", "ES256")
        .env("TOLLGATE_SIGNING_KEY", &signing)
        .env("TOLLGATE_VERIFYING_KEY", &verifying));
    assert!(output.status.success(), "{}", text(&output.stderr));

    // A second run refuses to overwrite the key.
    let output = run(tollgate(
        dir.path(),
        &["keygen", "--alg", "ES256", "--out", keys_arg],
    ));
    assert!(!output.status.success());
    assert_eq!(
        std::fs::read_to_string(keys.join("signing_key.pem")).expect("private key"),
        signing
    );
}

#[test]
fn keygen_prints_hmac_secrets_and_refuses_unknown_algorithms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = run(tollgate(dir.path(), &["keygen", "--alg", "HS512"]));
    let second = run(tollgate(dir.path(), &["keygen", "--alg", "HS512"]));
    assert!(first.status.success(), "{}", text(&first.stderr));
    let secret = text(&first.stdout).trim().to_owned();
    assert!(secret.len() >= 64, "{secret}");
    assert_ne!(secret, text(&second.stdout).trim());

    let output = run(tollgate(dir.path(), &["keygen", "--alg", "none"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("ES256"),
        "{}",
        text(&output.stderr)
    );
}

/// USER_REQUIRED_FIELDS (seed 004: login by email, names required) applies to createsuperuser:
/// with --no-input the missing options are named; given, they are stored, profile fields too,
/// with their JSON types; interactively, each missing field is asked for. Logging in by email,
/// no username is asked for or needed: the email address is the username.
#[tokio::test]
async fn createsuperuser_takes_the_required_and_profile_fields() {
    let dir = tempfile::tempdir().expect("temp dir");
    let configured = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command
            .env("TOLLGATE_USERNAME_FIELD", "email")
            .env("TOLLGATE_USER_REQUIRED_FIELDS", "first_name,last_name")
            .env(
                "TOLLGATE_USER_PROFILE_FIELDS",
                "nickname,money,active,code,tags",
            )
            .env("TOLLGATE_SUPERUSER_PASSWORD", "quantum-ferret-72");
        command
    };
    let missing = run(configured(&["createsuperuser", "--no-input"]));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr)
            .contains("USER_REQUIRED_FIELDS needs --email, --first-name, --last-name"),
        "{}",
        text(&missing.stderr)
    );
    let created = run(configured(&[
        "createsuperuser",
        "--email",
        "ann@example.com",
        "--first-name",
        "Ann",
        "--last-name",
        "Lee",
        "--profile",
        "nickname=Annie",
        "--profile",
        "money=12.5",
        "--profile",
        "active=true",
        "--profile",
        "code=\"007\"",
        "--profile-json",
        r#"{"tags": ["a", "b"], "money": 1}"#,
        "--no-input",
    ]));
    assert!(created.status.success(), "{}", text(&created.stderr));
    for (args, message) in [
        (
            vec!["--profile-json", "[1]"],
            "--profile-json takes a JSON object",
        ),
        (
            vec!["--profile-json", "{money: 1}"],
            "--profile-json is not valid JSON",
        ),
        (
            vec!["--profile-json", r#"{"avatar": "x"}"#],
            "\"avatar\" is not in USER_PROFILE_FIELDS",
        ),
    ] {
        let mut all = vec![
            "createsuperuser",
            "--email",
            "dan@example.com",
            "--no-input",
        ];
        all.extend(args);
        let refused = run(configured(&all));
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            text(&refused.stderr).contains(message),
            "{}",
            text(&refused.stderr)
        );
    }
    let unknown = run(configured(&[
        "createsuperuser",
        "--username",
        "bob",
        "--profile",
        "avatar=x",
        "--no-input",
    ]));
    assert!(text(&unknown.stderr).contains("\"avatar\" is not in USER_PROFILE_FIELDS"));

    // Interactively: email (no username: it is the email address), first name, last name,
    // password twice.
    let mut interactive = configured(&["createuser"]);
    interactive
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = interactive.spawn().expect("starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"cid@example.com\nCid\nMoe\nquantum-ferret-72\nquantum-ferret-72\n")
            .expect("written");
    }
    let output = child.wait_with_output().expect("finishes");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("\nEmail address: First name: Last name: Password: "),
        "{}",
        text(&output.stderr)
    );

    let store = tollgate_store::Store::connect(
        &format!("sqlite://{}", dir.path().join("tollgate.db").display()),
        tollgate_store::PoolConfig::default(),
    )
    .await
    .expect("opens");
    let ann = store
        .find_user(tollgate_store::UserField::Email, "ann@example.com")
        .await
        .expect("query")
        .expect("ann exists");
    assert_eq!(
        (ann.first_name.as_str(), ann.last_name.as_str()),
        ("Ann", "Lee")
    );
    assert!(ann.is_superuser && ann.is_staff);
    assert_eq!(ann.username, "ann@example.com");
    let profile: serde_json::Value = serde_json::from_str(&ann.profile).expect("JSON");
    assert_eq!(
        profile,
        json!({"tags": ["a", "b"], "money": 12.5, "nickname": "Annie", "active": true, "code": "007"}),
        "--profile wins over --profile-json"
    );
    let cid = store
        .find_user(tollgate_store::UserField::Username, "cid@example.com")
        .await
        .expect("query")
        .expect("cid exists");
    assert_eq!(
        (cid.email.as_str(), cid.last_name.as_str()),
        ("cid@example.com", "Moe")
    );
    store.close().await;
}

/// A bearer request to `/api/user/` at `base`: the status and body.
async fn me(client: &reqwest::Client, base: &str, access: &str) -> (StatusCode, Value) {
    let response = client
        .get(format!("{base}/api/user/"))
        .bearer_auth(access)
        .send()
        .await
        .expect("sent");
    (response.status(), response.json().await.expect("JSON"))
}

/// A JSON POST to `path` at `base`: the status and body.
async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = client
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("sent");
    (response.status(), response.json().await.expect("JSON"))
}

/// Asks `/api/user/` with `access` until it is refused (a revocation made by another process
/// reaches the server within about a second), for at most five seconds.
async fn refused_soon(client: &reqwest::Client, base: &str, access: &str) -> (StatusCode, Value) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let answer = me(client, base, access).await;
        if answer.0 != StatusCode::OK || std::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The body of a protected request with a revoked access token.
fn revoked_access() -> Value {
    json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": "Token is blacklisted"}],
    })
}

fn blacklisted() -> Value {
    json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
}

/// #20: `tollgate token` issues tokens as a login does. Under CHECK_REVOKE_TOKEN they carry the
/// password fingerprint, so the access token authenticates and the refresh and sliding tokens
/// refresh (they were refused at once before); they belong to a session of their own, which
/// `sessions list` shows and `sessions revoke` ends, access tokens included.
#[tokio::test]
async fn token_command_mints_a_logins_tokens_that_refresh_and_are_revoked_with_their_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    let configured = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command.env("TOLLGATE_CHECK_REVOKE_TOKEN", "true");
        command
    };
    common::binary::create_user(configured(&[]), "ann", "quantum-ferret-72");
    let served = Served::start(configured(&[])).await;
    let client = reqwest::Client::new();
    let base = served.base.as_str();

    let minted = run(configured(&["token", "--user", "ann"]));
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    let pair: Value = serde_json::from_slice(&minted.stdout).expect("JSON pair");
    let (refresh, access) = (
        common::token_field(&pair, "refresh"),
        common::token_field(&pair, "access"),
    );
    let claim = tollgate_core::Settings::default().revoke_token_claim;
    let (refresh_claims, access_claims) = (payload(&refresh), payload(&access));
    assert!(refresh_claims[&claim].is_string(), "{refresh_claims}");
    assert_eq!(access_claims[&claim], refresh_claims[&claim]);
    let sid = common::token_field(&refresh_claims, "sid");
    assert_eq!(access_claims["sid"], json!(sid));

    let (status, body) = me(&client, base, &access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "ann");
    let (status, body) = post(
        &client,
        base,
        "/api/token/refresh/",
        json!({ "refresh": refresh }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refreshed = common::token_field(&body, "access");
    assert_eq!(me(&client, base, &refreshed).await.0, StatusCode::OK);

    let sliding = run(configured(&["token", "--user", "ann", "--sliding"]));
    assert!(sliding.status.success(), "{}", text(&sliding.stderr));
    let sliding: Value = serde_json::from_slice(&sliding.stdout).expect("JSON");
    let sliding = common::token_field(&sliding, "token");
    assert!(payload(&sliding)["sid"].is_string());
    let path = "/api/token/sliding/refresh/";
    let (status, body) = post(&client, base, path, json!({ "token": sliding })).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let listed = run(configured(&["sessions", "list", "--user", "ann"]));
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    let line = listing
        .lines()
        .find(|line| line.starts_with(&sid))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(line.ends_with("tollgate token (command line)"), "{line}");

    let revoked = run(configured(&[
        "sessions",
        "revoke",
        "--user",
        "ann",
        "--session",
        &sid,
    ]));
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let (status, body) = post(
        &client,
        base,
        "/api/token/refresh/",
        json!({ "refresh": refresh }),
    )
    .await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, blacklisted()));
    for token in [&access, &refreshed] {
        assert_eq!(
            refused_soon(&client, base, token).await,
            (StatusCode::UNAUTHORIZED, revoked_access())
        );
    }
    // The other session, the sliding token's, goes on.
    let (status, body) = post(&client, base, path, json!({ "token": sliding })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// #20: `tollgate changepassword` ends the user's earlier tokens as the API's password change
/// does: refresh tokens blacklisted, access tokens revoked (ACCESS_TOKEN_REVOCATION, on by
/// default), whether they came from a login or from `tollgate token`; a login with the new
/// password right after gets tokens that work.
#[tokio::test]
async fn changepassword_command_ends_earlier_tokens_as_the_api_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    common::binary::create_user(tollgate(dir.path(), &[]), "ann", "quantum-ferret-72");
    let served = Served::start(tollgate(dir.path(), &[])).await;
    let client = reqwest::Client::new();
    let base = served.base.as_str();
    let (logged_in_access, logged_in_refresh) =
        common::binary::log_in(base, "ann", "quantum-ferret-72").await;
    let minted = run(tollgate(dir.path(), &["token", "--user", "ann"]));
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    let minted: Value = serde_json::from_slice(&minted.stdout).expect("JSON pair");
    let (minted_access, minted_refresh) = (
        common::token_field(&minted, "access"),
        common::token_field(&minted, "refresh"),
    );
    for access in [&logged_in_access, &minted_access] {
        assert_eq!(me(&client, base, access).await.0, StatusCode::OK);
    }

    let changed = run(
        tollgate(dir.path(), &["changepassword", "ann", "--no-input"])
            .env("TOLLGATE_NEW_PASSWORD", "n3w-horse-battery"),
    );
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    assert_eq!(
        text(&changed.stdout).trim(),
        "Password changed successfully for user 'ann' (2 refresh tokens blacklisted)."
    );

    for refresh in [&logged_in_refresh, &minted_refresh] {
        let (status, body) = post(
            &client,
            base,
            "/api/token/refresh/",
            json!({ "refresh": refresh }),
        )
        .await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, blacklisted()));
    }
    for access in [&logged_in_access, &minted_access] {
        assert_eq!(
            refused_soon(&client, base, access).await,
            (StatusCode::UNAUTHORIZED, revoked_access())
        );
    }
    let old = json!({"username": "ann", "password": "quantum-ferret-72"});
    assert_eq!(
        post(&client, base, "/api/token/", old).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (fresh, _) = common::binary::log_in(base, "ann", "n3w-horse-battery").await;
    assert_eq!(me(&client, base, &fresh).await.0, StatusCode::OK);
}

/// Runs `command` to its end, at most 20 seconds: a `serve` that starts is killed and fails the
/// test, since every configuration here must stop it.
fn run_to_end(mut command: std::process::Command) -> Output {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tollgate starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().expect("waitable").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("killed");
            panic!("still running: {}", text(&output.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("ended")
}

/// `tollgate check` with `env`, then `tollgate serve` with the same: both exit 1, and the error
/// line of `check` is in what `serve` printed. Returns that line.
#[track_caller]
fn check_refuses_as_serve_does(dir: &Path, env: &[(&str, &str)]) -> String {
    let with_env = |args: &[&str]| {
        let mut command = tollgate(dir, args);
        command.envs(env.iter().copied());
        command
    };
    let checked = run_to_end(with_env(&["check"]));
    let check_err = text(&checked.stderr);
    assert_eq!(
        checked.status.code(),
        Some(1),
        "check with {env:?}: {check_err}"
    );
    let line = check_err
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {check_err}"))
        .to_owned();
    let served = run_to_end(with_env(&["serve", "--bind", "127.0.0.1:0"]));
    let serve_err = text(&served.stderr);
    assert_eq!(
        served.status.code(),
        Some(1),
        "serve with {env:?}: {serve_err}"
    );
    assert!(
        serve_err.lines().any(|l| l == line),
        "serve said otherwise than check ({line}): {serve_err}"
    );
    line
}

// #20: `check` passed settings that `serve` refuses.
#[test]
fn check_refuses_postgres_without_a_signing_key_as_serve_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let line = check_refuses_as_serve_does(
        dir.path(),
        &[("DATABASE_URL", "postgres://tollgate@127.0.0.1:1/tollgate")],
    );
    assert!(line.contains("SIGNING_KEY is not set"), "{line}");
}

#[test]
fn check_refuses_a_bind_that_is_not_an_address_as_serve_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let line = check_refuses_as_serve_does(dir.path(), &[("TOLLGATE_BIND", "notanaddress")]);
    assert!(
        line.contains("setting BIND: \"notanaddress\" is not HOST:PORT"),
        "{line}"
    );
}

#[test]
fn check_refuses_a_trusted_proxy_that_is_not_a_network_as_serve_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let line = check_refuses_as_serve_does(
        dir.path(),
        &[("TOLLGATE_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/99")],
    );
    assert!(
        line.contains("setting TRUSTED_PROXIES: \"10.0.0.0/99\" is not an address or a network"),
        "{line}"
    );
}

/// Cookies may be sent cross-origin only to listed origins: CORS_ALLOW_CREDENTIALS with `*`,
/// or with no origins, stops `check` and `serve` alike.
#[test]
fn check_refuses_cors_credentials_without_listed_origins_as_serve_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let line = check_refuses_as_serve_does(
        dir.path(),
        &[
            ("TOLLGATE_CORS_ALLOW_CREDENTIALS", "true"),
            ("TOLLGATE_CORS_ALLOWED_ORIGINS", "https://app.example.com,*"),
        ],
    );
    assert_eq!(
        line,
        "error: invalid configuration (from the environment): setting CORS_ALLOW_CREDENTIALS: \
         cannot be used with CORS_ALLOWED_ORIGINS = \"*\": \
         any site could act with a visitor's cookies; list the trusted origins instead"
    );
    let line =
        check_refuses_as_serve_does(dir.path(), &[("TOLLGATE_CORS_ALLOW_CREDENTIALS", "true")]);
    assert_eq!(
        line,
        "error: invalid configuration (from the environment): setting CORS_ALLOW_CREDENTIALS: \
         needs CORS_ALLOWED_ORIGINS: list the origins allowed to send cookies"
    );
}

#[test]
fn check_refuses_a_malformed_redis_url_as_serve_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let line = check_refuses_as_serve_does(dir.path(), &[("TOLLGATE_REDIS_URL", "notaurl")]);
    assert!(line.contains("invalid REDIS_URL"), "{line}");
}

#[test]
fn check_refuses_two_endpoints_on_one_path_as_serve_does() {
    // `serve` used to panic building its routes, after opening the database.
    let dir = tempfile::tempdir().expect("temp dir");
    let line = check_refuses_as_serve_does(
        dir.path(),
        &[("TOLLGATE_TOKEN_REFRESH_PATH", "/api/token/")],
    );
    assert!(
        line.contains("two endpoints answer POST /api/token/"),
        "{line}"
    );
}

#[test]
fn check_refuses_an_empty_development_key_file_as_serve_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("tollgate.db.signing-key"), "").expect("written");
    let line = check_refuses_as_serve_does(dir.path(), &[]);
    assert!(line.contains("signing key file"), "{line}");
}

#[test]
fn check_opens_no_database_and_writes_no_key_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run(tollgate(dir.path(), &["check"]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("listed")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "check wrote {left:?}");
    // The key `serve` will generate is not a configured one, nor a short one.
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("shorter than"), "{stderr}");
    assert!(text(&output.stdout).contains("SIGNING_KEY = \"\""));
}

// #25: an environment is shared with everything beside the process, so a variable that names
// no setting is a warning, never a reason not to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_service_variables_do_not_stop_serve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = tollgate(dir.path(), &[]);
    // What Kubernetes puts in every pod of a namespace with a Service named `tollgate`.
    command
        .env("TOLLGATE_PORT", "tcp://10.96.0.12:8000")
        .env("TOLLGATE_PORT_8000_TCP", "tcp://10.96.0.12:8000")
        .env("TOLLGATE_PORT_8000_TCP_ADDR", "10.96.0.12")
        .env("TOLLGATE_PORT_8000_TCP_PORT", "8000")
        .env("TOLLGATE_PORT_8000_TCP_PROTO", "tcp")
        .env("TOLLGATE_SERVICE_HOST", "10.96.0.12")
        .env("TOLLGATE_SERVICE_PORT", "8000")
        .env("TOLLGATE_SERVICE_PORT_HTTP", "8000");
    let server = Served::start(command).await;
    server.until_ready().await;
    let (status, _) = get_json(&format!("{}/healthz", server.base)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !server
            .start_logs
            .iter()
            .any(|line| line.contains("TOLLGATE_PORT") || line.contains("TOLLGATE_SERVICE")),
        "{:#?}",
        server.start_logs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_variable_is_warned_about_and_serve_starts_without_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(create_superuser(dir.path(), "ann", "ann-password-1")
        .status
        .success());
    let mut command = tollgate(dir.path(), &[]);
    command.env("TOLLGATE_ACESS_TOKEN_LIFETIME", "1m");
    let server = Served::start(command).await;
    let warning = "unknown environment variable TOLLGATE_ACESS_TOKEN_LIFETIME is ignored (did \
                   you mean TOLLGATE_ACCESS_TOKEN_LIFETIME?)";
    assert!(
        server.start_logs.iter().any(|line| line.contains(warning)),
        "{:#?}",
        server.start_logs
    );
    // The variable was ignored: the access token has the default lifetime, 5 minutes.
    let (access, _) = common::binary::log_in(&server.base, "ann", "ann-password-1").await;
    let claims = payload(&access);
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        300
    );
}

#[test]
fn check_warns_about_unknown_variables_and_strict_refuses_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let with = |args: &[&str], misspelt: bool| {
        let mut command = tollgate(dir.path(), args);
        command.env("TOLLGATE_SERVICE_HOST", "10.96.0.12");
        if misspelt {
            command.env("TOLLGATE_ROTATE_REFRESH_TOKEN", "true");
        }
        run(command)
    };
    let warning = "warning: unknown environment variable TOLLGATE_ROTATE_REFRESH_TOKEN is \
                   ignored (did you mean TOLLGATE_ROTATE_REFRESH_TOKENS?)";

    let lenient = with(&["check"], true);
    assert!(lenient.status.success(), "{}", text(&lenient.stderr));
    assert!(
        text(&lenient.stderr).lines().any(|line| line == warning),
        "{}",
        text(&lenient.stderr)
    );
    assert!(text(&lenient.stdout).contains("ROTATE_REFRESH_TOKENS = false"));

    let strict = with(&["check", "--strict"], true);
    assert_eq!(strict.status.code(), Some(1));
    let stderr = text(&strict.stderr);
    assert!(stderr.lines().any(|line| line == warning), "{stderr}");
    assert!(
        stderr.contains("error: --strict: 1 unknown TOLLGATE_* environment variable"),
        "{stderr}"
    );

    // The Kubernetes names are not unknown, even to --strict.
    let clean = with(&["check", "--strict"], false);
    assert!(clean.status.success(), "{}", text(&clean.stderr));
    assert!(!text(&clean.stderr).contains("warning"));
}

#[test]
fn setting_names_in_the_environment_are_matched_in_any_case() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(create_superuser(dir.path(), "ann", "ann-password-1")
        .status
        .success());
    let output = run(tollgate(dir.path(), &["token", "--user", "ann"])
        .env("tollgate_access_token_lifetime", "2m"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let pair: Value = serde_json::from_slice(&output.stdout).expect("JSON pair");
    let access = payload(pair["access"].as_str().expect("access"));
    assert_eq!(
        access["exp"].as_i64().expect("exp") - access["iat"].as_i64().expect("iat"),
        120
    );
    // One setting in two spellings is refused rather than one picked.
    let line = check_refuses_as_serve_does(
        dir.path(),
        &[("TOLLGATE_LOG", "info"), ("Tollgate_Log", "debug")],
    );
    assert!(
        line.contains("TOLLGATE_LOG and Tollgate_Log are both set; give only one"),
        "{line}"
    );
}

#[test]
fn an_unknown_key_in_the_config_file_stays_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("tollgate.toml"),
        "ACESS_TOKEN_LIFETIME = \"1m\"\n",
    )
    .expect("written");
    let line = check_refuses_as_serve_does(dir.path(), &[("TOLLGATE_CONFIG", "tollgate.toml")]);
    assert!(
        line.contains("unknown setting ACESS_TOKEN_LIFETIME (did you mean ACCESS_TOKEN_LIFETIME?)"),
        "{line}"
    );
}

async fn get_json(url: &str) -> (StatusCode, Value) {
    let response = reqwest::get(url).await.expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

// #25: secrets as files, the Docker and Kubernetes convention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_read_from_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(dir.path().join("data")).expect("data folder");
    let keys = secrets.join("keys");
    let generated = run(tollgate(
        dir.path(),
        &[
            "keygen",
            "--alg",
            "ES256",
            "--out",
            keys.to_str().expect("utf-8"),
        ],
    ));
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let (_redis, redis_url) = common::redis_server::PrivateRedis::start_anywhere();
    let database = dir.path().join("data").join("tollgate.db");
    let write = |name: &str, contents: String| {
        let path = secrets.join(name);
        std::fs::write(&path, contents).expect("secret written");
        path.to_str().expect("utf-8").to_owned()
    };
    let env = [
        ("TOLLGATE_ALGORITHM", "ES256".to_owned()),
        (
            "TOLLGATE_SIGNING_KEY_FILE",
            keys.join("signing_key.pem")
                .to_str()
                .expect("utf-8")
                .to_owned(),
        ),
        (
            "TOLLGATE_VERIFYING_KEY_FILE",
            keys.join("verifying_key.pem")
                .to_str()
                .expect("utf-8")
                .to_owned(),
        ),
        (
            "TOLLGATE_KEYS_ENCRYPTION_KEY_FILE",
            write("kek", format!("{}\n", "0123456789abcdef".repeat(4))),
        ),
        (
            "TOLLGATE_DATABASE_URL_FILE",
            write("database_url", format!("sqlite://{}\n", database.display())),
        ),
        (
            "TOLLGATE_REDIS_URL_FILE",
            write("redis_url", format!("{redis_url}\n")),
        ),
        ("TOLLGATE_METRICS_ENABLED", "true".to_owned()),
        (
            "TOLLGATE_METRICS_TOKEN_FILE",
            write("metrics_token", "metrics-reader-secret\n".to_owned()),
        ),
    ];
    // The helper's plain DATABASE_URL stays: TOLLGATE_DATABASE_URL_FILE wins over it.
    let with_env = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command.envs(env.iter().map(|(name, value)| (name, value)));
        command
    };

    let checked = run(with_env(&["check", "--strict"]));
    assert!(checked.status.success(), "{}", text(&checked.stderr));
    let shown = text(&checked.stdout);
    for line in [
        "ALGORITHM = \"ES256\"",
        "SIGNING_KEY = \"<redacted>\"",
        "KEYS_ENCRYPTION_KEY = \"<redacted>\"",
        "METRICS_TOKEN = \"<redacted>\"",
        &format!("DATABASE_URL = \"sqlite://{}\"", database.display()),
        &format!("REDIS_URL = \"{redis_url}\""),
    ] {
        assert!(shown.lines().any(|l| l == line), "{line} not in {shown}");
    }
    assert!(!shown.contains("metrics-reader-secret") && !shown.contains("0123456789abcdef"));

    let created = run(with_env(&[
        "createsuperuser",
        "--username",
        "ann",
        "--email",
        "ann@example.com",
        "--no-input",
    ])
    .env("TOLLGATE_SUPERUSER_PASSWORD", "ann-password-1"));
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(database.exists(), "the database of DATABASE_URL_FILE");
    assert!(!dir.path().join("tollgate.db").exists());

    let server = Served::start(with_env(&[])).await;
    server.until_ready().await;
    let (access, _) = common::binary::log_in(&server.base, "ann", "ann-password-1").await;
    let header: Value = {
        use base64::Engine as _;
        let encoded = access.split('.').next().expect("header");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON header")
    };
    assert_eq!(header["alg"], "ES256");
    let public = std::fs::read(keys.join("verifying_key.pem")).expect("public key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(
        &access,
        &jsonwebtoken::DecodingKey::from_ec_pem(&public).expect("PEM"),
        &validation,
    )
    .expect("signed with the key of SIGNING_KEY_FILE");

    let client = reqwest::Client::new();
    let metrics = |token: Option<&'static str>| {
        let mut request = client.get(format!("{}/metrics", server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(
        metrics(None).await.expect("sent").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        metrics(Some("metrics-reader-secret"))
            .await
            .expect("sent")
            .status(),
        StatusCode::OK
    );
}

#[test]
fn a_setting_and_its_file_together_are_refused_as_serve_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let line = check_refuses_as_serve_does(
        dir.path(),
        &[
            ("TOLLGATE_METRICS_TOKEN", "one"),
            ("TOLLGATE_METRICS_TOKEN_FILE", "/run/secrets/metrics_token"),
        ],
    );
    assert!(
        line.contains(
            "TOLLGATE_METRICS_TOKEN and TOLLGATE_METRICS_TOKEN_FILE are both set; give only one"
        ),
        "{line}"
    );
}

#[test]
fn an_unreadable_secret_file_is_named_as_serve_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-secret");
    let missing = missing.to_str().expect("utf-8");
    let line = check_refuses_as_serve_does(dir.path(), &[("TOLLGATE_SIGNING_KEY_FILE", missing)]);
    assert!(
        line.contains(&format!(
            "setting SIGNING_KEY: cannot read TOLLGATE_SIGNING_KEY_FILE \"{missing}\""
        )),
        "{line}"
    );
}

#[test]
fn a_pem_path_given_as_the_key_points_to_the_file_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let line = check_refuses_as_serve_does(
        dir.path(),
        &[
            ("TOLLGATE_ALGORITHM", "RS256"),
            ("TOLLGATE_SIGNING_KEY", "/etc/keys/x.pem"),
            ("TOLLGATE_VERIFYING_KEY", "/etc/keys/x.pub.pem"),
        ],
    );
    assert!(
        line.contains(
            "setting SIGNING_KEY: holds a file path, not a PEM key: to read the key from that \
             file, set SIGNING_KEY_FILE to the path instead"
        ),
        "{line}"
    );
}

// #25: a command run without the server's settings acted on a new, empty database.
#[test]
fn commands_do_not_create_a_database_by_accident() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir
        .path()
        .canonicalize()
        .expect("canonical")
        .join("tollgate.db");
    for args in [
        &[
            "createsuperuser",
            "--username",
            "ann",
            "--email",
            "ann@example.com",
            "--no-input",
        ][..],
        &["token", "--user", "ann"],
        &["flushexpiredtokens"],
        &["keys", "list"],
        &["deactivate", "ann"],
        &["events", "--user", "ann"],
    ] {
        let output = run(tollgate_without_create(dir.path(), args)
            .env("TOLLGATE_SUPERUSER_PASSWORD", "ann-password-1"));
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "error: the database sqlite://tollgate.db ({}) does not exist",
                file.display()
            )) && stderr.contains("point DATABASE_URL")
                && stderr.contains("--create"),
            "{args:?}: {stderr}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("listed")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "made {left:?}");

    // `migrate` makes it, and then the others use it, saying which one.
    let using = format!(
        "using the database sqlite://tollgate.db ({})",
        file.display()
    );
    for args in [&["migrate"][..], &["flushexpiredtokens"]] {
        let output = run(tollgate_without_create(dir.path(), args));
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(
            text(&output.stderr).lines().any(|line| line == using),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    // --create makes a new one on purpose.
    let output = run(
        tollgate_without_create(dir.path(), &["--create", "flushexpiredtokens"])
            .env("DATABASE_URL", "sqlite://other.db"),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(dir.path().join("other.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_on_a_live_server_and_1_otherwise() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Served::start(tollgate(dir.path(), &[])).await;
    let address = server
        .base
        .strip_prefix("http://")
        .expect("http")
        .to_owned();
    let port = address.rsplit(':').next().expect("port").to_owned();

    let asked = run(tollgate(
        dir.path(),
        &["healthcheck", "--address", &address],
    ));
    assert!(asked.status.success(), "{}", text(&asked.stderr));
    assert_eq!(
        text(&asked.stdout).trim(),
        format!("GET http://{address}/healthz answered 200")
    );
    // BIND as a container sets it: every interface, asked on loopback.
    let asked =
        run(tollgate(dir.path(), &["healthcheck"]).env("TOLLGATE_BIND", format!("0.0.0.0:{port}")));
    assert!(asked.status.success(), "{}", text(&asked.stderr));

    server.child.kill().await.expect("stopped");
    let refused = run(tollgate(
        dir.path(),
        &["healthcheck", "--address", &address, "--timeout", "2s"],
    ));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains(&format!("error: GET http://{address}/healthz failed")),
        "{}",
        text(&refused.stderr)
    );
}
