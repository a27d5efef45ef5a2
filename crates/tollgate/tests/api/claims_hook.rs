//! The claims hook, end to end: a real HTTP endpoint started by the test answers Tollgate's
//! calls at login and refresh. Its claims reach the tokens and its fields the login's answer
//! (pair, LOGIN_RESPONSE = "token", sliding), registered claims and the answer's own fields
//! stay Tollgate's, each call is signed (checked with the algorithm written out here), and a
//! hook that is slow, failing or answering nonsense fails the login with `deny` and is skipped
//! with `allow`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_core::settings::{ClaimsHookFailure, LoginResponse, Secret};
use tollgate_core::unix_now;

use crate::common;
use common::signed_endpoint::{assert_signed, Reply, SignedEndpoint, SignedRequest};
use common::{payload, token_field, Backend, TestServer};

const PASSWORD: &str = "correct horse battery";
/// 32 random bytes, base64, behind `whsec_`.
const SECRET: &str = "whsec_q3Jd0m2cV5yC7nqkq1tXH4fW8bJp6lR9sEa2uZoN0Yg=";

/// What the hook answers.
type Answer = Reply;

/// A claims hook on a real socket: records each call and gives the current answer.
struct Hook {
    endpoint: SignedEndpoint,
    answer: Arc<Mutex<Answer>>,
}

impl Hook {
    async fn start(answer: Answer) -> Hook {
        let answer = Arc::new(Mutex::new(answer));
        let current = Arc::clone(&answer);
        let endpoint =
            SignedEndpoint::start("/claims", move |_| current.lock().expect("lock").clone()).await;
        Hook { endpoint, answer }
    }

    fn url(&self) -> String {
        self.endpoint.url()
    }

    fn answer_with(&self, answer: Answer) {
        *self.answer.lock().expect("lock") = answer;
    }

    fn calls(&self) -> Vec<SignedRequest> {
        self.endpoint.requests()
    }
}

async fn with_hook(
    backend: Backend,
    hook: &Hook,
    edit: impl FnOnce(&mut tollgate_core::Settings),
) -> TestServer {
    let url = hook.url();
    TestServer::start_on(backend, move |s| {
        s.claims_hook_url = Some(url);
        // Through WEBHOOK_SECRET: CLAIMS_HOOK_SECRET falls back to it.
        s.webhook_secret = Secret(SECRET.to_owned());
        edit(s);
    })
    .await
}

/// A hook that tries to set every registered claim and to replace the login's own fields.
fn greedy_answer(user_id: i64) -> Value {
    json!({
        "claims": {
            "nickname": "Ann", "roles": ["buyer"],
            "exp": 1, "iat": 1, "nbf": 4102444800_i64, "jti": "forged", "token_type": "access",
            "user_id": (user_id + 1000).to_string(), "sid": "forged", "amr": ["forged"],
            "iss": "forged", "aud": "forged", "orig_iat": 1,
        },
        "response": { "cart_total": 42, "access": "forged", "refresh": "forged", "user": "forged" },
    })
}

/// The registered claims of a token are Tollgate's, whatever the hook answered.
#[track_caller]
fn assert_registered_claims_are_tollgates(token: &str, user_id: i64, token_type: &str) {
    let claims = payload(token);
    assert_eq!(claims["user_id"], user_id.to_string(), "{claims}");
    assert_eq!(claims["token_type"], token_type, "{claims}");
    assert!(
        claims["exp"].as_i64().expect("exp") > unix_now(),
        "{claims}"
    );
    assert!(claims["iat"].as_i64().expect("iat") > 1, "{claims}");
    assert_ne!(claims["jti"], "forged", "{claims}");
    assert_ne!(claims["sid"], "forged", "{claims}");
    // Tollgate may set `amr` itself; never to the hook's value.
    assert_ne!(claims["amr"], json!(["forged"]), "{claims}");
    for absent in ["nbf", "iss", "aud", "orig_iat"] {
        assert!(claims.get(absent).is_none(), "{absent} in {claims}");
    }
}

