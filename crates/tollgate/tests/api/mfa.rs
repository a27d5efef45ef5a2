//! Second factors: TOTP enrolment, logins in two steps, recovery codes, replay, the throttle,
//! MFA_REQUIRED, and what a second factor closes (HTTP Basic, the mfa_token as a bearer token).
//!
//! Codes are computed as an authenticator app computes them, with `totp-lite` (not the
//! server's code), from the secret the `otpauth://` URL carries.

use crate::common;

use common::binary::{create_user, run, text, tollgate};
use common::{payload, raw_request, token_field, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate_core::settings::{AuthenticationClass, LoginResponse, MfaRequired, Secret};
use tollgate_core::unix_now;

const PASSWORD: &str = "correct horse battery";

/// The code an authenticator shows `seconds_ahead` from now for the secret of `otpauth_url`.
fn code_for(otpauth_url: &str, seconds_ahead: i64) -> String {
    let url = url::Url::parse(otpauth_url).expect("otpauth URL");
    assert_eq!(url.scheme(), "otpauth");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query.get("algorithm").map(String::as_str).unwrap_or("SHA1"),
        "SHA1"
    );
    assert_eq!(query.get("digits").map(String::as_str).unwrap_or("6"), "6");
    assert_eq!(
        query.get("period").map(String::as_str).unwrap_or("30"),
        "30"
    );
    let secret = base32::decode(
        base32::Alphabet::Rfc4648 { padding: false },
        &query["secret"],
    )
    .expect("base32 secret");
    let at = u64::try_from(unix_now() + seconds_ahead).expect("time");
    totp_lite::totp_custom::<totp_lite::Sha1>(30, 6, &secret, at)
}

async fn log_in(server: &TestServer, username: &str) -> (StatusCode, Value) {
    server
        .post_json(
            "/api/token/",
            json!({"username": username, "password": PASSWORD}),
        )
        .await
}

