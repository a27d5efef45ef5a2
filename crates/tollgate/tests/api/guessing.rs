//! Password guessing and account enumeration (#19): the throttle and the lockout hold against
//! requests sent together, on every path that checks a password, per account whatever names
//! it, and without telling which accounts exist or which identifiers belong together.
//! SECURITY.md lists each attack with the test here that proves the answer.

use crate::common;

use tollgate_core::settings::LoginField;

use tollgate_core::settings::AuthenticationClass;

use base64::Engine as _;
use common::{raw_request, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const PW: &str = "correct horse battery staple";

fn no_account() -> Value {
    json!({"detail": "No active account found with the given credentials"})
}

fn basic(credentials: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    format!("Basic {encoded}")
}

/// A wrong-password guess for `identifier`, on each password path in turn: the pair and sliding
/// obtain endpoints and HTTP Basic on a protected endpoint.
fn guess(n: usize, identifier: &str) -> Vec<u8> {
    let body = json!({"username": identifier, "password": format!("guess-{n}")});
    match n % 3 {
        0 => raw_request("POST", "/api/token/", &[], Some(&body)),
        1 => raw_request("POST", "/api/token/sliding/", &[], Some(&body)),
        _ => {
            let authorization = basic(&format!("{identifier}:guess-{n}"));
            raw_request(
                "GET",
                "/api/user/",
                &[("Authorization", &authorization)],
                None,
            )
        }
    }
}

fn count(answers: &[(StatusCode, Value)], status: StatusCode) -> usize {
    answers.iter().filter(|(s, _)| *s == status).count()
}

async fn login(server: &TestServer, identifier: &str, password: &str) -> (StatusCode, Value) {
    server
        .post_json(
            "/api/token/",
            json!({"username": identifier, "password": password}),
        )
        .await
}

/// How many wrong passwords were checked on an account: each is recorded as an event.
async fn checked_wrong_passwords(server: &TestServer, user_id: i64) -> usize {
    let events = server
        .store()
        .login_events(user_id, 1000)
        .await
        .expect("events listed");
    events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("wrong_password"))
        .count()
}

