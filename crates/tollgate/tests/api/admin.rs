//! The admin API: its permission boundaries on every endpoint, the accounts' listing (DRF's
//! pages), creation, change and deletion, and the audit log of what administrators did.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate_store::User;

use crate::common::{self, raw_request, Backend, TestServer};

pub(crate) const PASSWORD: &str = "correct horse battery";

/// An account with the given flags, logged in: the account and its access token.
pub(crate) async fn account(
    server: &TestServer,
    username: &str,
    is_staff: bool,
    is_superuser: bool,
) -> (User, String) {
    let user = server.create_user(username, PASSWORD).await;
    server
        .store()
        .set_privileges(user.id, Some(is_staff), Some(is_superuser))
        .await
        .expect("flags set");
    let (_, access) = server.obtain_pair(username, PASSWORD).await;
    (user, access)
}

/// A call to the admin API with a bearer token: the status and the JSON body (`Null` when
/// there is none, as for 204).
pub(crate) async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = server
        .client
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body read");
    if text.is_empty() {
        return (status, Value::Null);
    }
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:?}"));
    (status, body)
}

pub(crate) fn permission_denied() -> Value {
    json!({
        "detail": "You do not have permission to perform this action.",
        "code": "permission_denied",
    })
}

/// Every endpoint of the admin API, acting on account `id`.
fn every_endpoint(id: i64) -> Vec<(Method, String, Option<Value>)> {
    let user = format!("/api/admin/users/{id}/");
    vec![
        (Method::GET, "/api/admin/users/".to_owned(), None),
        (
            Method::POST,
            "/api/admin/users/".to_owned(),
            Some(json!({"username": "new", "password": "quantum-ferret-72"})),
        ),
        (Method::GET, user.clone(), None),
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"first_name": "X"})),
        ),
        (Method::DELETE, user.clone(), None),
        (
            Method::POST,
            format!("{user}set_password/"),
            Some(json!({"new_password": "quantum-ferret-72"})),
        ),
        (Method::POST, format!("{user}send_password_reset/"), None),
        (Method::POST, format!("{user}unlock/"), None),
        (Method::GET, format!("{user}sessions/"), None),
        (Method::DELETE, format!("{user}sessions/"), None),
        (Method::DELETE, format!("{user}sessions/abc/"), None),
        (Method::GET, format!("{user}events/"), None),
        (Method::GET, "/api/admin/keys/".to_owned(), None),
        (Method::POST, "/api/admin/keys/rotate/".to_owned(), None),
        (Method::GET, "/api/admin/audit/".to_owned(), None),
    ]
}