/// Enrols TOTP for `username` (logged in with the password alone) and returns the
/// `otpauth://` URL and the recovery codes.
pub(crate) async fn enrol(server: &TestServer, username: &str) -> (String, Vec<String>) {
    let (status, body) = log_in(server, username).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = token_field(&body, "access");
    let (status, secret) = server
        .send(Method::POST, "/api/user/mfa/totp/", Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{secret}");
    let url = secret["otpauth_url"]
        .as_str()
        .expect("otpauth_url")
        .to_owned();
    let code = code_for(&url, 0);
    let (status, confirmed) = server
        .send(
            Method::POST,
            "/api/user/mfa/totp/confirm/",
            Some(&access),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let codes = confirmed["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|code| code.as_str().expect("code").to_owned())
        .collect();
    (url, codes)
}

/// Logs in with the password and returns the `mfa_token` of the second step.
async fn first_step(server: &TestServer, username: &str) -> String {
    let (status, body) = log_in(server, username).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "mfa_required", "{body}");
    body["mfa_token"].as_str().expect("mfa_token").to_owned()
}

/// `DELETE /api/user/mfa/totp/`: the status, and the body (`Null` when there is none).
async fn delete_totp(
    server: &TestServer,
    access: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .delete(server.url("/api/user/mfa/totp/"))
        .bearer_auth(access);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn second_step(server: &TestServer, body: Value) -> (StatusCode, Value) {
    server.post_json("/api/token/mfa/", body).await
}

fn code_refused() -> (StatusCode, Value) {
    (
        StatusCode::UNAUTHORIZED,
        json!({"detail": "The code is not valid.", "code": "mfa_code_invalid"}),
    )
}

fn token_refused() -> (StatusCode, Value) {
    (
        StatusCode::UNAUTHORIZED,
        json!({"detail": "The mfa_token is invalid or has expired. Sign in again.", "code": "mfa_token_invalid"}),
    )
}

on_both_backends! {
/// The whole life of TOTP: enrol, confirm, a login in two steps with amr, replay refused, a
/// recovery code once, status, refresh keeping amr.
async fn enrol_confirm_and_log_in_with_a_code(backend) {
    let server = TestServer::start_on(backend, |s| s.mfa_issuer = "Acme Shop".into()).await;
    server.create_user("ann", PASSWORD).await;
    let (status, body) = log_in(&server, "ann").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = token_field(&body, "access");
    assert_eq!(payload(&access)["amr"], json!(["pwd"]));

    let (status, secret) = server.send(Method::POST, "/api/user/mfa/totp/", Some(&access), None).await;
    assert_eq!(status, StatusCode::OK, "{secret}");
    let url = secret["otpauth_url"].as_str().expect("url").to_owned();
    assert!(url.starts_with("otpauth://totp/Acme%20Shop:ann%40example.com?"), "{url}");
    assert!(url.contains(&format!("secret={}", secret["secret"].as_str().expect("secret"))));
    assert!(secret["qr_svg"].as_str().expect("svg").contains("<svg"));
    let (_, status_body) = server.get("/api/user/mfa/", Some(&format!("Bearer {access}"))).await;
    assert_eq!(status_body["enabled"], false, "pending until confirmed: {status_body}");
    let (_, body) = log_in(&server, "ann").await;
    assert!(body["access"].is_string(), "a pending factor asks nothing: {body}");

    let wrong = server.send(Method::POST, "/api/user/mfa/totp/confirm/", Some(&access), Some(json!({"code": "000000"}))).await;
    let wrong_expected = if code_for(&url, 0) == "000000" { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    assert_eq!(wrong.0, wrong_expected, "{}", wrong.1);
    let confirm_code = code_for(&url, 0);
    let (status, confirmed) = server
        .send(Method::POST, "/api/user/mfa/totp/confirm/", Some(&access), Some(json!({"code": confirm_code})))
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let recovery: Vec<String> = confirmed["recovery_codes"].as_array().expect("codes").iter()
        .map(|c| c.as_str().expect("code").to_owned()).collect();
    assert_eq!(recovery.len(), 10);
    let (_, status_body) = server.get("/api/user/mfa/", Some(&format!("Bearer {access}"))).await;
    assert_eq!(status_body["enabled"], true, "{status_body}");
    assert_eq!(status_body["factors"][0]["type"], "totp");
    assert_eq!(status_body["recovery_codes_left"], 10);

    // The password alone now issues nothing.
    let (status, body) = log_in(&server, "ann").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["detail"], "Multi-factor authentication required.");
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    assert!(body.get("access").is_none() && body.get("refresh").is_none());
    let mfa_token = body["mfa_token"].as_str().expect("mfa_token").to_owned();
    // The mfa_token is no bearer token and no refresh token.
    let (status, _) = server.get("/api/user/", Some(&format!("Bearer {mfa_token}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.post_json("/api/token/refresh/", json!({"refresh": mfa_token})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.post_json("/api/token/verify/", json!({"token": mfa_token})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The code that confirmed enrolment was used up there.
    assert_eq!(second_step(&server, json!({"mfa_token": mfa_token, "code": confirm_code})).await, code_refused());
    let next_code = code_for(&url, 30);
    let (status, body) = second_step(&server, json!({"mfa_token": mfa_token, "code": next_code})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["refresh", "access"]);
    let access = token_field(&body, "access");
    let refresh = token_field(&body, "refresh");
    assert_eq!(payload(&access)["amr"], json!(["pwd", "otp"]));
    assert_eq!(payload(&refresh)["amr"], json!(["pwd", "otp"]));
    // The mfa_token works once.
    assert_eq!(second_step(&server, json!({"mfa_token": mfa_token, "code": next_code})).await, token_refused());
    // A code works once, whatever the mfa_token.
    let mfa_token = first_step(&server, "ann").await;
    assert_eq!(second_step(&server, json!({"mfa_token": mfa_token, "code": next_code})).await, code_refused());

    // A recovery code, however typed, works once.
    let typed = recovery[3].to_uppercase().replace('-', " ");
    let (status, body) = second_step(&server, json!({"mfa_token": mfa_token, "recovery_code": typed})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mfa_token = first_step(&server, "ann").await;
    assert_eq!(second_step(&server, json!({"mfa_token": mfa_token, "recovery_code": recovery[3]})).await, code_refused());
    let (_, status_body) = server.get("/api/user/mfa/", Some(&format!("Bearer {access}"))).await;
    assert_eq!(status_body["recovery_codes_left"], 9);

    // The session records how the user signed in, and a refresh keeps it.
    let (status, sessions) = server.get("/api/sessions/", Some(&format!("Bearer {access}"))).await;
    assert_eq!(status, StatusCode::OK);
    let current = sessions.as_array().expect("list").iter().find(|s| s["current"] == true).expect("current");
    assert_eq!(current["amr"], json!(["pwd", "otp"]));
    let (status, body) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(payload(&token_field(&body, "access"))["amr"], json!(["pwd", "otp"]));

    // Fields missing or a bad token.
    let (status, body) = second_step(&server, json!({"mfa_token": mfa_token})).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"code": ["This field is required."]})));
    assert_eq!(second_step(&server, json!({"mfa_token": "mfa_nonsense", "code": "123456"})).await, token_refused());
    server.stop().await;
}

/// Turning TOTP off takes a code or the password, ends the other sessions, and logins go back
/// to one step; renewing recovery codes voids the old set.
async fn disable_and_renew(backend) {
    let server = TestServer::start_on(backend, |_| {}).await;
    server.create_user("ann", PASSWORD).await;
    let (url, recovery) = enrol(&server, "ann").await;
    let mut sessions = Vec::new();
    for recovery_code in &recovery[..2] {
        let mfa_token = first_step(&server, "ann").await;
        let (status, body) = second_step(&server, json!({"mfa_token": mfa_token, "recovery_code": recovery_code})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        sessions.push((token_field(&body, "refresh"), token_field(&body, "access")));
    }
    let (_, access) = &sessions[0];

    let (status, body) = server.send(Method::POST, "/api/user/mfa/recovery_codes/", Some(access), Some(json!({"password": "wrong"}))).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"password": ["The password is not valid."]})));
    let (status, body) = server.send(Method::POST, "/api/user/mfa/recovery_codes/", Some(access), Some(json!({"password": PASSWORD}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let renewed: Vec<String> = body["recovery_codes"].as_array().expect("codes").iter().map(|c| c.as_str().expect("code").to_owned()).collect();
    assert_eq!(renewed.len(), 10);
    let mfa_token = first_step(&server, "ann").await;
    assert_eq!(second_step(&server, json!({"mfa_token": mfa_token, "recovery_code": recovery[5]})).await, code_refused(), "the old set is void");

    let (status, body) = delete_totp(&server, access, Some(json!({"code": "12345"}))).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"code": ["The code is not valid."]})));
    // The code that confirmed enrolment is used up: the next one.
    let (status, body) = delete_totp(&server, access, Some(json!({"code": code_for(&url, 30)}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // The other session ended; the caller's did not.
    let (status, _) = server.post_json("/api/token/refresh/", json!({"refresh": sessions[1].0})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = server.post_json("/api/token/refresh/", json!({"refresh": sessions[0].0})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = log_in(&server, "ann").await;
    assert_eq!(status, StatusCode::OK, "one step again: {body}");
    let (status, body) = delete_totp(&server, access, Some(json!({"password": PASSWORD}))).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::BAD_REQUEST, json!("mfa_not_enabled")));
    server.stop().await;
}

/// Wrong codes count toward the account's lockout, and an mfa_token dies after a few.
async fn wrong_codes_lock_the_account(backend) {
    let server = TestServer::start_on(backend, |s| {
        s.login_lockout_threshold = 3;
    }).await;
    server.create_user("ann", PASSWORD).await;
    let (url, _) = enrol(&server, "ann").await;
    let good = code_for(&url, 30);
    let bad = if good == "111111" { "222222" } else { "111111" };
    let mfa_token = first_step(&server, "ann").await;
    for _ in 0..3 {
        assert_eq!(second_step(&server, json!({"mfa_token": mfa_token, "code": bad})).await, code_refused());
    }
    let (status, body) = second_step(&server, json!({"mfa_token": mfa_token, "code": good})).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::FORBIDDEN, json!("account_locked")), "{body}");
    server.stop().await;
}

/// One code sent on two logins at once signs in once.
async fn one_code_sent_together_signs_in_once(backend) {
    let server = TestServer::start_on(backend, |_| {}).await;
    server.create_user("ann", PASSWORD).await;
    let (url, _) = enrol(&server, "ann").await;
    let code = code_for(&url, 30);
    let mut requests = Vec::new();
    for _ in 0..4 {
        let mfa_token = first_step(&server, "ann").await;
        let body = json!({"mfa_token": mfa_token, "code": code});
        requests.push(raw_request("POST", "/api/token/mfa/", &[], Some(&body)));
    }
    let answers = server.send_together(requests).await;
    let signed_in = answers.iter().filter(|(status, _)| *status == StatusCode::OK).count();
    assert_eq!(signed_in, 1, "{answers:?}");
    assert!(answers.iter().all(|a| a.0 == StatusCode::OK || *a == code_refused()), "{answers:?}");
    server.stop().await;
}

/// With MFA_REQUIRED = staff, a staff member enrols before signing in, with the mfa_token as
/// the only bearer it takes; confirming answers the login. Others sign in as before.
async fn staff_must_enrol_before_signing_in(backend) {
    let server = TestServer::start_on(backend, |s| s.mfa_required = MfaRequired::Staff).await;
    server.create_user_with("boss", PASSWORD, |u| u.is_staff = true).await;
    server.create_user("ann", PASSWORD).await;
    let (status, body) = log_in(&server, "ann").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = log_in(&server, "boss").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "mfa_enrollment_required");
    let mfa_token = body["mfa_token"].as_str().expect("token").to_owned();
    let (status, _) = server.get("/api/user/", Some(&format!("Bearer {mfa_token}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the token enrols and does nothing else");
    let (status, _) = server.get("/api/user/mfa/", Some(&format!("Bearer {mfa_token}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, secret) = server.send(Method::POST, "/api/user/mfa/totp/", Some(&mfa_token), None).await;
    assert_eq!(status, StatusCode::OK, "{secret}");
    let code = code_for(secret["otpauth_url"].as_str().expect("url"), 0);
    let (status, body) = server.send(Method::POST, "/api/user/mfa/totp/confirm/", Some(&mfa_token), Some(json!({"code": code}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovery_codes"].as_array().expect("codes").len(), 10);
    let access = token_field(&body, "access");
    assert_eq!(payload(&access)["amr"], json!(["pwd", "otp"]));
    let (status, me) = server.get("/api/user/", Some(&format!("Bearer {access}"))).await;
    assert_eq!((status, me["username"].clone()), (StatusCode::OK, json!("boss")));
    // Used up.
    let (status, _) = server.send(Method::POST, "/api/user/mfa/totp/", Some(&mfa_token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // From now on, the second factor at every login.
    first_step(&server, "boss").await;
    server.stop().await;
}

/// A password alone is no way in: HTTP Basic is refused for an account with a second factor.
async fn basic_auth_cannot_skip_the_second_factor(backend) {
    let server = TestServer::start_on(backend, |s| {
        s.authentication_classes = vec![AuthenticationClass::Jwt, AuthenticationClass::Basic];
    }).await;
    server.create_user("ann", PASSWORD).await;
    use base64::Engine as _;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("ann:{PASSWORD}")));
    let (status, _) = server.get("/api/user/", Some(&basic)).await;
    assert_eq!(status, StatusCode::OK);
    enrol(&server, "ann").await;
    let (status, body) = server.get("/api/user/", Some(&basic)).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::UNAUTHORIZED, json!("mfa_required")), "{body}");
    server.stop().await;
}
}

/// The second step answers what the login asked for: a sliding token, or drf-jwt's single
/// token, or the pair with the refresh token in the cookie.
#[tokio::test]
async fn the_second_step_answers_as_the_login_would_have() {
    let server = TestServer::start_with(|s| s.login_response = LoginResponse::Token).await;
    server.create_user("ann", PASSWORD).await;
    let (status, body) = log_in(&server, "ann").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = token_field(&body, "token");
    let (_, secret) = server
        .send(Method::POST, "/api/user/mfa/totp/", Some(&access), None)
        .await;
    let url = secret["otpauth_url"].as_str().expect("url").to_owned();
    let (status, _) = server
        .send(
            Method::POST,
            "/api/user/mfa/totp/confirm/",
            Some(&access),
            Some(json!({"code": code_for(&url, 0)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mfa_token = first_step(&server, "ann").await;
    let (status, body) = second_step(
        &server,
        json!({"mfa_token": mfa_token, "code": code_for(&url, 30)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body.as_object().expect("object").keys().collect::<Vec<_>>(),
        ["token"]
    );
    server.stop().await;

    let server = TestServer::start().await;
    server.create_user("ann", PASSWORD).await;
    let (_, recovery) = enrol(&server, "ann").await;
    let (status, body) = server
        .post_json(
            "/api/token/sliding/",
            json!({"username": "ann", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("mfa_required")),
        "{body}"
    );
    let mfa_token = body["mfa_token"].as_str().expect("token");
    let (status, body) = second_step(
        &server,
        json!({"mfa_token": mfa_token, "recovery_code": recovery[0]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sliding = token_field(&body, "token");
    assert_eq!(payload(&sliding)["token_type"], "sliding");
    assert_eq!(payload(&sliding)["amr"], json!(["pwd", "otp"]));
    server.stop().await;

    let server = TestServer::start_with(|s| {
        s.refresh_cookie = true;
        s.csrf_trusted_origins = vec!["https://app.example.com".to_owned()];
    })
    .await;
    server.create_user("ann", PASSWORD).await;
    let mut origin = reqwest::header::HeaderMap::new();
    origin.insert("origin", "https://app.example.com".parse().expect("header"));
    let browser = reqwest::Client::builder()
        .default_headers(origin)
        .build()
        .expect("client");
    let post = |path: &str, bearer: Option<&str>, body: Value| {
        let mut request = browser.post(server.url(path)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let login = json!({"username": "ann", "password": PASSWORD});
    let body: Value = post("/api/token/", None, login.clone())
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let access = token_field(&body, "access");
    let secret: Value = post("/api/user/mfa/totp/", Some(&access), json!({}))
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let url = secret["otpauth_url"].as_str().expect("url").to_owned();
    let confirmed = post(
        "/api/user/mfa/totp/confirm/",
        Some(&access),
        json!({"code": code_for(&url, 0)}),
    )
    .await
    .expect("sent");
    assert_eq!(confirmed.status(), StatusCode::OK);
    let body: Value = post("/api/token/", None, login)
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let mfa_token = body["mfa_token"].as_str().expect("mfa_token");
    // From elsewhere, the second step is refused as the login is.
    let (status, body) = second_step(
        &server,
        json!({"mfa_token": mfa_token, "code": code_for(&url, 30)}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let response = post(
        "/api/token/mfa/",
        None,
        json!({"mfa_token": mfa_token, "code": code_for(&url, 30)}),
    )
    .await
    .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get("set-cookie")
        .expect("the refresh token goes in the cookie");
    assert!(
        cookie.to_str().expect("text").contains("HttpOnly"),
        "{cookie:?}"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body.as_object().expect("object").keys().collect::<Vec<_>>(),
        ["access"]
    );
    server.stop().await;
}

/// With KEYS_ENCRYPTION_KEY, the stored secret is sealed; codes still work.
#[tokio::test]
async fn totp_secrets_are_sealed_at_rest() {
    let server = TestServer::start_with(|s| s.keys_encryption_key = Secret("ab".repeat(32))).await;
    let ann = server.create_user("ann", PASSWORD).await;
    let (url, _) = enrol(&server, "ann").await;
    let factors = server.store().mfa_factors(ann.id).await.expect("factors");
    let plain = url
        .split("secret=")
        .nth(1)
        .expect("secret")
        .split('&')
        .next()
        .expect("secret");
    assert!(!factors[0].secret.contains(plain), "{}", factors[0].secret);
    let mfa_token = first_step(&server, "ann").await;
    let (status, body) = second_step(
        &server,
        json!({"mfa_token": mfa_token, "code": code_for(&url, 30)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
}

/// An administrator sees a user's factors and removes them all from the command line; the
/// user then signs in with the password alone, and their sessions are over.
#[tokio::test]
async fn mfa_command_shows_and_resets_factors() {
    use common::binary::Served;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = ("TOLLGATE_SIGNING_KEY", common::TEST_KEY);
    let mut create = tollgate(dir.path(), &[]);
    create.env(key.0, key.1);
    create_user(create, "ann", PASSWORD);
    let mut serve = tollgate(dir.path(), &[]);
    serve.env(key.0, key.1);
    let served = Served::start(serve).await;
    let client = reqwest::Client::new();
    let post = |path: &str, bearer: Option<&str>, body: Value| {
        let mut request = client.post(format!("{}{path}", served.base)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let login = json!({"username": "ann", "password": PASSWORD});
    let (_, body) = post("/api/token/", None, login.clone()).await;
    let access = token_field(&body, "access");
    let refresh = token_field(&body, "refresh");
    let (_, secret) = post("/api/user/mfa/totp/", Some(&access), json!({})).await;
    let url = secret["otpauth_url"].as_str().expect("url").to_owned();
    let (status, _) = post(
        "/api/user/mfa/totp/confirm/",
        Some(&access),
        json!({"code": code_for(&url, 0)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let shown = run(tollgate(dir.path(), &["mfa", "status", "--user", "ann"]).env(key.0, key.1));
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let out = text(&shown.stdout);
    assert!(
        out.contains("totp (added") && out.contains("10 recovery codes left"),
        "{out}"
    );
    let (status, body) = post("/api/token/", None, login.clone()).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("mfa_required"))
    );

    let reset = run(tollgate(dir.path(), &["mfa", "reset", "--user", "ann"]).env(key.0, key.1));
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    assert_eq!(
        text(&reset.stdout).trim(),
        "Removed 1 second factor(s) of user 'ann'; their sessions are revoked."
    );
    let (status, _) = post("/api/token/refresh/", None, json!({"refresh": refresh})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "sessions ended");
    let (status, body) = post("/api/token/", None, login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shown = run(tollgate(dir.path(), &["mfa", "status", "--user", "ann"]).env(key.0, key.1));
    assert_eq!(
        text(&shown.stdout).trim(),
        "User 'ann' has no second factor."
    );
    let missing =
        run(tollgate(dir.path(), &["mfa", "reset", "--user", "nobody"]).env(key.0, key.1));
    assert!(!missing.status.success());
}

/// With ADMIN_REQUIRES_MFA, the admin API takes a token of a login with a second factor only;
/// an administrator resets a user's factors (audited), and the user signs in with the password
/// alone again.
#[tokio::test]
async fn administrators_need_a_second_factor_and_reset_a_users_factors() {
    let server = TestServer::start_with(|s| s.admin_requires_mfa = true).await;
    server
        .create_user_with("boss", PASSWORD, |u| {
            u.is_staff = true;
            u.is_superuser = true;
        })
        .await;
    let ann = server.create_user("ann", PASSWORD).await;
    enrol(&server, "ann").await;
    let (boss_url, _) = enrol(&server, "boss").await;
    let reset_path = format!("/api/admin/users/{}/mfa/reset/", ann.id);

    // The administrator signs in with the second factor: the token carries it in amr.
    let mfa_token = first_step(&server, "boss").await;
    let (status, body) = second_step(
        &server,
        json!({"mfa_token": mfa_token, "code": code_for(&boss_url, 30)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = token_field(&body, "access");
    let (status, body) = server
        .send(Method::POST, &reset_path, Some(&access), None)
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"factors_removed": 1}))
    );
    let (status, body) = log_in(&server, "ann").await;
    assert_eq!(status, StatusCode::OK, "one step again: {body}");
    let (status, audit) = server
        .get("/api/admin/audit/", Some(&format!("Bearer {access}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entry = &audit["results"][0];
    assert_eq!(entry["action"], "user.mfa_reset", "{audit}");
    assert_eq!(entry["target"]["username"], "ann");
    assert_eq!(entry["details"]["factors_removed"], 1);

    // Ann, no administrator, is refused; so is a password-only token of an administrator.
    let (_, body) = log_in(&server, "ann").await;
    let ann_access = token_field(&body, "access");
    let (status, _) = server
        .send(Method::POST, &reset_path, Some(&ann_access), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server.send(Method::POST, &reset_path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

/// Passkey ceremonies refuse what they cannot check, in words: passkeys off, a sign-in alone
/// off, an unknown or reused ceremony token, an answer that is no credential. (The ceremonies
/// themselves run in a real browser: e2e/passkey-flow.mjs.)
#[tokio::test]
async fn passkey_ceremonies_refuse_what_they_cannot_check() {
    let server = TestServer::start().await;
    server.create_user("ann", PASSWORD).await;
    let (_, body) = log_in(&server, "ann").await;
    let access = token_field(&body, "access");
    let (status, body) = server
        .send(Method::POST, "/api/user/mfa/passkeys/", Some(&access), None)
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("not_configured")),
        "{body}"
    );
    server.stop().await;

    let server = TestServer::start_with(|s| {
        s.passkey_rp_id = "localhost".into();
        s.passkey_origins = vec!["http://localhost:8080".into()];
    })
    .await;
    server.create_user("ann", PASSWORD).await;
    let (_, body) = log_in(&server, "ann").await;
    let access = token_field(&body, "access");
    let (status, body) = server
        .post_json("/api/token/passkey/begin/", json!({}))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("not_configured")),
        "{body}"
    );

    let (status, options) = server
        .send(Method::POST, "/api/user/mfa/passkeys/", Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let token = options["registration_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let confirm = |credential: Value, token: &str| {
        let body = json!({"registration_token": token, "credential": credential, "name": "Laptop"});
        server.send(
            Method::POST,
            "/api/user/mfa/passkeys/confirm/",
            Some(&access),
            Some(body),
        )
    };
    let (status, body) = confirm(json!("not an object"), &token).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"credential": ["Expected the PublicKeyCredential as a JSON object."]})
        )
    );
    let (status, body) = confirm(json!({"id": "x"}), &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["credential"].is_array(), "{body}");
    // The ceremony was used up by the answer that failed: begin again.
    let (status, body) = confirm(json!({"id": "x"}), &token).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"registration_token": ["Invalid or expired: begin again."]})
        )
    );
    let (status, body) = server
        .post_json(
            "/api/token/mfa/passkey/",
            json!({"mfa_token": "mfa_unknown"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("mfa_token_invalid")),
        "{body}"
    );
    server.stop().await;

    let server = TestServer::start_with(|s| {
        s.passkey_rp_id = "localhost".into();
        s.passkey_origins = vec!["http://localhost:8080".into()];
        s.passkey_login = true;
    })
    .await;
    let (status, options) = server
        .post_json("/api/token/passkey/begin/", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{options}"
    );
    let token = options["passkey_token"].as_str().expect("token");
    let (status, body) = server
        .post_json(
            "/api/token/passkey/",
            json!({"passkey_token": token, "credential": {"id": "x"}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("passkey_invalid")),
        "{body}"
    );
    let (status, body) = server
        .post_json("/api/token/passkey/", json!({"passkey_token": token}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"credential": ["This field is required."]})
        )
    );
    server.stop().await;
}