on_both_backends! {
    /// 60 guesses sent together on open connections, over the pair, sliding and Basic paths, to
    /// an account with LOGIN_LOCKOUT_THRESHOLD = 5: five passwords are checked, every other
    /// guess is refused as locked, and so is the right password afterwards.
    async fn concurrent_guesses_get_no_more_checks_than_the_lockout_allows(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.authentication_classes = vec![AuthenticationClass::Jwt, AuthenticationClass::Basic];
            s.login_lockout_threshold = 5;
            s.login_failures_per_account = 0;
            s.login_failures_per_address = 0;
        })
        .await;
        let ann = server.create_user("ann", PW).await;
        let guesses = (0..60).map(|n| guess(n, "ann")).collect();
        let answers = server.send_together(guesses).await;
        assert_eq!(count(&answers, StatusCode::UNAUTHORIZED), 5, "{answers:?}");
        assert_eq!(count(&answers, StatusCode::FORBIDDEN), 55, "{answers:?}");
        assert_eq!(checked_wrong_passwords(&server, ann.id).await, 5);
        let (status, body) = login(&server, "ann", PW).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["code"], "account_locked");
    }

    /// The same with the throttle alone (LOGIN_FAILURES_PER_ACCOUNT = 10, no lockout): ten
    /// checks, 429 for the rest and for the right password.
    async fn concurrent_guesses_get_no_more_checks_than_the_throttle_allows(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.authentication_classes = vec![AuthenticationClass::Jwt, AuthenticationClass::Basic];
            assert_eq!(s.login_failures_per_account, 10, "the default");
        })
        .await;
        let ann = server.create_user("ann", PW).await;
        let guesses = (0..60).map(|n| guess(n, "ann")).collect();
        let answers = server.send_together(guesses).await;
        assert_eq!(count(&answers, StatusCode::UNAUTHORIZED), 10, "{answers:?}");
        assert_eq!(count(&answers, StatusCode::TOO_MANY_REQUESTS), 50, "{answers:?}");
        assert_eq!(checked_wrong_passwords(&server, ann.id).await, 10);
        assert_eq!(login(&server, "ann", PW).await.0, StatusCode::TOO_MANY_REQUESTS);
    }

    /// Checks in flight take places, since any may fail; many right passwords sent together
    /// to one account (a service account used by many workers) wait for the checks before
    /// them instead of being refused, with the throttle and with a lockout.
    async fn many_logins_at_once_to_one_account_are_all_served(backend) {
        let server = TestServer::start_on(backend, |s| s.login_lockout_threshold = 3).await;
        let ann = server.create_user("ann", PW).await;
        let body = json!({"username": "ann", "password": PW});
        let logins = (0..30).map(|_| raw_request("POST", "/api/token/", &[], Some(&body))).collect();
        let answers = server.send_together(logins).await;
        assert_eq!(count(&answers, StatusCode::OK), 30, "{answers:?}");
        assert_eq!(checked_wrong_passwords(&server, ann.id).await, 0);
        // Nothing was left counted: three wrong passwords still go by before the lock.
        for _ in 0..3 {
            assert_eq!(login(&server, "ann", "wrong").await, (StatusCode::UNAUTHORIZED, no_account()));
        }
        assert_eq!(login(&server, "ann", PW).await.0, StatusCode::FORBIDDEN);
    }

    /// The old password of a password change counts toward the same limits: a stolen access
    /// token guessing it gets ten checks, even sent together, then 429, and logins to the
    /// account get no check either.
    async fn the_old_password_check_is_throttled_like_a_login(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let ann = server.create_user("ann", PW).await;
        let (_, access) = server.obtain_pair("ann", PW).await;
        let bearer = format!("Bearer {access}");
        let guesses = (0..30)
            .map(|n| {
                let body = json!({"old_password": format!("guess-{n}"), "new_password": "a new long passphrase"});
                raw_request("POST", "/api/user/password/", &[("Authorization", &bearer)], Some(&body))
            })
            .collect();
        let answers = server.send_together(guesses).await;
        let wrong = json!({"old_password": ["Your old password was entered incorrectly. Please enter it again."]});
        let refused_as_wrong = answers.iter().filter(|(s, b)| *s == StatusCode::BAD_REQUEST && *b == wrong).count();
        assert_eq!(refused_as_wrong, 10, "{answers:?}");
        assert_eq!(count(&answers, StatusCode::TOO_MANY_REQUESTS), 20, "{answers:?}");
        assert_eq!(checked_wrong_passwords(&server, ann.id).await, 10);
        // The right old password is not even checked now.
        let body = json!({"old_password": PW, "new_password": "a new long passphrase"});
        let (status, _) = server
            .send(reqwest::Method::POST, "/api/user/password/", Some(&access), Some(body))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        // A login names the account by a name that has not failed: refused without a check,
        // as a wrong password is, so the answer does not link the name to the account.
        assert_eq!(login(&server, "ann", PW).await, (StatusCode::UNAUTHORIZED, no_account()));
        assert_eq!(checked_wrong_passwords(&server, ann.id).await, 10);
    }

    /// After the same failures, every spelling of an existing username and of a name that
    /// names nobody gets the same answer, and failures on an account's username say nothing of
    /// which email is its own.
    async fn a_lock_looks_the_same_for_accounts_that_exist_and_those_that_do_not(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.login_fields = vec![LoginField::Username, LoginField::Email];
            s.login_lockout_threshold = 3;
            s.login_failures_per_account = 0;
        })
        .await;
        server.create_user("alice", PW).await;
        for name in ["alice", "ghost"] {
            for _ in 0..3 {
                assert_eq!(login(&server, name, "wrong").await, (StatusCode::UNAUTHORIZED, no_account()));
            }
        }
        let pairs = [
            ("alice", "ghost"),
            ("ALICE", "GHOST"),
            ("Alice", "Ghost"),
            ("ａｌｉｃｅ", "ｇｈｏｓｔ"),
            ("alice@example.com", "ghost@example.com"),
            ("ALICE@EXAMPLE.COM", "GHOST@EXAMPLE.COM"),
        ];
        for (existing, missing) in pairs {
            let (status, body) = login(&server, existing, PW).await;
            let (other_status, other_body) = login(&server, missing, PW).await;
            assert_eq!(status, other_status, "{existing} vs {missing}: {body} / {other_body}");
            assert_eq!(body, other_body, "{existing} vs {missing}");
        }
    }

    /// With LOGIN_FIELDS = username, email and phone, an account has one budget: after the
    /// username's failures the right password given with the email or the phone is not checked.
    async fn an_account_has_one_budget_whichever_identifier_names_it(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.login_fields = vec![LoginField::Username, LoginField::Email, LoginField::Phone];
            s.login_failures_per_account = 3;
        })
        .await;
        let ann = server.create_user("ann", PW).await;
        let changes = tollgate_store::UserChanges {
            phone: Some(Some("+15550100".into())),
            ..Default::default()
        };
        server
            .store()
            .update_user(ann.id, &changes, tollgate_store::UserField::Id, 0)
            .await
            .expect("phone set");
        for _ in 0..3 {
            assert_eq!(login(&server, "ann", "wrong").await.0, StatusCode::UNAUTHORIZED);
        }
        for identifier in ["ann@example.com", "ANN@example.com", "+15550100"] {
            let answer = login(&server, identifier, PW).await;
            assert_eq!(answer, (StatusCode::UNAUTHORIZED, no_account()), "{identifier}");
        }
        assert_eq!(checked_wrong_passwords(&server, ann.id).await, 3);
        // The username itself is out of attempts and says so.
        assert_eq!(login(&server, "ann", PW).await.0, StatusCode::TOO_MANY_REQUESTS);
    }
}

