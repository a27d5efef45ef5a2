//! Moving off Django: the claim rules of PyJWT, djangorestframework-jwt's clients, the password
//! fingerprint beside Django, and the settings converter, each as a migrating team meets it.

use crate::common;

use common::{claims, payload, token_field, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

fn token_not_valid(message: &str) -> Value {
    json!({"detail": message, "code": "token_not_valid"})
}

/// PyJWT refuses a `jti` or `sub` that is not a string ("JWT ID must be a string", "Subject
/// must be a string"), so simplejwt answers "Token is invalid"; Tollgate answers the same on
/// every endpoint that reads a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_string_jti_or_sub_is_invalid_as_pyjwt_says() {
    let server = TestServer::start().await;
    let user = server.create_user("user1", PASSWORD).await;
    let id = user.id.to_string();
    let with = |token_type: &str, claim: &str, value: Value| {
        let mut payload = claims(token_type, &id, 300);
        payload[claim] = value;
        server.sign(payload)
    };
    for (claim, value) in [
        ("jti", json!(12345)),
        ("jti", json!(null)),
        ("jti", json!(["a"])),
        ("sub", json!(42)),
        ("sub", json!({"id": 1})),
    ] {
        let access = with("access", claim, value.clone());
        let (status, body) = server
            .post_json("/api/token/verify/", json!({ "token": access }))
            .await;
        assert_eq!(
            (status, body),
            (
                StatusCode::UNAUTHORIZED,
                token_not_valid("Token is invalid")
            ),
            "verify with {claim} = {value}"
        );
        let (status, body) = server
            .get("/api/index/", Some(&format!("Bearer {access}")))
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "index with {claim} = {value}"
        );
        assert_eq!(
            body["messages"][0]["message"], "Token is invalid",
            "index with {claim} = {value}: {body}"
        );
        let refresh = with("refresh", claim, value.clone());
        let (status, body) = server
            .post_json("/api/token/refresh/", json!({ "refresh": refresh }))
            .await;
        assert_eq!(
            (status, body),
            (
                StatusCode::UNAUTHORIZED,
                token_not_valid("Token is invalid")
            ),
            "refresh with {claim} = {value}"
        );
    }
    // A string `sub` is what PyJWT wants, and passes.
    let access = with("access", "sub", json!("1"));
    let (status, body) = server
        .post_json("/api/token/verify/", json!({ "token": access }))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
}

/// Made by Django's PBKDF2PasswordHasher for "correct horse battery staple", with fewer
/// iterations than Tollgate wants (see tollgate-core's password fixtures).
const DJANGO_HASH: &str =
    "pbkdf2_sha256$1000$saltsalt0$3FOIWq+8wztxFF0f9+QHX5gPK+0BKeH6elJMSfbkOIo=";
const DJANGO_PASSWORD: &str = "correct horse battery staple";

/// simplejwt's `hash_password` claim for a stored hash: upper-case hex MD5 of the hash string.
fn django_fingerprint(stored_hash: &str) -> String {
    tollgate_core::password::revoke_fingerprint(stored_hash)
}

/// With CHECK_REVOKE_TOKEN on, Tollgate and Django run side by side on one key: a login to
/// Tollgate keeps the imported Django hash (no rehash), so the tokens Django issued before
/// and those Tollgate issues carry the same fingerprint, and each side accepts the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_revoke_token_keeps_the_django_hash_so_both_sides_accept_the_tokens() {
    let server = TestServer::start_with(|s| s.check_revoke_token = true).await;
    let user = server.create_user("ann", "unused-password-1").await;
    server
        .store()
        .set_password_hash(user.id, DJANGO_HASH)
        .await
        .expect("set");
    // An access token as Django issued it before the switch.
    let mut django_claims = claims("access", &user.id.to_string(), 300);
    django_claims["hash_password"] = json!(django_fingerprint(DJANGO_HASH));
    let from_django = server.sign(django_claims);

    let (_, access) = server.obtain_pair("ann", DJANGO_PASSWORD).await;
    let stored = server
        .store()
        .find_user(tollgate_store::UserField::Username, "ann")
        .await
        .expect("query")
        .expect("exists");
    assert_eq!(stored.password, DJANGO_HASH, "the Django hash is kept");
    assert_eq!(
        common::payload(&access)["hash_password"],
        json!(django_fingerprint(DJANGO_HASH)),
        "Django, checking its own stored hash, accepts Tollgate's token"
    );
    for token in [&from_django, &access] {
        let (status, body) = server
            .get("/api/index/", Some(&format!("Bearer {token}")))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // A second login still finds the Django hash, and still logs in.
    server.obtain_pair("ann", DJANGO_PASSWORD).await;
}

