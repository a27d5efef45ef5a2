//! The accounts API over HTTP: registration, the current user, password change (#3).

use crate::common;

use common::{token_field, Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const STRONG: &str = "quantum-ferret-72";

/// The access token of a login by email (USERNAME_FIELD = email).
async fn email_login(server: &TestServer, email: &str) -> String {
    let (status, body) = server
        .post_json("/api/token/", json!({"email": email, "password": STRONG}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    token_field(&body, "access")
}

async fn register(server: &TestServer, body: Value) -> (StatusCode, Value) {
    server.post_json("/api/users/", body).await
}

on_both_backends! {
    /// Registration answers 201 with the user, never the password, and the user can log in.
    async fn registration_creates_a_user_who_can_log_in(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (status, body) = register(&server, json!({
            "username": "ann", "email": "Ann@Example.com", "password": STRONG,
            "first_name": "Ann", "last_name": "Lee", "is_staff": true,
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["id", "username", "email", "phone", "first_name", "last_name", "date_joined", "last_login"]);
        assert_eq!(body["username"], "ann");
        assert_eq!(body["email"], "Ann@example.com", "the domain is lower-cased, as Django does");
        assert_eq!(body["first_name"], "Ann");
        assert_eq!(body["last_login"], Value::Null);
        assert!(body["date_joined"].as_str().expect("date").ends_with('Z'));
        assert!(!body.to_string().contains(STRONG));
        let stored = server.store().find_user(tollgate_store::UserField::Username, "ann").await.expect("query").expect("exists");
        assert!(!stored.is_staff, "read-only fields are ignored");
        assert!(stored.password.starts_with("argon2$argon2id$"));
        server.obtain_pair("ann", STRONG).await;
    }

    /// Missing, blank, malformed and taken fields are reported per field, as DRF does.
    async fn registration_validation_errors_are_drfs(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (status, body) = register(&server, json!({})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({"username": ["This field is required."], "password": ["This field is required."]}));

        let (status, body) = register(&server, json!({"username": "a b", "email": "nope", "phone": "call me", "password": "   "})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({
            "username": ["Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."],
            "email": ["Enter a valid email address."],
            "phone": ["Enter a valid phone number."],
            "password": ["This field may not be blank."],
        }));

        let (status, body) = register(&server, json!({"username": "x".repeat(151), "password": STRONG, "first_name": null})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({
            "username": ["Ensure this field has no more than 150 characters."],
            "first_name": ["This field may not be null."],
        }));

        let (status, _) = register(&server, json!({"username": "ann", "email": "ann@example.com", "phone": "+1 555 0100", "password": STRONG})).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, body) = register(&server, json!({"username": "ann", "email": "ANN@example.com", "phone": "+1 555 0100", "password": STRONG})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({
            "username": ["A user with that username already exists."],
            "email": ["user with this email already exists."],
            "phone": ["user with this phone already exists."],
        }));
    }

    /// The password policy: Django's four validators and their messages.
    async fn weak_passwords_are_refused_with_djangos_messages(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (status, body) = register(&server, json!({"username": "bob", "password": "1234567"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({"password": [
            "This password is too short. It must contain at least 8 characters.",
            "This password is too common.",
            "This password is entirely numeric.",
        ]}));
        let (status, body) = register(&server, json!({"username": "margaret", "email": "meg@example.com", "password": "Margaret_x9"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({"password": ["The password is too similar to the username."]}));

        let relaxed = TestServer::start_on(backend, |s| {
            s.password_min_length = 4;
            s.password_reject_common = false;
            s.password_reject_numeric = false;
            s.password_max_similarity = 0;
        }).await;
        let (status, body) = register(&relaxed, json!({"username": "bob", "password": "1234"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// REGISTRATION_ENABLED = false removes the endpoint.
    async fn registration_can_be_turned_off(backend) {
        let server = TestServer::start_on(backend, |s| s.registration_enabled = false).await;
        let (status, body) = register(&server, json!({"username": "ann", "password": STRONG})).await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"detail": "Not found."})));
    }

    /// Seed 004: log in by email, first and last name required, profile fields in the user.
    async fn email_login_with_required_names_and_profile_fields(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.username_field = tollgate_core::settings::UsernameField::Email;
            s.user_profile_fields = vec!["nickname".into(), "credit".into()];
            s.user_required_fields = vec!["first_name".into(), "last_name".into()];
        }).await;
        let (status, body) = register(&server, json!({"email": "zoe@example.com", "password": STRONG})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({
            "first_name": ["This field is required."],
            "last_name": ["This field is required."],
        }));
        let (status, body) = register(&server, json!({
            "email": "zoe@example.com", "password": STRONG, "first_name": "Zoe", "last_name": "Ng",
            "nickname": "z", "credit": 12,
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["username"], "zoe@example.com");
        assert_eq!((&body["nickname"], &body["credit"]), (&json!("z"), &json!(12)));
        let (status, body) = server.post_json("/api/token/", json!({"email": "zoe@example.com", "password": STRONG})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// GET, PUT and PATCH on the current user; only the authenticated user's own fields change.
    async fn the_current_user_reads_and_updates_itself(backend) {
        let server = TestServer::start_on(backend, |s| s.user_profile_fields = vec!["avatar".into()]).await;
        server.create_user("ann", STRONG).await;
        server.create_user("bob", STRONG).await;
        let (_, access) = server.obtain_pair("ann", STRONG).await;

        let (status, body) = server.send(Method::GET, "/api/user/", None, None).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "Authentication credentials were not provided."})));

        let (status, body) = server.send(Method::GET, "/api/user/", Some(&access), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!((&body["username"], &body["avatar"]), (&json!("ann"), &Value::Null));

        let (status, body) = server.send(Method::PATCH, "/api/user/", Some(&access),
            Some(json!({"first_name": "Ann", "avatar": "https://img/1.png", "id": 999, "password": "x"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((&body["first_name"], &body["avatar"], &body["username"]), (&json!("Ann"), &json!("https://img/1.png"), &json!("ann")));
        assert_ne!(body["id"], 999);
        server.obtain_pair("ann", STRONG).await;

        let (status, body) = server.send(Method::PATCH, "/api/user/", Some(&access), Some(json!({"email": "BOB@example.com"}))).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"email": ["user with this email already exists."]})));
        // Keeping one's own email is not a conflict.
        let (status, _) = server.send(Method::PATCH, "/api/user/", Some(&access), Some(json!({"email": "ann@example.com"}))).await;
        assert_eq!(status, StatusCode::OK);

        let (status, body) = server.send(Method::PUT, "/api/user/", Some(&access), Some(json!({"first_name": "A"}))).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"username": ["This field is required."]})));
        let (status, body) = server.send(Method::PUT, "/api/user/", Some(&access),
            Some(json!({"username": "ann2", "first_name": "A", "phone": ""}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((&body["username"], &body["phone"], &body["avatar"]), (&json!("ann2"), &Value::Null, &json!("https://img/1.png")));

        let (status, _) = server.send(Method::DELETE, "/api/user/", Some(&access), None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }

    /// Seed 004's user (log in by email, names required, profile fields): `PUT` is a full
    /// update, which requires USERNAME_FIELD and USER_REQUIRED_FIELDS as DRF's does, `PATCH` a
    /// partial one; neither touches a field not sent. Without USER_UPDATE_NESTED a body nested
    /// under `user` is not read as one.
    async fn put_is_a_full_update_and_patch_a_partial_one(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.username_field = tollgate_core::settings::UsernameField::Email;
            s.user_profile_fields = vec!["money".into()];
            s.user_required_fields = vec!["first_name".into(), "last_name".into()];
        }).await;
        let (status, body) = register(&server, json!({
            "email": "zoe@example.com", "password": STRONG, "first_name": "Zoe", "last_name": "Ng", "money": 12.5,
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let access = email_login(&server, "zoe@example.com").await;

        let (status, body) = server.send(Method::PUT, "/api/user/", Some(&access), Some(json!({"first_name": "Zo"}))).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({
            "email": ["This field is required."], "last_name": ["This field is required."],
        })));
        let (status, body) = server.send(Method::PUT, "/api/user/", Some(&access),
            Some(json!({"email": "zoe@example.com", "first_name": "Zo", "last_name": ""}))).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"last_name": ["This field may not be blank."]})));
        let (status, body) = server.send(Method::PUT, "/api/user/", Some(&access),
            Some(json!({"email": "zoe@example.com", "first_name": "Zo", "last_name": "Ng"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((&body["first_name"], &body["money"]), (&json!("Zo"), &json!(12.5)), "money was not sent");

        let (status, body) = server.send(Method::PATCH, "/api/user/", Some(&access), Some(json!({"last_name": "Ngo"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((&body["first_name"], &body["last_name"], &body["email"]), (&json!("Zo"), &json!("Ngo"), &json!("zoe@example.com")));
        let (status, body) = server.send(Method::PATCH, "/api/user/", Some(&access), Some(json!({"last_name": ""}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // The nested body means nothing here: `user` is no field, so PUT misses everything.
        let (status, body) = server.send(Method::PUT, "/api/user/", Some(&access),
            Some(json!({"user": {"email": "zoe@example.com", "first_name": "Zoe", "last_name": "Ng"}}))).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({
            "email": ["This field is required."],
            "first_name": ["This field is required."],
            "last_name": ["This field is required."],
        })));
    }

    /// USER_UPDATE_NESTED: seed 004's body, the user's fields under `user` beside the profile
    /// fields, updates the user; errors of the fields sent there are answered under `user`,
    /// and a flat body still works.
    async fn a_body_nested_under_user_updates_the_user_when_allowed(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.username_field = tollgate_core::settings::UsernameField::Email;
            s.user_profile_fields = vec!["money".into()];
            s.user_required_fields = vec!["first_name".into(), "last_name".into()];
            s.user_update_nested = true;
        }).await;
        let (status, body) = register(&server, json!({
            "email": "zoe@example.com", "password": STRONG, "first_name": "Zoe", "last_name": "Ng",
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        server.create_user_with("bob", STRONG, |u| u.email = "bob@example.com".into()).await;
        let access = email_login(&server, "zoe@example.com").await;

        let (status, body) = server.send(Method::PUT, "/api/user/", Some(&access), Some(json!({
            "user": {"email": "zoe@example.com", "first_name": "Zoë", "last_name": "Ng"},
            "money": 12.5,
        }))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((&body["first_name"], &body["money"]), (&json!("Zoë"), &json!(12.5)));
        assert!(body.get("user").is_none(), "the answer is the user as USER_PATH shows it: {body}");

        let (status, body) = server.send(Method::PUT, "/api/user/", Some(&access), Some(json!({
            "user": {"email": "BOB@example.com", "first_name": "Zoe"},
            "money": 1,
        }))).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({
            "user": {
                "email": ["user with this email already exists."],
                "last_name": ["This field is required."],
            },
        })), "a missing required field counts as the nested object's");

        let (status, body) = server.send(Method::PATCH, "/api/user/", Some(&access),
            Some(json!({"user": {"last_name": "Ngo"}, "first_name": "ignored"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((&body["first_name"], &body["last_name"]), (&json!("ignored"), &json!("Ngo")),
            "fields outside `user` are read too");
        let (status, body) = server.send(Method::PATCH, "/api/user/", Some(&access),
            Some(json!({"user": {"first_name": "Inner"}, "first_name": "Outer"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["first_name"], "Inner", "the nested value wins");

        for (value, message) in [
            (json!("zoe"), "Invalid data. Expected a dictionary, but got str."),
            (json!(null), "This field may not be null."),
        ] {
            let (status, body) = server.send(Method::PATCH, "/api/user/", Some(&access), Some(json!({"user": value}))).await;
            assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"user": {"non_field_errors": [message]}})));
        }

        let (status, body) = server.send(Method::PATCH, "/api/user/", Some(&access), Some(json!({"money": "x"}))).await;
        assert_eq!((status, &body["money"]), (StatusCode::OK, &json!("x")), "{body}");
    }

    /// Password change: the old password is checked, the new one passes the policy, the old
    /// refresh token stops working and the new password logs in.
    async fn password_change_checks_both_passwords_and_revokes_refresh_tokens(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        server.create_user("ann", STRONG).await;
        let (refresh, access) = server.obtain_pair("ann", STRONG).await;
        let path = "/api/user/password/";

        let (status, body) = server.send(Method::POST, path, Some(&access), Some(json!({}))).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({
            "old_password": ["This field is required."], "new_password": ["This field is required."],
        })));
        let (status, body) = server.send(Method::POST, path, Some(&access),
            Some(json!({"old_password": "wrong", "new_password": "password"}))).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({
            "old_password": ["Your old password was entered incorrectly. Please enter it again."],
            "new_password": ["This password is too common."],
        })));
        let (status, _) = server.send(Method::POST, path, None, Some(json!({"old_password": STRONG, "new_password": "n3w-horse-battery"}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let (status, body) = server.send(Method::POST, path, Some(&access),
            Some(json!({"old_password": STRONG, "new_password": "n3w-horse-battery"}))).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"detail": "New password has been saved."})));

        let (status, body) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "Token is blacklisted", "code": "token_not_valid"})));
        let (status, _) = server.post_json("/api/token/", json!({"username": "ann", "password": STRONG})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (new_refresh, _) = server.obtain_pair("ann", "n3w-horse-battery").await;
        let (status, body) = server.post_json("/api/token/refresh/", json!({"refresh": new_refresh})).await;
        assert_eq!(status, StatusCode::OK);
        token_field(&body, "access");
    }
}

/// Bodies sent as forms validate the same way.
#[tokio::test]
async fn registration_accepts_forms() {
    let server = TestServer::start_on(Backend::Sqlite, |_| {}).await;
    let (status, body) = server
        .post_form("/api/users/", &[("username", "ann"), ("password", STRONG)])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .post_form("/api/users/", &[("username", "ann")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"username": ["A user with that username already exists."], "password": ["This field is required."]})
    );
}