/// Registration counts per address (REGISTRATIONS_PER_ADDRESS), successful or not, so its
/// "already exists" answers are no fast enumeration oracle; requests sent together get no more.
#[tokio::test]
async fn registration_is_throttled_per_address() {
    let server = TestServer::start_with(|s| {
        assert_eq!(s.registrations_per_address, 20, "the default");
        s.registrations_per_address = 5;
    })
    .await;
    server.create_user("taken", PW).await;
    let attempts = (0..30)
        .map(|n| {
            let username = if n % 2 == 0 {
                "taken".to_owned()
            } else {
                format!("new{n}")
            };
            let body = json!({"username": username, "password": "a long enough passphrase"});
            raw_request("POST", "/api/users/", &[], Some(&body))
        })
        .collect();
    let answers = server.send_together(attempts).await;
    assert_eq!(
        count(&answers, StatusCode::TOO_MANY_REQUESTS),
        25,
        "{answers:?}"
    );
    let (status, body) = server
        .post_json(
            "/api/users/",
            json!({"username": "later", "password": "a long enough passphrase"}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let detail = body["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with("Request was throttled. Expected available in "),
        "{detail}"
    );
}

/// IPv6 clients are counted by their /64 and an IPv4-mapped address as the IPv4 one, so hopping
/// between one's own addresses buys no more guesses.
#[tokio::test]
async fn ipv6_clients_are_counted_by_their_network() {
    let server = TestServer::start_with(|s| {
        s.trusted_proxies = vec![std::net::IpAddr::from([127, 0, 0, 1]).into()];
        s.login_failures_per_address = 3;
    })
    .await;
    let from = |client: &str, n: usize| {
        let body = json!({"username": format!("nobody{n}"), "password": "wrong"});
        let server = &server;
        let client = client.to_owned();
        async move {
            server
                .client
                .post(server.url("/api/token/"))
                .header("X-Forwarded-For", client)
                .json(&body)
                .send()
                .await
                .expect("sent")
                .status()
        }
    };
    for (n, client) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
        .iter()
        .enumerate()
    {
        assert_eq!(from(client, n).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        from("2001:db8:1:2::4", 9).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(from("2001:db8:1:3::1", 9).await, StatusCode::UNAUTHORIZED);
    for (n, client) in ["192.0.2.7", "::ffff:192.0.2.7", "192.0.2.7"]
        .iter()
        .enumerate()
    {
        assert_eq!(from(client, n).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        from("::ffff:192.0.2.7", 9).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