fn single_token_server() -> impl FnOnce(&mut tollgate_core::Settings) {
    |s| {
        s.login_response = tollgate_core::settings::LoginResponse::Token;
        s.refresh_token_lifetime = std::time::Duration::from_secs(7 * 24 * 3600);
    }
}

/// A djangorestframework-jwt client (LOGIN_RESPONSE = "token") logs in, verifies and refreshes
/// with `{"token"}` and reads `{"token"}` back, as it did against Django; the refreshed token
/// keeps the login's `orig_iat` and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drf_jwt_clients_refresh_and_verify_their_single_token() {
    let server = TestServer::start_with(single_token_server()).await;
    server.create_user("user1", PASSWORD).await;
    let (status, body) = server
        .post_json(
            "/api/token/",
            json!({"username": "user1", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = token_field(&body, "token");
    let orig_iat = payload(&token)["orig_iat"].clone();
    assert!(orig_iat.is_i64(), "{}", payload(&token));

    let (status, body) = server
        .post_json("/api/token/verify/", json!({ "token": token }))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "token": token })));

    let (status, body) = server
        .post_form("/api/token/refresh/", &[("token", &token)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body.as_object().expect("object").keys().collect::<Vec<_>>(),
        ["token"]
    );
    let renewed = token_field(&body, "token");
    assert_ne!(renewed, token);
    assert_eq!(payload(&renewed)["orig_iat"], orig_iat);
    assert_eq!(payload(&renewed)["token_type"], "access");
    let (status, body) = server
        .get("/api/index/", Some(&format!("Bearer {renewed}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An empty body still names simplejwt's field; a garbage token is invalid.
    let (status, body) = server.post_json("/api/token/refresh/", json!({})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"refresh": ["This field is required."]})
        )
    );
    let (status, body) = server
        .post_json("/api/token/refresh/", json!({"token": "x.y.z"}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            token_not_valid("Token is invalid")
        )
    );

    // With simplejwt's pair (the default), `{"token"}` is no refresh and verify answers `{}`.
    let server = TestServer::start().await;
    server.create_user("user1", PASSWORD).await;
    let (_, access) = server.obtain_pair("user1", PASSWORD).await;
    let (status, body) = server
        .post_json("/api/token/refresh/", json!({ "token": access }))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"refresh": ["This field is required."]})
        )
    );
    let (status, body) = server
        .post_json("/api/token/verify/", json!({ "token": access }))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
}

/// The single token refreshes only while its login is younger than REFRESH_TOKEN_LIFETIME
/// (JWT_REFRESH_EXPIRATION_DELTA), and only while it is itself valid and of type access.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drf_jwt_refresh_ends_with_the_refresh_window() {
    let server = TestServer::start_with(single_token_server()).await;
    let user = server.create_user("user1", PASSWORD).await;
    let id = user.id.to_string();
    let week = 7 * 24 * 3600;
    let refresh = |token: String| {
        let server = &server;
        async move {
            server
                .post_json("/api/token/refresh/", json!({ "token": token }))
                .await
        }
    };
    let mut old_login = claims("access", &id, 300);
    old_login["orig_iat"] = json!(tollgate_core::unix_now() - week - 5);
    assert_eq!(
        refresh(server.sign(old_login)).await,
        (
            StatusCode::UNAUTHORIZED,
            token_not_valid("Token 'orig_iat' claim has expired")
        )
    );
    let mut recent_login = claims("access", &id, 300);
    recent_login["orig_iat"] = json!(tollgate_core::unix_now() - week + 60);
    assert_eq!(refresh(server.sign(recent_login)).await.0, StatusCode::OK);
    assert_eq!(
        refresh(server.sign(claims("access", &id, -30))).await,
        (
            StatusCode::UNAUTHORIZED,
            token_not_valid("Token is expired")
        )
    );
    assert_eq!(
        refresh(server.sign(claims("refresh", &id, 300))).await,
        (
            StatusCode::UNAUTHORIZED,
            token_not_valid("Token has wrong type")
        )
    );
}

