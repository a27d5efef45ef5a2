//! Usernames, emails and phones as identifiers (#19): tokens follow the person, not a value
//! someone else can take; one account cannot hold another's identifier under another field;
//! identifiers are stored in Django's normal forms.

use crate::common;

use tollgate_core::settings::LoginField;

use common::{token_field, Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const STRONG: &str = "quantum-ferret-72";

async fn register(server: &TestServer, body: Value) -> (StatusCode, Value) {
    server.post_json("/api/users/", body).await
}

async fn patch_me(server: &TestServer, access: &str, body: Value) -> (StatusCode, Value) {
    server
        .send(Method::PATCH, "/api/user/", Some(access), Some(body))
        .await
}

async fn me(server: &TestServer, access: &str) -> (StatusCode, Value) {
    server
        .send(Method::GET, "/api/user/", Some(access), None)
        .await
}

async fn refresh(server: &TestServer, refresh: &str) -> (StatusCode, Value) {
    server
        .post_json("/api/token/refresh/", json!({ "refresh": refresh }))
        .await
}

/// Ann logs in, moves her `field` (USER_ID_FIELD) from `old` to `new`, and the old value goes
/// to Bob, by `bob_takes_it` (a registration or Bob's own change). Ann's earlier tokens must
/// not act as Bob, even without ACCESS_TOKEN_REVOCATION; Bob's and Ann's new tokens work.
async fn old_tokens_stay_with_their_person(backend: Backend, field: &str, newcomer: bool) {
    let server = TestServer::start_on(backend, |s| {
        s.user_id_field =
            tollgate_core::settings::UserIdField::from_word(field).expect("a USER_ID_FIELD");
        // The binding alone; with revocation on (the default) the old access token is revoked
        // as well, and refused as blacklisted before its user is read.
        s.access_token_revocation = false;
    })
    .await;
    let (status, body) = register(
        &server,
        json!({"username": "ann", "email": "ann@example.com", "password": STRONG}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (ann_refresh, ann_access) = server.obtain_pair("ann", STRONG).await;
    let (old, new) = match field {
        "email" => ("ann@example.com", "ann.lee@example.com"),
        _ => ("ann", "annlee"),
    };
    let (status, body) = patch_me(&server, &ann_access, json!({ field: new })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[field], new);

    let bob = if newcomer {
        let mut bob = json!({"username": "bob", "email": "bob@example.com", "password": STRONG});
        bob[field] = json!(old);
        let (status, body) = register(&server, bob).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        token_field(&body, "username")
    } else {
        let (status, body) = register(
            &server,
            json!({"username": "bob", "email": "bob@example.com", "password": STRONG}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, bob_access) = server.obtain_pair("bob", STRONG).await;
        let (status, body) = patch_me(&server, &bob_access, json!({ field: old })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        token_field(&body, "username")
    };

    // Ann's old tokens carry the value Bob holds now: neither reaches Bob.
    let (status, body) = me(&server, &ann_access).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "old access acted as {body}"
    );
    assert_eq!(body["code"], "user_not_found", "{body}");
    let (status, body) = refresh(&server, &ann_refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "old refresh gave {body}");

    // Bob's own tokens and Ann's new ones work, each as its own person.
    let (bob_refresh, bob_access) = server.obtain_pair(&bob, STRONG).await;
    let (status, body) = me(&server, &bob_access).await;
    assert_eq!(
        (status, &body["username"]),
        (StatusCode::OK, &json!(bob)),
        "{body}"
    );
    let (status, body) = refresh(&server, &bob_refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ann = if field == "username" { new } else { "ann" };
    let (_, ann_access) = server.obtain_pair(ann, STRONG).await;
    let (status, body) = me(&server, &ann_access).await;
    assert_eq!(
        (status, &body[field]),
        (StatusCode::OK, &json!(new)),
        "{body}"
    );
    server.stop().await;
}

on_both_backends! {
    /// USER_ID_FIELD = email: a newcomer registering Ann's old email is not reached by her old
    /// tokens.
    async fn old_tokens_do_not_follow_an_email_to_a_newcomer(backend) {
        old_tokens_stay_with_their_person(backend, "email", true).await;
    }

    /// USER_ID_FIELD = email: an existing user taking Ann's old email is not reached by her
    /// old tokens.
    async fn old_tokens_do_not_follow_an_email_to_an_existing_user(backend) {
        old_tokens_stay_with_their_person(backend, "email", false).await;
    }

    /// USER_ID_FIELD = username: a newcomer registering Ann's old username is not reached by
    /// her old tokens.
    async fn old_tokens_do_not_follow_a_username_to_a_newcomer(backend) {
        old_tokens_stay_with_their_person(backend, "username", true).await;
    }

    /// USER_ID_FIELD = username: an existing user taking Ann's old username is not reached by
    /// her old tokens.
    async fn old_tokens_do_not_follow_a_username_to_an_existing_user(backend) {
        old_tokens_stay_with_their_person(backend, "username", false).await;
    }

    /// A username equal to another account's email (in any case) or phone is refused at
    /// registration and update, and so is an email or phone equal to another's username; the
    /// owner keeps logging in by email and by phone.
    async fn a_username_may_not_be_another_users_email_or_phone(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.login_fields = vec![LoginField::Username, LoginField::Email, LoginField::Phone];
        }).await;
        let (status, body) = register(&server, json!({
            "username": "ann", "email": "a@x.com", "phone": "+15551234567", "password": STRONG,
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let (status, body) = register(&server, json!({"username": "A@X.com", "password": STRONG})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST,
            json!({"username": ["This username is another user's email address."]})));
        let (status, body) = register(&server, json!({"username": "+15551234567", "password": STRONG})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST,
            json!({"username": ["This username is another user's phone number."]})));
        // Nor by a later change of one's own username.
        let (status, body) = register(&server, json!({"username": "bob", "password": STRONG})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, bob_access) = server.obtain_pair("bob", STRONG).await;
        let (status, body) = patch_me(&server, &bob_access, json!({"username": "a@x.COM"})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST,
            json!({"username": ["This username is another user's email address."]})));
        // With email login on, a username that looks like someone else's address is refused
        // before that someone registers it.
        let (status, body) = patch_me(&server, &bob_access, json!({"username": "carl@x.com"})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST,
            json!({"username": ["A username containing @ must be the user's own email address."]})));
        // The reverse: a phone that is another account's username.
        let (status, body) = register(&server, json!({
            "username": "zed", "phone": "bob", "password": STRONG,
        })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        // Ann logs in by email, in any case, and by phone: each reaches her.
        for identifier in ["a@x.com", "A@X.com", "+15551234567"] {
            let (status, body) = server.post_json("/api/token/",
                json!({"username": identifier, "password": STRONG})).await;
            assert_eq!(status, StatusCode::OK, "{identifier}: {body}");
            let (status, body) = me(&server, &token_field(&body, "access")).await;
            assert_eq!((status, &body["username"]), (StatusCode::OK, &json!("ann")), "{identifier}");
        }
        server.stop().await;
    }

    /// Without email login, a username may hold an @, but an email equal to another account's
    /// username is then refused.
    async fn an_email_may_not_be_another_users_username(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (status, body) = register(&server, json!({"username": "c@x.com", "password": STRONG})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = register(&server, json!({
            "username": "carl", "email": "C@x.com", "password": STRONG,
        })).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST,
            json!({"email": ["This email address is another user's username."]})));
        server.stop().await;
    }

    /// Usernames are stored in NFKC and email domains in lower case, as Django stores them, at
    /// registration and update: `ａｄｍｉｎ` is `admin`, and cannot be registered beside it.
    async fn identifiers_are_stored_in_djangos_normal_forms(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (status, body) = register(&server, json!({
            "username": "ａｄｍｉｎ", "email": "Root@EXAMPLE.Com", "password": STRONG,
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!((&body["username"], &body["email"]), (&json!("admin"), &json!("Root@example.com")));
        // Login takes any spelling of the name, as registration stored it.
        for spelling in ["admin", "ａｄｍｉｎ"] {
            let (status, body) = server
                .post_json("/api/token/", json!({"username": spelling, "password": STRONG}))
                .await;
            assert_eq!(status, StatusCode::OK, "{spelling}: {body}");
        }
        let (status, body) = register(&server, json!({"username": "admin", "password": STRONG})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST,
            json!({"username": ["A user with that username already exists."]})));
        let (status, body) = register(&server, json!({"username": "bob", "password": STRONG})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, access) = server.obtain_pair("bob", STRONG).await;
        let (status, body) = patch_me(&server, &access, json!({"username": "ａｄｍｉｎ"})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST,
            json!({"username": ["A user with that username already exists."]})));
        let (status, body) = patch_me(&server, &access, json!({"username": "ｂｏｂｂｙ"})).await;
        assert_eq!((status, &body["username"]), (StatusCode::OK, &json!("bobby")), "{body}");
        server.stop().await;
    }
}

/// `createuser` stores the username in NFKC, refuses one already taken in another spelling,
/// and refuses a username that is another user's email address.
#[test]
fn the_command_line_normalises_and_refuses_clashes() {
    use common::binary::{run, text, tollgate};
    let dir = tempfile::tempdir().expect("temporary directory");
    let created = run(tollgate(
        dir.path(),
        &[
            "createuser",
            "--username",
            "ｃａｒｌ",
            "--email",
            "Carl@EXAMPLE.com",
            "--no-input",
        ],
    )
    .env("TOLLGATE_USER_PASSWORD", STRONG));
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(
        text(&created.stdout).contains("created successfully: carl "),
        "{}",
        text(&created.stdout)
    );
    for (username, error) in [
        (
            "carl",
            "username: A user with that username already exists.",
        ),
        (
            "carl@example.com",
            "username: This username is another user's email address.",
        ),
    ] {
        let refused = run(tollgate(
            dir.path(),
            &["createuser", "--username", username, "--no-input"],
        )
        .env("TOLLGATE_USER_PASSWORD", STRONG));
        assert!(!refused.status.success(), "{username} was created");
        assert!(
            text(&refused.stderr).contains(error),
            "{username}: {}",
            text(&refused.stderr)
        );
    }
}