on_both_backends! {
    /// A login gets the hook's claims in both tokens and its field in the answer; the
    /// registered claims and the answer's own fields stay Tollgate's. A refresh asks the hook
    /// again (event `refresh`), and the new tokens carry its new claims.
    async fn the_hooks_claims_and_fields_reach_a_login_and_its_refresh(backend) {
        let hook = Hook::start(Answer::json(json!({}))).await;
        let server = with_hook(backend, &hook, |s| {
            s.rotate_refresh_tokens = true;
            s.blacklist_after_rotation = true;
        })
        .await;
        let user = server.create_user("ann", PASSWORD).await;
        hook.answer_with(Answer::json(greedy_answer(user.id)));

        let (status, body) = server
            .post_json("/api/token/", json!({ "username": "ann", "password": PASSWORD }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(field_names(&body), ["access", "cart_total", "refresh"], "{body}");
        assert_eq!(body["cart_total"], 42);
        let (refresh, access) = (token_field(&body, "refresh"), token_field(&body, "access"));
        for (token, token_type) in [(&refresh, "refresh"), (&access, "access")] {
            let claims = payload(token);
            assert_eq!(claims["nickname"], "Ann", "{claims}");
            assert_eq!(claims["roles"], json!(["buyer"]), "{claims}");
            assert_registered_claims_are_tollgates(token, user.id, token_type);
        }
        // The session is the real one: the access token works and lists it.
        let (status, sessions) = server
            .send(reqwest::Method::GET, "/api/sessions/", Some(&access), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{sessions}");
        assert_eq!(sessions[0]["id"], payload(&refresh)["sid"]);

        let calls = hook.calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_signed(&calls[0], SECRET);
        let call = calls[0].json();
        assert_eq!(call["event"], "login");
        assert_eq!(call["user"]["id"], user.id);
        assert_eq!(call["user"]["username"], "ann");
        assert!(call["user"].get("password").is_none(), "{call}");
        assert!(!calls[0].body.contains("argon2"), "no password hash: {call}");
        assert_eq!(call["claims"]["token_type"], "refresh");
        assert_eq!(call["claims"]["user_id"], user.id.to_string());
        assert_eq!(call["claims"]["sid"], payload(&refresh)["sid"]);

        hook.answer_with(Answer::json(json!({
            "claims": { "nickname": "Annie", "jti": "forged" },
            "response": { "cart_total": 7 },
        })));
        let (status, body) = server
            .post_json("/api/token/refresh/", json!({ "refresh": refresh }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for (field, token_type) in [("access", "access"), ("refresh", "refresh")] {
            let token = token_field(&body, field);
            let claims = payload(&token);
            assert_eq!(claims["nickname"], "Annie", "{claims}");
            assert_eq!(claims["roles"], json!(["buyer"]), "kept from the login: {claims}");
            assert_registered_claims_are_tollgates(&token, user.id, token_type);
        }
        let calls = hook.calls();
        assert_eq!(calls.len(), 2);
        assert_signed(&calls[1], SECRET);
        let call = calls[1].json();
        assert_eq!(call["event"], "refresh");
        assert_eq!(call["claims"]["jti"], payload(&refresh)["jti"]);
        assert_eq!(call["claims"]["nickname"], "Ann");
        server.stop().await;
    }

    /// With `deny`, a hook that answers after CLAIMS_HOOK_TIMEOUT fails the login with 503
    /// `claims_hook_failed` at the timeout, and nothing is issued: no session, no token. A
    /// refresh refused so leaves its refresh token usable, even with rotation and the
    /// blacklist.
    async fn a_slow_hook_with_deny_fails_the_login_and_the_refresh_and_issues_nothing(backend) {
        let hook = Hook::start(Answer::json(json!({}))).await;
        let server = with_hook(backend, &hook, |s| {
            s.claims_hook_timeout = Duration::from_millis(300);
            s.rotate_refresh_tokens = true;
            s.blacklist_after_rotation = true;
        })
        .await;
        let user = server.create_user("ann", PASSWORD).await;
        let (refresh, _) = server.obtain_pair("ann", PASSWORD).await;
        hook.answer_with(Answer {
            delay: Duration::from_secs(3),
            ..Answer::json(json!({ "claims": { "late": true } }))
        });

        let started = Instant::now();
        let (status, body) = server
            .post_json("/api/token/", json!({ "username": "ann", "password": PASSWORD }))
            .await;
        let took = started.elapsed();
        assert_eq!((status, body), hook_failed());
        assert!(took < Duration::from_secs(2), "answered at the timeout, not the hook: {took:?}");
        let sessions = server.store().sessions_of(user.id, unix_now()).await.expect("sessions");
        assert_eq!(sessions.len(), 1, "only the first login's session: {sessions:?}");

        let (status, body) = server
            .post_json("/api/token/refresh/", json!({ "refresh": refresh }))
            .await;
        assert_eq!((status, body), hook_failed());

        hook.answer_with(Answer::json(json!({ "claims": { "back": true } })));
        let (status, body) = server
            .post_json("/api/token/refresh/", json!({ "refresh": refresh }))
            .await;
        assert_eq!(status, StatusCode::OK, "the refresh token was not spent: {body}");
        assert_eq!(payload(&token_field(&body, "access"))["back"], true);
        server.stop().await;
    }
}

/// The fields of a JSON object, sorted.
fn field_names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body.as_object().expect("object").keys().cloned().collect();
    names.sort();
    names
}

fn hook_failed() -> (StatusCode, Value) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        json!({
            "detail": "The claims hook did not answer as expected; no token was issued. Try again shortly.",
            "code": "claims_hook_failed",
        }),
    )
}

/// LOGIN_RESPONSE = "token": the one token carries the hook's claim and the answer its field
/// (the seeds' `name` beside `token`), and so does the token's refresh; the answer's own
/// `token` cannot be replaced. A sliding login gets them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_token_and_the_sliding_token_get_the_hooks_claims_and_fields() {
    let hook = Hook::start(Answer::json(json!({
        "claims": { "nickname": "Ann" },
        "response": { "name": "Ann Smith", "token": "forged" },
    })))
    .await;
    let server = with_hook(Backend::Sqlite, &hook, |s| {
        s.login_response = LoginResponse::Token;
    })
    .await;
    let user = server.create_user("ann", PASSWORD).await;
    let (status, body) = server
        .post_json(
            "/api/token/",
            json!({ "username": "ann", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Ann Smith");
    let token = token_field(&body, "token");
    assert_eq!(payload(&token)["nickname"], "Ann");
    assert_eq!(payload(&token)["user_id"], user.id.to_string());
    assert_eq!(body.as_object().expect("object").len(), 2, "{body}");

    hook.answer_with(Answer::json(json!({ "claims": { "nickname": "Annie" } })));
    let (status, body) = server
        .post_json("/api/token/refresh/", json!({ "token": token }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refreshed = payload(&token_field(&body, "token"));
    assert_eq!(refreshed["nickname"], "Annie");
    assert_eq!(refreshed["orig_iat"], payload(&token)["orig_iat"]);

    hook.answer_with(Answer::json(json!({
        "claims": { "nickname": "Slider" },
        "response": { "cart_total": 3 },
    })));
    let (status, body) = server
        .post_json(
            "/api/token/sliding/",
            json!({ "username": "ann", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cart_total"], 3);
    assert_eq!(payload(&token_field(&body, "token"))["nickname"], "Slider");
    let events: Vec<String> = hook
        .calls()
        .iter()
        .map(|call| call.json()["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(events, ["login", "refresh", "login"]);
    server.stop().await;
}

/// With `allow`, a hook that times out, fails or answers nonsense is skipped: the login
/// succeeds without its claims or fields. With `deny`, each of those answers is a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_hooks_follow_the_failure_policy() {
    let hook = Hook::start(Answer::json(json!({}))).await;
    let failures = [
        Answer {
            delay: Duration::from_secs(2),
            ..Answer::json(json!({ "claims": { "late": true } }))
        },
        Answer {
            status: 500,
            ..Answer::json(json!({ "claims": { "late": true } }))
        },
        Answer {
            status: 200,
            body: "<html>not json</html>".to_owned(),
            delay: Duration::ZERO,
        },
        Answer::json(json!({ "claims": ["not", "an", "object"] })),
        Answer::json(json!(["not an object"])),
        Answer {
            status: 302,
            ..Answer::json(json!({ "claims": { "redirected": true } }))
        },
    ];
    for policy in [ClaimsHookFailure::Allow, ClaimsHookFailure::Deny] {
        let server = with_hook(Backend::Sqlite, &hook, |s| {
            s.claims_hook_timeout = Duration::from_millis(300);
            s.claims_hook_failure = policy;
        })
        .await;
        server.create_user("ann", PASSWORD).await;
        for answer in &failures {
            hook.answer_with(answer.clone());
            let (status, body) = server
                .post_json(
                    "/api/token/",
                    json!({ "username": "ann", "password": PASSWORD }),
                )
                .await;
            match policy {
                ClaimsHookFailure::Allow => {
                    assert_eq!(status, StatusCode::OK, "{answer:?}: {body}");
                    assert_eq!(field_names(&body), ["access", "refresh"], "{answer:?}");
                    let claims = payload(&token_field(&body, "access"));
                    assert!(claims.get("late").is_none() && claims.get("redirected").is_none());
                }
                ClaimsHookFailure::Deny => {
                    assert_eq!((status, body), hook_failed(), "{answer:?}");
                }
            }
        }
        // An empty answer (or a 204) adds nothing, and is no failure.
        hook.answer_with(Answer {
            status: 204,
            body: String::new(),
            delay: Duration::ZERO,
        });
        let (status, body) = server
            .post_json(
                "/api/token/",
                json!({ "username": "ann", "password": PASSWORD }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        server.stop().await;
    }
}

/// Unusable claims hook settings stop the server before it starts, naming the setting and
/// never showing the key.
#[test]
fn invalid_claims_hook_settings_stop_start_up_naming_the_setting() {
    use common::binary::{run, text, tollgate};
    let dir = tempfile::tempdir().expect("temp dir");
    let check = |vars: &[(&str, &str)]| {
        let mut command = tollgate(dir.path(), &["check"]);
        command.env(
            "TOLLGATE_SIGNING_KEY",
            "claims-hook-test-signing-key-long-enough-0123456789",
        );
        for (name, value) in vars {
            command.env(name, value);
        }
        let output = run(command);
        let printed = format!("{}{}", text(&output.stderr), text(&output.stdout));
        (output.status.success(), printed)
    };
    let url = ("TOLLGATE_CLAIMS_HOOK_URL", "https://app.example.com/claims");
    let (ok, stderr) = check(&[url]);
    assert!(!ok && stderr.contains("CLAIMS_HOOK_SECRET"), "{stderr}");
    let (ok, stderr) = check(&[
        url,
        (
            "TOLLGATE_CLAIMS_HOOK_SECRET",
            "q3Jd0m2cV5yC7nqkq1tXH4fW8bJp6lR9",
        ),
    ]);
    assert!(!ok && stderr.contains("CLAIMS_HOOK_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("q3Jd0m2c"),
        "the key is not shown: {stderr}"
    );
    let (ok, stderr) = check(&[
        ("TOLLGATE_CLAIMS_HOOK_URL", "app.example.com/claims"),
        ("TOLLGATE_CLAIMS_HOOK_SECRET", SECRET),
    ]);
    assert!(!ok && stderr.contains("CLAIMS_HOOK_URL"), "{stderr}");
    let (ok, stderr) = check(&[url, ("TOLLGATE_CLAIMS_HOOK_FAILURE", "maybe")]);
    assert!(
        !ok && stderr.contains("CLAIMS_HOOK_FAILURE") && stderr.contains("deny or allow"),
        "{stderr}"
    );
    let (ok, printed) = check(&[url, ("TOLLGATE_WEBHOOK_SECRET", SECRET)]);
    assert!(ok, "WEBHOOK_SECRET signs the hook: {printed}");
    assert!(
        !printed.contains("q3Jd0m2c"),
        "the key is masked: {printed}"
    );
}