/// A simplejwt settings block as the simplejwt documentation writes it, pasted into a settings
/// module with Django's usual surroundings.
const SETTINGS_PY: &str = r#"
import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "django-insecure-4f#k2!x9q@z0w8e7r6t5y4u3i2o1p0a9s8d7f6g5h4"
DEBUG = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": (
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,

    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "VERIFYING_KEY": "",
    "AUDIENCE": None,
    "ISSUER": None,
    "JSON_ENCODER": None,
    "JWK_URL": None,
    "LEEWAY": 0,

    "AUTH_HEADER_TYPES": ("Bearer", "JWT"),
    "AUTH_HEADER_NAME": "HTTP_AUTHORIZATION",
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "USER_AUTHENTICATION_RULE": "rest_framework_simplejwt.authentication.default_user_authentication_rule",

    "AUTH_TOKEN_CLASSES": ("rest_framework_simplejwt.tokens.AccessToken",),
    "TOKEN_TYPE_CLAIM": "token_type",
    "TOKEN_USER_CLASS": "rest_framework_simplejwt.models.TokenUser",

    "JTI_CLAIM": "jti",

    "SLIDING_TOKEN_REFRESH_EXP_CLAIM": "refresh_exp",
    "SLIDING_TOKEN_LIFETIME": timedelta(minutes=5),
    "SLIDING_TOKEN_REFRESH_LIFETIME": timedelta(days=1),

    "TOKEN_OBTAIN_SERIALIZER": "accounts.serializers.MyTokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "rest_framework_simplejwt.serializers.TokenRefreshSerializer",
    "TOKEN_VERIFY_SERIALIZER": "rest_framework_simplejwt.serializers.TokenVerifySerializer",
    "TOKEN_BLACKLIST_SERIALIZER": "rest_framework_simplejwt.serializers.TokenBlacklistSerializer",
    "SLIDING_TOKEN_OBTAIN_SERIALIZER": "rest_framework_simplejwt.serializers.TokenObtainSlidingSerializer",
    "SLIDING_TOKEN_REFRESH_SERIALIZER": "rest_framework_simplejwt.serializers.TokenRefreshSlidingSerializer",
}
"#;

const DJANGO_SECRET_KEY: &str = "django-insecure-4f#k2!x9q@z0w8e7r6t5y4u3i2o1p0a9s8d7f6g5h4";

