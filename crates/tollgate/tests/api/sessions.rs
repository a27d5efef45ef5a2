//! Sessions (#9) and refresh-token reuse detection (#6): every login is a session, the family
//! of the tokens refreshed from it; a user lists and revokes their sessions; an administrator
//! does the same from the command line; a rotated refresh token that comes back after the
//! grace period revokes its family.

use crate::common;

use std::time::Duration;

use common::binary::{create_user, run, text, tollgate};
use common::{claims, payload, token_field, Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

fn blacklisted() -> (StatusCode, Value) {
    (
        StatusCode::UNAUTHORIZED,
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"}),
    )
}

fn not_found() -> (StatusCode, Value) {
    (StatusCode::NOT_FOUND, json!({"detail": "Not found."}))
}

/// Logs in with a `User-Agent`; returns (refresh, access).
async fn log_in_as(server: &TestServer, username: &str, agent: &str) -> (String, String) {
    let response = server
        .client
        .post(server.url("/api/token/"))
        .header("user-agent", agent)
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON body");
    (token_field(&body, "refresh"), token_field(&body, "access"))
}

async fn refresh(server: &TestServer, token: &str) -> (StatusCode, Value) {
    server
        .post_json("/api/token/refresh/", json!({"refresh": token}))
        .await
}

async fn sessions(server: &TestServer, access: &str) -> Vec<Value> {
    let (status, body) = server
        .send(Method::GET, "/api/sessions/", Some(access), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().expect("a list").clone()
}

/// DELETE with a bearer token; the status, and the body must be empty.
async fn delete(server: &TestServer, path: &str, access: &str) -> StatusCode {
    let response = server
        .client
        .delete(server.url(path))
        .bearer_auth(access)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    assert_eq!(response.text().await.expect("body"), "");
    status
}

/// Logs ann in on a served instance; returns (refresh, access).
async fn log_in(client: &reqwest::Client, base: &str, agent: &str) -> (String, String) {
    let body: Value = client
        .post(format!("{base}/api/token/"))
        .header("user-agent", agent)
        .json(&json!({"username": "ann", "password": PASSWORD}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    (token_field(&body, "refresh"), token_field(&body, "access"))
}

fn sid(token: &str) -> String {
    payload(token)["sid"]
        .as_str()
        .expect("a sid claim")
        .to_owned()
}

/// A server rotating and blacklisting refresh tokens, with reuse detection as given.
async fn rotating(backend: Backend, detection: bool, grace: Duration) -> TestServer {
    let server = TestServer::start_on(backend, |s| {
        s.rotate_refresh_tokens = true;
        s.blacklist_after_rotation = true;
        s.refresh_token_reuse_detection = detection;
        s.refresh_token_reuse_grace = grace;
    })
    .await;
    server.create_user("ann", PASSWORD).await;
    server
}

on_both_backends! {
    /// Two logins from two browsers are two sessions; the caller's is marked current; one can be
    /// revoked (its refresh token then refused), then all of them.
    /// (ACCESS_TOKEN_REVOCATION off: the listings after logging out everywhere use an access
    /// token of a revoked session, which it would refuse; it has a test of its own below.)
    async fn sessions_are_listed_and_revoked_one_or_all(backend) {
        let server = TestServer::start_on(backend, |s| s.access_token_revocation = false).await;
        server.create_user("ann", PASSWORD).await;
        let (laptop_refresh, laptop_access) = log_in_as(&server, "ann", "Firefox/130 laptop").await;
        let (phone_refresh, phone_access) = log_in_as(&server, "ann", "Safari/17 phone").await;
        assert_eq!(sid(&laptop_refresh), sid(&laptop_access), "the access token carries its session");
        assert_ne!(sid(&laptop_refresh), sid(&phone_refresh));

        let listed = sessions(&server, &laptop_access).await;
        assert_eq!(listed.len(), 2, "{listed:?}");
        let laptop = listed.iter().find(|s| s["id"] == sid(&laptop_refresh).as_str()).expect("laptop listed");
        let phone = listed.iter().find(|s| s["id"] == sid(&phone_refresh).as_str()).expect("phone listed");
        assert_eq!((&laptop["user_agent"], &laptop["current"]), (&json!("Firefox/130 laptop"), &json!(true)));
        assert_eq!((&phone["user_agent"], &phone["current"]), (&json!("Safari/17 phone"), &json!(false)));
        assert_eq!(laptop["client_address"], "127.0.0.1");
        for field in ["created", "last_used"] {
            assert!(laptop[field].as_str().is_some_and(|t| t.ends_with('Z')), "{laptop}");
        }
        // From the phone, the phone's session is the current one.
        let from_phone = sessions(&server, &phone_access).await;
        assert_eq!(from_phone.iter().filter(|s| s["current"] == true).count(), 1);
        assert!(from_phone.iter().any(|s| s["current"] == true && s["id"] == sid(&phone_refresh).as_str()));

        // Revoke the phone from the laptop.
        let phone_path = format!("/api/sessions/{}/", sid(&phone_refresh));
        assert_eq!(delete(&server, &phone_path, &laptop_access).await, StatusCode::NO_CONTENT);
        assert_eq!(refresh(&server, &phone_refresh).await, blacklisted());
        let listed = sessions(&server, &laptop_access).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["id"], sid(&laptop_refresh).as_str());
        // Revoked once; the second time there is no such session.
        assert_eq!(server.send(Method::DELETE, &phone_path, Some(&laptop_access), None).await, not_found());
        assert_eq!(refresh(&server, &laptop_refresh).await.0, StatusCode::OK);

        // Log out everywhere, both ways.
        let (tablet_refresh, _) = log_in_as(&server, "ann", "Chrome/129 tablet").await;
        let (status, body) = server.send(Method::POST, "/api/token/blacklist/all/", Some(&laptop_access), None).await;
        assert_eq!((status, body), (StatusCode::OK, json!({})));
        assert_eq!(refresh(&server, &laptop_refresh).await, blacklisted());
        assert_eq!(refresh(&server, &tablet_refresh).await, blacklisted());
        assert!(sessions(&server, &laptop_access).await.is_empty());
        let (again_refresh, again_access) = log_in_as(&server, "ann", "Chrome/129 tablet").await;
        assert_eq!(delete(&server, "/api/sessions/", &again_access).await, StatusCode::NO_CONTENT);
        assert_eq!(refresh(&server, &again_refresh).await, blacklisted());
        assert!(sessions(&server, &again_access).await.is_empty());
        server.stop().await;
    }

    /// Another user's session id is answered as an unknown one, and stays alive; the sessions
    /// endpoints need a valid token.
    async fn another_users_session_is_not_found(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        server.create_user("ann", PASSWORD).await;
        server.create_user("bob", PASSWORD).await;
        let (ann_refresh, _) = log_in_as(&server, "ann", "ann's browser").await;
        let (_, bob_access) = log_in_as(&server, "bob", "bob's browser").await;
        let ann_path = format!("/api/sessions/{}/", sid(&ann_refresh));
        assert_eq!(server.send(Method::DELETE, &ann_path, Some(&bob_access), None).await, not_found());
        assert_eq!(server.send(Method::DELETE, "/api/sessions/no-such-session/", Some(&bob_access), None).await, not_found());
        let listed = sessions(&server, &bob_access).await;
        assert!(listed.iter().all(|s| s["id"] != sid(&ann_refresh).as_str()));
        assert_eq!(refresh(&server, &ann_refresh).await.0, StatusCode::OK);
        for (method, path) in [(Method::GET, "/api/sessions/"), (Method::DELETE, ann_path.as_str()), (Method::POST, "/api/token/blacklist/all/")] {
            let (status, body) = server.send(method, path, None, None).await;
            assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "Authentication credentials were not provided."})));
        }
        server.stop().await;
    }

    /// A refresh with rotation keeps the new refresh token (and the access tokens) in the same
    /// session and moves its last use.
    async fn refresh_stays_in_the_session_and_updates_last_used(backend) {
        let server = rotating(backend, false, Duration::from_secs(10)).await;
        let (first, access) = log_in_as(&server, "ann", "agent").await;
        let before = sessions(&server, &access).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (status, body) = refresh(&server, &first).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (second, new_access) = (token_field(&body, "refresh"), token_field(&body, "access"));
        assert_eq!((sid(&second), sid(&new_access)), (sid(&first), sid(&first)));
        let after = sessions(&server, &new_access).await;
        assert_eq!(after.len(), 1);
        assert_eq!((&after[0]["id"], &after[0]["created"], &after[0]["current"]), (&before[0]["id"], &before[0]["created"], &json!(true)));
        assert!(after[0]["last_used"].as_str() > before[0]["last_used"].as_str(), "{before:?} {after:?}");
        server.stop().await;
    }

    /// Logging out a refresh token ends its session; tokens without `sid` (minted before
    /// sessions existed) keep working as before.
    async fn logout_ends_the_session_and_tokens_without_sid_still_work(backend) {
        let server = rotating(backend, true, Duration::from_secs(10)).await;
        let (refresh_token, access) = log_in_as(&server, "ann", "agent").await;
        let (status, _) = server.post_json("/api/token/blacklist/", json!({"refresh": refresh_token})).await;
        assert_eq!(status, StatusCode::OK);
        // Its access token was revoked with it (ACCESS_TOKEN_REVOCATION), so read the store.
        assert_eq!(server.get("/api/index/", Some(&format!("Bearer {access}"))).await.0, StatusCode::UNAUTHORIZED);
        assert!(server.store().sessions_of(1, tollgate_core::unix_now()).await.expect("query").is_empty());

        let old = server.sign(claims("refresh", "1", 3600));
        let (status, body) = refresh(&server, &old).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let rotated = token_field(&body, "refresh");
        assert!(payload(&rotated).get("sid").is_none() && payload(&token_field(&body, "access")).get("sid").is_none());
        assert_eq!(server.get("/api/index/", Some(&format!("Bearer {}", token_field(&body, "access")))).await.0, StatusCode::OK);
        // Its replay within the grace period is answered with the current tokens too.
        let (status, body) = refresh(&server, &old).await;
        assert_eq!((status, token_field(&body, "refresh")), (StatusCode::OK, rotated.clone()));
        assert_eq!(refresh(&server, &rotated).await.0, StatusCode::OK);
        server.stop().await;
    }

    /// A sliding-token login is a session too: listed with the sliding token itself as the
    /// bearer, and once revoked the sliding token neither slides nor authenticates.
    async fn a_sliding_token_login_is_a_session(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.auth_token_classes = vec![tollgate_core::TokenType::Access, tollgate_core::TokenType::Sliding];
        })
        .await;
        server.create_user("ann", PASSWORD).await;
        let (status, body) = server.post_json("/api/token/sliding/", json!({"username": "ann", "password": PASSWORD})).await;
        assert_eq!(status, StatusCode::OK);
        let sliding = token_field(&body, "token");
        let listed = sessions(&server, &sliding).await;
        assert_eq!((listed.len(), &listed[0]["id"], &listed[0]["current"]), (1, &json!(sid(&sliding)), &json!(true)));
        let (status, _) = server.post_json("/api/token/sliding/refresh/", json!({"token": sliding})).await;
        assert_eq!(status, StatusCode::OK);
        let path = format!("/api/sessions/{}/", sid(&sliding));
        assert_eq!(delete(&server, &path, &sliding).await, StatusCode::NO_CONTENT);
        assert_eq!(server.post_json("/api/token/sliding/refresh/", json!({"token": sliding})).await, blacklisted());
        let (status, body) = server.get("/api/index/", Some(&format!("Bearer {sliding}"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        server.stop().await;
    }

    /// Deactivating a user ends their sessions (as `tollgate deactivate` does): reactivated, the
    /// old refresh token stays refused. Deleting a user deletes their sessions.
    async fn deactivating_or_deleting_a_user_ends_their_sessions(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let ann = server.create_user("ann", PASSWORD).await;
        let (old_refresh, _) = log_in_as(&server, "ann", "agent").await;
        assert!(server.store().set_active(ann.id, false).await.expect("deactivated"));
        assert_eq!(server.store().end_sessions(ann.id, tollgate_core::unix_now()).await.expect("ended"), 1);
        assert_eq!(refresh(&server, &old_refresh).await, (StatusCode::UNAUTHORIZED, json!({"detail": "No active account found for the given token."})));
        assert!(server.store().set_active(ann.id, true).await.expect("reactivated"));
        assert_eq!(refresh(&server, &old_refresh).await, blacklisted());
        let (new_refresh, access) = log_in_as(&server, "ann", "agent").await;
        let listed = sessions(&server, &access).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["id"], sid(&new_refresh).as_str());
        assert!(server.store().delete_user(ann.id).await.expect("deleted"));
        assert!(server.store().sessions_of(ann.id, 0).await.expect("query").is_empty());
        server.stop().await;
    }

    /// With ACCESS_TOKEN_REVOCATION, revoking a session also ends its access tokens, and leaves
    /// the other sessions' alone.
    async fn revoking_a_session_ends_its_access_tokens_with_revocation_on(backend) {
        let server = TestServer::start_on(backend, |s| s.access_token_revocation = true).await;
        server.create_user("ann", PASSWORD).await;
        let (phone_refresh, phone_access) = log_in_as(&server, "ann", "phone").await;
        let (_, laptop_access) = log_in_as(&server, "ann", "laptop").await;
        let phone_path = format!("/api/sessions/{}/", sid(&phone_refresh));
        assert_eq!(delete(&server, &phone_path, &laptop_access).await, StatusCode::NO_CONTENT);
        let (status, body) = server.get("/api/index/", Some(&format!("Bearer {phone_access}"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["messages"][0]["message"], "Token is blacklisted");
        assert_eq!(server.get("/api/index/", Some(&format!("Bearer {laptop_access}"))).await.0, StatusCode::OK);
        let (status, _) = server.send(Method::POST, "/api/token/blacklist/all/", Some(&laptop_access), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(server.get("/api/index/", Some(&format!("Bearer {laptop_access}"))).await.0, StatusCode::UNAUTHORIZED);
        server.stop().await;
    }

    /// Reuse detection: a rotated refresh token replayed within the grace period gets the
    /// family's current tokens (the same refresh token the rotation handed out), which work.
    async fn reuse_within_grace_returns_the_current_tokens(backend) {
        let server = rotating(backend, true, Duration::from_secs(30)).await;
        let (first, _) = log_in_as(&server, "ann", "agent").await;
        let (status, body) = refresh(&server, &first).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let second = token_field(&body, "refresh");
        let (status, body) = refresh(&server, &first).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(token_field(&body, "refresh"), second, "the replay gets the current refresh token");
        let access = token_field(&body, "access");
        assert_eq!(sid(&access), sid(&first));
        assert_eq!(server.get("/api/index/", Some(&format!("Bearer {access}"))).await.0, StatusCode::OK);
        // Two rotations on, the first token still leads to the newest one.
        let (status, body) = refresh(&server, &second).await;
        assert_eq!(status, StatusCode::OK);
        let third = token_field(&body, "refresh");
        assert_eq!(token_field(&refresh(&server, &first).await.1, "refresh"), third);
        assert_eq!(refresh(&server, &third).await.0, StatusCode::OK);
        // One rotation per successful refresh of a new token: login + 3 rotations.
        assert_eq!(server.store().token_counts().await.expect("counts").0, 4);
        server.stop().await;
    }

    /// Reuse detection: a rotated refresh token replayed after the grace period revokes the
    /// whole family: the current refresh token fails too, and the session is gone.
    async fn reuse_after_grace_revokes_the_family(backend) {
        let server = rotating(backend, true, Duration::from_secs(1)).await;
        let (first, access) = log_in_as(&server, "ann", "agent").await;
        let (_, other_access) = log_in_as(&server, "ann", "other device").await;
        let (status, body) = refresh(&server, &first).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let current = token_field(&body, "refresh");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(refresh(&server, &first).await, blacklisted());
        assert_eq!(refresh(&server, &current).await, blacklisted());
        assert_eq!(refresh(&server, &first).await, blacklisted());
        let listed = sessions(&server, &other_access).await;
        assert_eq!(listed.len(), 1, "only the other device's session is left: {listed:?}");
        assert_ne!(listed[0]["id"], sid(&access).as_str());
        server.stop().await;
    }

    /// Reuse detection off (the default): a replayed rotated token is refused and nothing else
    /// happens, as in simplejwt; the current token keeps working.
    async fn without_reuse_detection_a_replay_is_only_refused(backend) {
        let server = rotating(backend, false, Duration::from_secs(10)).await;
        let (first, _) = log_in_as(&server, "ann", "agent").await;
        let (status, body) = refresh(&server, &first).await;
        assert_eq!(status, StatusCode::OK);
        let current = token_field(&body, "refresh");
        assert_eq!(refresh(&server, &first).await, blacklisted());
        assert_eq!(refresh(&server, &current).await.0, StatusCode::OK);
        server.stop().await;
    }

    /// With reuse detection on, concurrent refreshes of one token still rotate it exactly once:
    /// the winner rotates, every other request is a replay within the grace period and gets the
    /// same new refresh token.
    async fn concurrent_refreshes_with_reuse_detection_rotate_once(backend) {
        let server = rotating(backend, true, Duration::from_secs(10)).await;
        for round in 1..=3 {
            let (token, _) = log_in_as(&server, "ann", "agent").await;
            let attempts: Vec<_> = (0..8)
                .map(|_| {
                    let request = server.client.post(server.url("/api/token/refresh/")).json(&json!({"refresh": token}));
                    tokio::spawn(async move {
                        let response = request.send().await.expect("sent");
                        (response.status(), response.json::<Value>().await.expect("JSON body"))
                    })
                })
                .collect();
            let mut refreshed = Vec::new();
            for attempt in attempts {
                let (status, body) = attempt.await.expect("request task");
                assert_eq!(status, StatusCode::OK, "{body}");
                refreshed.push(token_field(&body, "refresh"));
            }
            refreshed.dedup();
            assert_eq!(refreshed.len(), 1, "every request got the one new token");
            // Each round so far: a login, one rotation, one more refresh.
            let (outstanding, _) = server.store().token_counts().await.expect("counts");
            assert_eq!(outstanding, 3 * (round - 1) + 2, "exactly one rotation");
            assert_eq!(refresh(&server, &refreshed[0]).await.0, StatusCode::OK);
        }
        server.stop().await;
    }

    /// A refresh and the revocation of its session, fired together on connections opened
    /// before, leave no usable token whichever lands first: a refresh token the rotation
    /// issued is refused by refresh and by verify, and its access token too; neither request
    /// fails with a server error.
    async fn a_refresh_and_its_sessions_revocation_together_leave_no_usable_token(backend) {
        let server = rotating(backend, true, Duration::from_secs(10)).await;
        let clients: Vec<reqwest::Client> = (0..2).map(|_| reqwest::Client::new()).collect();
        for client in &clients {
            let response = client.get(server.url("/healthz")).send().await.expect("sent");
            assert_eq!(response.status(), StatusCode::OK);
        }
        let mut rotated_first = 0;
        for _ in 0..12 {
            let (token, access) = log_in_as(&server, "ann", "agent").await;
            let path = format!("/api/sessions/{}/", sid(&token));
            let refreshing = clients[0]
                .post(server.url("/api/token/refresh/"))
                .json(&json!({"refresh": token}))
                .send();
            let revoking = clients[1].delete(server.url(&path)).bearer_auth(&access).send();
            let (refreshed, revoked) = tokio::join!(refreshing, revoking);
            let (refreshed, revoked) = (refreshed.expect("sent"), revoked.expect("sent"));
            assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
            let status = refreshed.status();
            let body: Value = refreshed.json().await.expect("JSON body");
            if status == StatusCode::OK {
                rotated_first += 1;
                let (new_refresh, new_access) = (token_field(&body, "refresh"), token_field(&body, "access"));
                assert_eq!(refresh(&server, &new_refresh).await.0, StatusCode::UNAUTHORIZED);
                // simplejwt's verify answers a blacklisted token with 400.
                let verified = server.post_json("/api/token/verify/", json!({"token": new_refresh})).await;
                assert_eq!(verified, (StatusCode::BAD_REQUEST, json!({"non_field_errors": ["Token is blacklisted"]})));
                let bearer = format!("Bearer {new_access}");
                assert_eq!(server.get("/api/index/", Some(&bearer)).await.0, StatusCode::UNAUTHORIZED);
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            }
            assert_eq!(refresh(&server, &token).await.0, StatusCode::UNAUTHORIZED);
        }
        // Which lands first is up to the scheduler; the rounds are there to see both.
        eprintln!("the refresh landed first in {rotated_first} of 12 rounds");
        server.stop().await;
    }
}

/// `tollgate sessions list` shows a user's sessions; `sessions revoke` revokes one or all, and
/// the revoked refresh tokens are refused by the server; usage and unknown names fail.
#[tokio::test]
async fn sessions_command_lists_and_revokes() {
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
    let mut refresh_tokens = Vec::new();
    for agent in ["Firefox laptop", "Safari phone"] {
        refresh_tokens.push(log_in(&client, &served.base, agent).await.0);
    }
    let refresh_status = |token: String| {
        let client = client.clone();
        let url = format!("{}/api/token/refresh/", served.base);
        async move {
            client
                .post(url)
                .json(&json!({"refresh": token}))
                .send()
                .await
                .expect("sent")
                .status()
        }
    };

    let listed =
        run(tollgate(dir.path(), &["sessions", "list", "--user", "ann"]).env(key.0, key.1));
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let out = text(&listed.stdout);
    assert!(out.starts_with("ID"), "{out}");
    for (token, agent) in refresh_tokens
        .iter()
        .zip(["Firefox laptop", "Safari phone"])
    {
        let line = out
            .lines()
            .find(|l| l.starts_with(&sid(token)))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(
            line.contains("127.0.0.1") && line.ends_with(agent),
            "{line}"
        );
    }

    let phone = sid(&refresh_tokens[1]);
    let revoked = run(tollgate(
        dir.path(),
        &["sessions", "revoke", "--user", "ann", "--session", &phone],
    )
    .env(key.0, key.1));
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert_eq!(
        text(&revoked.stdout).trim(),
        format!("Session {phone} of user 'ann' revoked.")
    );
    assert_eq!(
        refresh_status(refresh_tokens[1].clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh_status(refresh_tokens[0].clone()).await,
        StatusCode::OK
    );
    let again = run(tollgate(
        dir.path(),
        &["sessions", "revoke", "--user", "ann", "--session", &phone],
    )
    .env(key.0, key.1));
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("has no live session"),
        "{}",
        text(&again.stderr)
    );

    let all = run(tollgate(
        dir.path(),
        &["sessions", "revoke", "--user", "ann", "--all"],
    )
    .env(key.0, key.1));
    assert!(all.status.success(), "{}", text(&all.stderr));
    assert_eq!(
        text(&all.stdout).trim(),
        "1 sessions of user 'ann' revoked."
    );
    assert_eq!(
        refresh_status(refresh_tokens[0].clone()).await,
        StatusCode::UNAUTHORIZED
    );
    let empty = run(tollgate(dir.path(), &["sessions", "list", "--user", "ann"]).env(key.0, key.1));
    assert_eq!(
        text(&empty.stdout).trim(),
        "User 'ann' has no live sessions."
    );

    // Deactivating ends the sessions: reactivated, the user's old refresh token stays refused.
    let (laptop, _) = log_in(&client, &served.base, "laptop").await;
    for (command, said) in [
        ("deactivate", "User 'ann' deactivated (1 sessions ended)."),
        ("activate", "User 'ann' activated."),
    ] {
        let done = run(tollgate(dir.path(), &[command, "ann"]).env(key.0, key.1));
        assert_eq!(text(&done.stdout).trim(), said, "{}", text(&done.stderr));
    }
    assert_eq!(refresh_status(laptop).await, StatusCode::UNAUTHORIZED);

    let unknown =
        run(tollgate(dir.path(), &["sessions", "list", "--user", "nobody"]).env(key.0, key.1));
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("user 'nobody' does not exist"));
    // Exactly one of --session and --all.
    for args in [
        &["sessions", "revoke", "--user", "ann"][..],
        &[
            "sessions",
            "revoke",
            "--user",
            "ann",
            "--all",
            "--session",
            "x",
        ],
    ] {
        assert_eq!(
            run(tollgate(dir.path(), args)).status.code(),
            Some(2),
            "{args:?}"
        );
    }
    let help = run(tollgate(dir.path(), &["sessions", "revoke", "--help"]));
    assert!(text(&help.stdout).contains("--all") && text(&help.stdout).contains("--session <ID>"));
}

/// `tollgate sessions revoke` with REDIS_URL copies the revoked tokens into the Redis denylist,
/// which servers trust: verify (which reads the blacklist) refuses them at once. Uses the local
/// Redis under a key prefix of its own.
#[tokio::test]
async fn sessions_revoke_reaches_the_redis_denylist() {
    use common::binary::Served;
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("tollgate-test-{}:", tollgate_core::new_jti());
    let settings = [
        ("TOLLGATE_SIGNING_KEY", common::TEST_KEY),
        ("TOLLGATE_REDIS_URL", "redis://127.0.0.1:6379/0"),
        ("TOLLGATE_REDIS_KEY_PREFIX", prefix.as_str()),
        ("TOLLGATE_ROTATE_REFRESH_TOKENS", "true"),
        ("TOLLGATE_BLACKLIST_AFTER_ROTATION", "true"),
    ];
    let with_settings = |args: &[&str]| {
        let mut command = tollgate(dir.path(), args);
        command.envs(settings);
        command
    };
    let mut create = with_settings(&["createuser", "--username", "ann", "--no-input"]);
    create.env("TOLLGATE_USER_PASSWORD", PASSWORD);
    assert!(run(create).status.success());
    let served = Served::start(with_settings(&[])).await;
    // Wait until the server filled Redis and trusts it.
    let redis = redis::Client::open("redis://127.0.0.1:6379/0").expect("url");
    let mut connection = redis
        .get_multiplexed_async_connection()
        .await
        .expect("local redis");
    let marker = format!("{prefix}denylist:synced");
    for _ in 0..100 {
        let synced: bool = redis::cmd("EXISTS")
            .arg(&marker)
            .query_async(&mut connection)
            .await
            .expect("EXISTS");
        if synced {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::new();
    let (refresh, _) = log_in(&client, &served.base, "laptop").await;
    let verify = |token: String| {
        let (client, url) = (client.clone(), format!("{}/api/token/verify/", served.base));
        async move {
            let response = client
                .post(url)
                .json(&json!({"token": token}))
                .send()
                .await
                .expect("sent");
            (
                response.status(),
                response.json::<Value>().await.expect("JSON"),
            )
        }
    };
    assert_eq!(verify(refresh.clone()).await, (StatusCode::OK, json!({})));
    let revoked = run(with_settings(&[
        "sessions", "revoke", "--user", "ann", "--all",
    ]));
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert!(
        !text(&revoked.stderr).contains("warning"),
        "{}",
        text(&revoked.stderr)
    );
    assert_eq!(
        verify(refresh).await,
        (
            StatusCode::BAD_REQUEST,
            json!({"non_field_errors": ["Token is blacklisted"]})
        )
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut connection)
            .await
            .expect("DEL");
    }
}

/// A server rotating and blacklisting refresh tokens, without reuse detection, with
/// REFRESH_TOKEN_RETRY_GRACE as given.
async fn retrying(backend: Backend, grace: Duration) -> TestServer {
    let server = TestServer::start_on(backend, |s| {
        s.rotate_refresh_tokens = true;
        s.blacklist_after_rotation = true;
        s.refresh_token_retry_grace = grace;
    })
    .await;
    server.create_user("ann", PASSWORD).await;
    server
}

on_both_backends! {
    /// A refresh committed whose answer the client never read (the connection dropped on the
    /// way back): with REFRESH_TOKEN_RETRY_GRACE, presenting the old token again within the
    /// grace gets the very token that replaced it, which goes on working; after the grace the
    /// old token is refused as simplejwt refuses it.
    async fn a_refresh_whose_answer_was_lost_is_retried_within_the_grace(backend) {
        let server = retrying(backend, Duration::from_secs(2)).await;
        let (refresh_token, _) = log_in_as(&server, "ann", "app").await;
        let (status, lost) = refresh(&server, &refresh_token).await;
        assert_eq!(status, StatusCode::OK, "{lost}");
        let successor = token_field(&lost, "refresh");

        let (status, retried) = refresh(&server, &refresh_token).await;
        assert_eq!(status, StatusCode::OK, "{retried}");
        let again = token_field(&retried, "refresh");
        assert_eq!(payload(&again)["jti"], payload(&successor)["jti"], "the same successor");
        assert_eq!(payload(&again)["exp"], payload(&successor)["exp"]);
        assert_eq!(sid(&again), sid(&refresh_token), "the same session");
        let access = token_field(&retried, "access");
        assert_eq!(server.send(Method::GET, "/api/index/", Some(&access), None).await.0, StatusCode::OK);

        // The retried answer's token is the family's current one: it rotates on.
        let (status, next) = refresh(&server, &again).await;
        assert_eq!(status, StatusCode::OK, "{next}");

        // Past the grace (whole seconds), the first token is refused and nothing else changes.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(refresh(&server, &refresh_token).await, blacklisted());
        let (status, body) = refresh(&server, &token_field(&next, "refresh")).await;
        assert_eq!(status, StatusCode::OK, "the family lives on: {body}");
    }

    /// Without REFRESH_TOKEN_RETRY_GRACE (the default), a rotated token presented again is
    /// refused at once, as simplejwt refuses it, and its successor is not touched.
    async fn without_a_retry_grace_a_rotated_token_is_refused_at_once(backend) {
        let server = retrying(backend, Duration::ZERO).await;
        let (refresh_token, _) = log_in_as(&server, "ann", "app").await;
        let (status, body) = refresh(&server, &refresh_token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(refresh(&server, &refresh_token).await, blacklisted());
        let (status, body) = refresh(&server, &token_field(&body, "refresh")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}