/// The audit log's entries, newest first, as the API lists them.
pub(crate) async fn audit(server: &TestServer, token: &str, query: &str) -> Vec<Value> {
    let (status, body) = call(
        server,
        Method::GET,
        &format!("/api/admin/audit/{query}"),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["results"].as_array().expect("results").clone()
}

on_both_backends! {
    /// Without credentials every endpoint answers simplejwt's 401; an ordinary user's token
    /// gets DRF's 403 everywhere, and nothing changes.
    async fn anonymous_is_401_and_ordinary_users_are_403_on_every_endpoint(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (ann, ann_token) = account(&server, "ann", false, false).await;
        for (method, path, body) in every_endpoint(ann.id) {
            let mut request = server.client.request(method.clone(), server.url(&path));
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.expect("request sent");
            let status = response.status();
            let answer: Value = response.json().await.expect("JSON");
            assert_eq!(
                (status, answer),
                (
                    StatusCode::UNAUTHORIZED,
                    json!({"detail": "Authentication credentials were not provided."})
                ),
                "{method} {path}"
            );
            let (status, answer) = call(&server, method.clone(), &path, &ann_token, body).await;
            assert_eq!((status, answer), (StatusCode::FORBIDDEN, permission_denied()), "{method} {path}");
        }
        let response = server
            .client
            .get(server.url("/api/admin/users/"))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"api\"");
        assert!(server.store().find_user(tollgate_store::UserField::Username, "ann").await.expect("query").is_some());
        server.stop().await;
    }

    /// Staff members manage ordinary accounts only; acting on a staff or superuser account,
    /// granting either flag and the keys are for superusers.
    async fn staff_manage_ordinary_accounts_and_superusers_everything(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (_, staff) = account(&server, "sam", true, false).await;
        let (_, root) = account(&server, "root", true, true).await;
        let (other_staff, _) = account(&server, "sue", true, false).await;
        let (ann, _) = account(&server, "ann", false, false).await;
        let ann_path = format!("/api/admin/users/{}/", ann.id);
        let sue_path = format!("/api/admin/users/{}/", other_staff.id);

        // Any administrator reads any account.
        let (status, body) = call(&server, Method::GET, &sue_path, &staff, None).await;
        assert_eq!((status, &body["is_staff"]), (StatusCode::OK, &json!(true)), "{body}");
        // Staff change an ordinary account, but grant nothing.
        let (status, body) = call(&server, Method::PATCH, &ann_path, &staff, Some(json!({"first_name": "Ann"}))).await;
        assert_eq!((status, &body["first_name"]), (StatusCode::OK, &json!("Ann")), "{body}");
        for grant in [json!({"is_staff": true}), json!({"is_superuser": true})] {
            let answer = call(&server, Method::PATCH, &ann_path, &staff, Some(grant)).await;
            assert_eq!(answer, (StatusCode::FORBIDDEN, permission_denied()));
        }
        // Sending a flag unchanged grants nothing.
        let (status, _) = call(&server, Method::PATCH, &ann_path, &staff, Some(json!({"is_staff": false}))).await;
        assert_eq!(status, StatusCode::OK);
        // Nor do they make a staff member or a superuser, and a refusal creates nothing.
        let create_staff = json!({"username": "new", "password": "quantum-ferret-72", "is_staff": true});
        let create_superuser = json!({"username": "new", "password": "quantum-ferret-72", "is_superuser": "true"});
        for escalation in [create_staff.clone(), create_superuser] {
            let answer = call(&server, Method::POST, "/api/admin/users/", &staff, Some(escalation)).await;
            assert_eq!(answer, (StatusCode::FORBIDDEN, permission_denied()));
        }
        assert!(server.store().find_user(tollgate_store::UserField::Username, "new").await.expect("query").is_none());
        let (status, body) = call(&server, Method::POST, "/api/admin/users/", &staff,
            Some(json!({"username": "plain", "password": "quantum-ferret-72", "is_staff": false}))).await;
        assert_eq!((status, &body["is_staff"]), (StatusCode::CREATED, &json!(false)), "{body}");
        // Staff do nothing to another staff account, nor to the keys.
        for (method, path, body) in [
            (Method::PATCH, sue_path.clone(), Some(json!({"first_name": "S"}))),
            (Method::DELETE, sue_path.clone(), None),
            (Method::POST, format!("{sue_path}set_password/"), Some(json!({"new_password": "quantum-ferret-72"}))),
            (Method::GET, format!("{sue_path}sessions/"), None),
            (Method::POST, format!("{sue_path}unlock/"), None),
            (Method::GET, "/api/admin/keys/".to_owned(), None),
            (Method::POST, "/api/admin/keys/rotate/".to_owned(), None),
        ] {
            let answer = call(&server, method.clone(), &path, &staff, body).await;
            assert_eq!(answer, (StatusCode::FORBIDDEN, permission_denied()), "{method} {path}");
        }
        // A superuser does all of it.
        let (status, body) = call(&server, Method::PATCH, &ann_path, &root, Some(json!({"is_staff": true}))).await;
        assert_eq!((status, &body["is_staff"]), (StatusCode::OK, &json!(true)), "{body}");
        let (status, body) = call(&server, Method::POST, "/api/admin/users/", &root, Some(create_staff)).await;
        assert_eq!((status, &body["is_staff"]), (StatusCode::CREATED, &json!(true)), "{body}");
        let (status, _) = call(&server, Method::DELETE, &sue_path, &root, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        // Ann is staff now: Sam may no longer touch her.
        let answer = call(&server, Method::PATCH, &ann_path, &staff, Some(json!({"first_name": "A"}))).await;
        assert_eq!(answer, (StatusCode::FORBIDDEN, permission_denied()));
        server.stop().await;
    }

    /// An administrator cannot delete or deactivate themself, nor take their own flags away.
    async fn an_administrator_cannot_lock_themself_out(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (root, token) = account(&server, "root", true, true).await;
        let path = format!("/api/admin/users/{}/", root.id);
        let answer = call(&server, Method::DELETE, &path, &token, None).await;
        assert_eq!(answer, (StatusCode::BAD_REQUEST, json!({
            "detail": "You cannot delete your own account.",
            "code": "own_account",
        })));
        let answer = call(&server, Method::PATCH, &path, &token, Some(json!({"is_active": false}))).await;
        assert_eq!(answer, (StatusCode::BAD_REQUEST, json!({
            "is_active": ["You cannot deactivate your own account."],
        })));
        let answer = call(&server, Method::PATCH, &path, &token, Some(json!({"is_superuser": "no"}))).await;
        assert_eq!(answer, (StatusCode::BAD_REQUEST, json!({
            "is_superuser": ["You cannot take away your own status."],
        })));
        let (status, body) = call(&server, Method::GET, &path, &token, None).await;
        assert_eq!((status, &body["is_active"], &body["is_superuser"]), (StatusCode::OK, &json!(true), &json!(true)));
        assert!(audit(&server, &token, "").await.is_empty(), "a refusal is no action");
        server.stop().await;
    }

    /// DRF's page shape: count, absolute next and previous links that keep the other
    /// parameters, results; a page past the end is DRF's 404. Search and the active filter.
    async fn accounts_are_listed_searched_and_paginated_as_drf_pages_them(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (root, token) = account(&server, "root", true, true).await;
        let mut ids = vec![root.id];
        for name in ["ann", "anna", "bob", "hannah"] {
            ids.push(server.create_user(name, PASSWORD).await.id);
        }
        server.store().set_active(ids[3], false).await.expect("deactivated");
        let base = server.url("/api/admin/users/");
        let (status, page) = call(&server, Method::GET, "/api/admin/users/?page_size=2&search=", &token, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["count"], 5);
        assert_eq!(page["next"], json!(format!("{base}?page=2&page_size=2&search=")));
        assert_eq!(page["previous"], Value::Null);
        let listed: Vec<&Value> = page["results"].as_array().expect("results").iter().map(|u| &u["id"]).collect();
        assert_eq!(listed, [&json!(ids[0]), &json!(ids[1])]);
        let first = &page["results"][0];
        assert_eq!(first["username"], "root");
        assert_eq!((&first["is_staff"], &first["is_superuser"], &first["is_active"]), (&json!(true), &json!(true), &json!(true)));
        assert!(first.get("password").is_none());
        let next = page["next"].as_str().expect("next").trim_start_matches(&server.base).to_owned();
        let (_, page3) = call(&server, Method::GET, "/api/admin/users/?page=3&page_size=2", &token, None).await;
        assert_eq!(page3["next"], Value::Null);
        assert_eq!(page3["previous"], json!(format!("{base}?page=2&page_size=2")));
        let (_, page2) = call(&server, Method::GET, &next, &token, None).await;
        assert_eq!(page2["previous"], json!(format!("{base}?page_size=2&search=")));
        let (_, last) = call(&server, Method::GET, "/api/admin/users/?page=last&page_size=2", &token, None).await;
        assert_eq!(last["results"].as_array().map(Vec::len), Some(1));
        for bad in ["?page=4&page_size=2", "?page=0", "?page=two"] {
            let answer = call(&server, Method::GET, &format!("/api/admin/users/{bad}"), &token, None).await;
            assert_eq!(answer, (StatusCode::NOT_FOUND, json!({"detail": "Invalid page."})), "{bad}");
        }
        // page_size is capped, and anything but a positive number is the default.
        let (_, all) = call(&server, Method::GET, "/api/admin/users/?page_size=100000", &token, None).await;
        assert_eq!((all["count"].clone(), all["next"].clone()), (json!(5), Value::Null));
        let (_, search) = call(&server, Method::GET, "/api/admin/users/?search=ANN", &token, None).await;
        let names: Vec<&Value> = search["results"].as_array().expect("results").iter().map(|u| &u["username"]).collect();
        assert_eq!(names, [&json!("ann"), &json!("anna"), &json!("hannah")]);
        let (_, inactive) = call(&server, Method::GET, "/api/admin/users/?is_active=false", &token, None).await;
        assert_eq!((inactive["count"].clone(), inactive["results"][0]["username"].clone()), (json!(1), json!("bob")));
        let answer = call(&server, Method::GET, "/api/admin/users/?is_active=maybe", &token, None).await;
        assert_eq!(answer, (StatusCode::BAD_REQUEST, json!({"is_active": ["Must be a valid boolean."]})));
        server.stop().await;
    }

    /// An account is created (the password policy applies), read, changed and deleted; each
    /// change is in the audit log with who made it, from where and which fields changed.
    async fn an_account_is_created_changed_and_deleted_and_each_step_audited(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (root, token) = account(&server, "root", true, true).await;
        let weak = json!({"username": "carl", "password": "carl"});
        let (status, body) = call(&server, Method::POST, "/api/admin/users/", &token, Some(weak)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["password"].as_array().is_some_and(|problems| !problems.is_empty()), "{body}");
        let taken = json!({"username": "root", "password": "quantum-ferret-72", "is_active": "maybe"});
        let answer = call(&server, Method::POST, "/api/admin/users/", &token, Some(taken)).await;
        assert_eq!(answer, (StatusCode::BAD_REQUEST, json!({
            "is_active": ["Must be a valid boolean."],
            "username": ["A user with that username already exists."],
        })));
        let new = json!({"username": "carl", "email": "carl@example.com", "password": "quantum-ferret-72", "first_name": "Carl"});
        let (status, created) = call(&server, Method::POST, "/api/admin/users/", &token, Some(new)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_i64().expect("id");
        let expected = json!({
            "id": id, "username": "carl", "email": "carl@example.com", "phone": null,
            "first_name": "Carl", "last_name": "", "date_joined": created["date_joined"],
            "last_login": null, "is_active": true, "is_staff": false, "is_superuser": false,
        });
        assert_eq!(created, expected);
        // The new account logs in with its password.
        server.obtain_pair("carl", "quantum-ferret-72").await;
        let path = format!("/api/admin/users/{id}/");
        let (status, body) = call(&server, Method::PATCH, &path, &token, Some(json!({"email": "c@example.com", "last_name": "Lee", "first_name": "Carl"}))).await;
        assert_eq!((status, &body["email"], &body["last_name"]), (StatusCode::OK, &json!("c@example.com"), &json!("Lee")), "{body}");
        let answer = call(&server, Method::PATCH, &path, &token, Some(json!({"email": "not an address"}))).await;
        assert_eq!(answer, (StatusCode::BAD_REQUEST, json!({"email": ["Enter a valid email address."]})));
        let (status, _) = call(&server, Method::DELETE, &path, &token, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let gone = (StatusCode::NOT_FOUND, json!({"detail": "Not found."}));
        assert_eq!(call(&server, Method::GET, &path, &token, None).await, gone);
        assert_eq!(call(&server, Method::DELETE, &path, &token, None).await, gone);
        assert_eq!(call(&server, Method::GET, "/api/admin/users/x/", &token, None).await, gone);

        let entries = audit(&server, &token, "").await;
        let actions: Vec<&Value> = entries.iter().map(|e| &e["action"]).collect();
        assert_eq!(actions, [&json!("user.delete"), &json!("user.update"), &json!("user.create")]);
        let actor = json!({"kind": "user", "id": root.id, "username": "root"});
        for entry in &entries {
            assert_eq!(entry["actor"], actor);
            assert_eq!(entry["target"], json!({"id": id, "username": "carl"}));
            assert_eq!(entry["client_address"], "127.0.0.1");
            assert!(entry["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        }
        assert_eq!(entries[1]["details"], json!({"changed": ["email", "last_name"]}));
        assert_eq!(entries[2]["details"], json!({"is_active": true, "is_staff": false, "is_superuser": false}));
        assert!(!entries.iter().any(|e| e.to_string().contains("quantum-ferret")), "no password in the log");
        // Filters: by actor (an id, or `cli`) and by target.
        assert_eq!(audit(&server, &token, &format!("?actor={}", root.id)).await.len(), 3);
        assert!(audit(&server, &token, "?actor=cli").await.is_empty());
        assert_eq!(audit(&server, &token, &format!("?target={id}&page_size=1")).await.len(), 1);
        assert!(audit(&server, &token, "?target=999999").await.is_empty());
        let answer = call(&server, Method::GET, "/api/admin/audit/?target=me", &token, None).await;
        assert_eq!(answer, (StatusCode::BAD_REQUEST, json!({"target": ["Enter a whole number."]})));
        server.stop().await;
    }

    /// A deactivated user's access token is refused at once, with ACCESS_TOKEN_REVOCATION on
    /// (the default) and off, as simplejwt's JWTAuthentication refuses an inactive user; their
    /// refresh token too, and reactivating does not bring the old login back.
    async fn a_deactivated_users_tokens_are_refused(backend) {
        for revocation in [true, false] {
            let server = TestServer::start_on(backend, |s| s.access_token_revocation = revocation).await;
            let (_, token) = account(&server, "root", true, true).await;
            let ann = server.create_user("ann", PASSWORD).await;
            let (refresh, access) = server.obtain_pair("ann", PASSWORD).await;
            let path = format!("/api/admin/users/{}/", ann.id);
            let (status, body) = call(&server, Method::PATCH, &path, &token, Some(json!({"is_active": false}))).await;
            assert_eq!((status, &body["is_active"]), (StatusCode::OK, &json!(false)), "{body}");
            let answer = server.get("/api/index/", Some(&format!("Bearer {access}"))).await;
            assert_eq!(answer, (StatusCode::UNAUTHORIZED, json!({"detail": "User is inactive", "code": "user_inactive"})), "revocation {revocation}");
            let (status, _) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            let (status, _) = call(&server, Method::PATCH, &path, &token, Some(json!({"is_active": true}))).await;
            assert_eq!(status, StatusCode::OK);
            let (status, _) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "the session ended with the deactivation");
            let entries = audit(&server, &token, "").await;
            assert_eq!(entries[1]["details"], json!({"changed": ["is_active"], "is_active": false}));
            server.stop().await;
        }
    }

    /// Of creations of one username sent together, one makes the account and the others are
    /// told it exists; of deletions of one account sent together, one deletes it.
    async fn concurrent_creations_and_deletions_happen_once(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let (_, token) = account(&server, "root", true, true).await;
        let bearer = format!("Bearer {token}");
        let body = json!({"username": "dora", "password": "quantum-ferret-72"});
        let requests = (0..6)
            .map(|_| raw_request("POST", "/api/admin/users/", &[("Authorization", &bearer)], Some(&body)))
            .collect();
        let answers = server.send_together(requests).await;
        let created: Vec<&(StatusCode, Value)> = answers.iter().filter(|(status, _)| *status == StatusCode::CREATED).collect();
        assert_eq!(created.len(), 1, "{answers:?}");
        for (status, body) in answers.iter().filter(|(status, _)| *status != StatusCode::CREATED) {
            assert_eq!((*status, body), (StatusCode::BAD_REQUEST, &json!({"username": ["A user with that username already exists."]})));
        }
        let path = format!("/api/admin/users/{}/", created[0].1["id"]);
        let requests = (0..6)
            .map(|_| raw_request("DELETE", &path, &[("Authorization", &bearer)], None))
            .collect();
        let answers = server.send_together(requests).await;
        let deleted = answers.iter().filter(|(status, _)| *status == StatusCode::NO_CONTENT).count();
        assert_eq!(deleted, 1, "{answers:?}");
        assert!(answers.iter().all(|(status, _)| [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND].contains(status)), "{answers:?}");
        let deletions = audit(&server, &token, "").await.iter().filter(|e| e["action"] == "user.delete").count();
        assert_eq!(deletions, 1);
        server.stop().await;
    }
}

/// With ADMIN_REQUIRES_MFA, a token from a password login alone is refused, a superuser's too.
#[tokio::test]
async fn a_password_only_token_is_refused_when_a_second_factor_is_required() {
    let server = TestServer::start_on(Backend::Sqlite, |s| s.admin_requires_mfa = true).await;
    let (_, token) = account(&server, "root", true, true).await;
    let answer = call(&server, Method::GET, "/api/admin/users/", &token, None).await;
    assert_eq!(
        answer,
        (
            StatusCode::FORBIDDEN,
            json!({
                "detail": "This action needs a login with a second factor.",
                "code": "mfa_required",
            })
        )
    );
    // A token that claims only a password is no better.
    let mut claims = common::payload(&token);
    claims["amr"] = json!(["pwd"]);
    let signed = server.sign(claims);
    let answer = call(&server, Method::GET, "/api/admin/users/", &signed, None).await;
    assert_eq!(answer.0, StatusCode::FORBIDDEN);
    assert_eq!(answer.1["code"], "mfa_required");
    server.stop().await;
}