/// The settings block converts (the custom serializer and the secret listed, not written),
/// and the converted file starts a server, with Django's key, that answers the simplejwt flow:
/// obtain, the index with either header type, refresh with rotation, verify, the blacklist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simplejwt_settings_module_converts_and_serves_the_simplejwt_flow() {
    use common::binary::{create_user, run, text, tollgate, Served};
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("settings.py"), SETTINGS_PY).expect("written");
    let converted = run(tollgate(
        dir.path(),
        &[
            "import-django",
            "--settings",
            "settings.py",
            "--output",
            "tollgate.toml",
        ],
    ));
    let stderr = text(&converted.stderr);
    assert!(converted.status.success(), "{stderr}");
    assert!(stderr.contains("not converted:"), "{stderr}");
    assert!(
        stderr.contains("SIMPLE_JWT[\"SIGNING_KEY\"]: a secret")
            && stderr.contains("SIMPLE_JWT[\"TOKEN_OBTAIN_SERIALIZER\"]: no Tollgate equivalent"),
        "{stderr}"
    );
    let toml = std::fs::read_to_string(dir.path().join("tollgate.toml")).expect("written");
    assert!(!toml.contains(DJANGO_SECRET_KEY), "{toml}");
    assert!(toml.contains("ROTATE_REFRESH_TOKENS = true"), "{toml}");
    assert!(
        toml.contains("AUTH_HEADER_TYPES = [\"Bearer\", \"JWT\"]"),
        "{toml}"
    );
    // The file is not overwritten by a second run.
    let again = run(tollgate(
        dir.path(),
        &[
            "import-django",
            "--settings",
            "settings.py",
            "--output",
            "tollgate.toml",
        ],
    ));
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("cannot create tollgate.toml"),
        "{}",
        text(&again.stderr)
    );

    let configured = || {
        let mut command = tollgate(dir.path(), &["--config", "tollgate.toml"]);
        command.env("TOLLGATE_SIGNING_KEY", DJANGO_SECRET_KEY);
        command
    };
    create_user(configured(), "user1", PASSWORD);
    let served = Served::start(configured()).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let request = client.post(format!("{}{path}", served.base)).json(&body);
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, pair) = post(
        "/api/token/",
        json!({"username": "user1", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let access = token_field(&pair, "access");
    let refresh = token_field(&pair, "refresh");
    for scheme in ["Bearer", "JWT"] {
        let index = client
            .get(format!("{}/api/index/", served.base))
            .header("authorization", format!("{scheme} {access}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(index.status(), StatusCode::OK, "{scheme}");
    }
    let (status, rotated) = post("/api/token/refresh/", json!({ "refresh": refresh })).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    token_field(&rotated, "refresh");
    assert_eq!(
        post("/api/token/refresh/", json!({ "refresh": refresh })).await,
        (
            StatusCode::UNAUTHORIZED,
            token_not_valid("Token is blacklisted")
        )
    );
    assert_eq!(
        post("/api/token/verify/", json!({ "token": access })).await,
        (StatusCode::OK, json!({}))
    );
    // A token Django signed with its SECRET_KEY is accepted too: the key is shared.
    let settings = tollgate_core::Settings::default();
    let from_django = common::sign_with(DJANGO_SECRET_KEY, &settings, claims("access", "1", 300));
    assert_eq!(
        post("/api/token/verify/", json!({ "token": from_django })).await,
        (StatusCode::OK, json!({}))
    );
}

/// A JSON dump read from standard input converts as the module does; JWT_AUTH alone gives
/// djangorestframework-jwt's single token. A file with neither dict is refused clearly.
#[test]
fn settings_json_from_standard_input_and_clear_refusals() {
    use common::binary::{text, tollgate};
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = tollgate(dir.path(), &["import-django", "--settings-json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"SIMPLE_JWT": null, "JWT_AUTH": {"JWT_EXPIRATION_DELTA": 900.0, "JWT_REFRESH_EXPIRATION_DELTA": 1209600.0, "JWT_AUTH_HEADER_PREFIX": "JWT", "JWT_ALLOW_REFRESH": true}}"#)
        .expect("written");
    let output = child.wait_with_output().expect("ends");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let table: toml::Table = toml::from_str(&text(&output.stdout)).expect("TOML");
    assert_eq!(table["ACCESS_TOKEN_LIFETIME"].as_str(), Some("15m"));
    assert_eq!(table["REFRESH_TOKEN_LIFETIME"].as_str(), Some("14d"));
    assert_eq!(table["LOGIN_RESPONSE"].as_str(), Some("token"));
    assert_eq!(table["AUTH_HEADER_TYPES"][0].as_str(), Some("JWT"));

    std::fs::write(dir.path().join("settings.py"), "DEBUG = True\n").expect("written");
    let output = common::binary::run(tollgate(
        dir.path(),
        &["import-django", "--settings", "settings.py"],
    ));
    assert!(!output.status.success());
    assert_eq!(
        text(&output.stderr).trim(),
        "error: settings.py assigns neither SIMPLE_JWT nor JWT_AUTH"
    );
    std::fs::write(
        dir.path().join("broken.py"),
        "SIMPLE_JWT = {\n  'A': 1\n  'B': 2\n}\n",
    )
    .expect("written");
    let output = common::binary::run(tollgate(
        dir.path(),
        &["import-django", "--settings", "broken.py"],
    ));
    assert_eq!(
        text(&output.stderr).trim(),
        "error: cannot read broken.py: line 3: expected , or } in a dict"
    );
}

/// simplejwt's names in tollgate.toml and the environment no longer stop start-up: the
/// JWT_AUTH ones set today's settings, the others are warned about with what Tollgate does.
#[test]
fn django_names_in_toml_and_environment_warn_instead_of_stopping() {
    use common::binary::{run, text, tollgate};
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("tollgate.toml"),
        "TOKEN_USER_CLASS = \"rest_framework_simplejwt.models.TokenUser\"\n\
         JWT_EXPIRATION_DELTA = 900\n",
    )
    .expect("written");
    let mut command = tollgate(dir.path(), &["--config", "tollgate.toml", "check"]);
    command.env("TOLLGATE_USER_AUTHENTICATION_RULE", "app.rules.allow");
    let output = run(command);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        text(&output.stdout).contains("ACCESS_TOKEN_LIFETIME = \"15m\""),
        "{}",
        text(&output.stdout)
    );
    assert!(
        stderr.contains(
            "warning: the Django setting TOKEN_USER_CLASS has no Tollgate equivalent and is \
             ignored: Tollgate makes the stateless user"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "the Django setting TOLLGATE_USER_AUTHENTICATION_RULE has no Tollgate equivalent"
        ),
        "{stderr}"
    );
}
