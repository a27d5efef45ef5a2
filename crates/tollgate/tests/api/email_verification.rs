//! Email verification at registration (EMAIL_VERIFICATION), end to end against a real SMTP
//! server: the activation mail is read and its link followed.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_core::settings::EmailVerification;

use crate::common::smtp::{delivered, link_in, wait_for, SmtpServer};
use crate::common::{Backend, TestServer};

const PASSWORD: &str = "quantum-ferret-72";
const PAGE: &str = "https://app.example.com/activate/{uid}/{token}";
const MAIL_WAIT: Duration = Duration::from_secs(10);

async fn verifying(backend: Backend, smtp: &SmtpServer, mode: EmailVerification) -> TestServer {
    let url = smtp.url();
    TestServer::start_on(backend, |s| {
        s.smtp_url = tollgate_core::settings::Secret(url);
        s.activation_url = Some(PAGE.to_owned());
        s.email_verification = mode;
    })
    .await
}

async fn post(server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    let response = server
        .client
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn register(server: &TestServer) {
    let body = json!({"username": "ann", "email": "ann@example.com", "password": PASSWORD});
    let (status, user) = post(server, "/api/users/", body).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
}

async fn log_in(server: &TestServer, password: &str) -> (StatusCode, Value) {
    post(
        server,
        "/api/token/",
        json!({"username": "ann", "password": password}),
    )
    .await
}

fn link_of(text: &str) -> (String, String) {
    link_in(text, "https://app.example.com/activate/")
}

async fn activate(server: &TestServer, (uid, token): &(String, String)) -> (StatusCode, Value) {
    post(
        server,
        "/api/users/activation/",
        json!({"uid": uid, "token": token}),
    )
    .await
}

on_both_backends! {
    /// With `mandatory`, registration mails an activation link; until it is followed a correct
    /// password is answered `email_not_verified` (a wrong one as always); after it, logins work,
    /// and the link is stale.
    async fn mandatory_verification_holds_logins_until_the_link_is_followed(backend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = SmtpServer::start_in(dir.path());
        let server = verifying(backend, &smtp, EmailVerification::Mandatory).await;
        register(&server).await;
        let mails = wait_for(&smtp.maildir, "ann@example.com", 1, MAIL_WAIT).await;
        assert_eq!(mails[0].subject, "Confirm your email address");
        let link = link_of(&mails[0].text);

        assert_eq!(log_in(&server, PASSWORD).await, (StatusCode::UNAUTHORIZED,
            json!({"detail": "E-mail is not verified.", "code": "email_not_verified"})));
        assert_eq!(log_in(&server, "not-her-password").await, (StatusCode::UNAUTHORIZED,
            json!({"detail": "No active account found with the given credentials"})));

        let wrong = (link.0.clone(), "x".repeat(43));
        assert_eq!(activate(&server, &wrong).await,
            (StatusCode::BAD_REQUEST, json!({"token": ["Invalid token for given user."]})));
        let nobody = ("Nzc3".to_owned(), link.1.clone());
        assert_eq!(activate(&server, &nobody).await,
            (StatusCode::BAD_REQUEST, json!({"uid": ["Invalid user id or user doesn't exist."]})));
        assert_eq!(activate(&server, &link).await.0, StatusCode::NO_CONTENT);
        assert_eq!(activate(&server, &link).await,
            (StatusCode::FORBIDDEN, json!({"detail": "Stale token for given user."})));
        let (status, body) = log_in(&server, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// With `optional`, logins work before the link is followed; `resend_activation` mails a
    /// new link, which voids the old one, and answers the same for an unknown address.
    async fn resend_activation_mails_a_new_link_that_voids_the_old(backend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = SmtpServer::start_in(dir.path());
        let server = verifying(backend, &smtp, EmailVerification::Optional).await;
        register(&server).await;
        let first = link_of(&wait_for(&smtp.maildir, "ann@", 1, MAIL_WAIT).await[0].text);
        assert_eq!(log_in(&server, PASSWORD).await.0, StatusCode::OK);

        for email in ["nobody@example.com", "ann@example.com"] {
            let (status, _) = post(&server, "/api/users/resend_activation/", json!({"email": email})).await;
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
        let second = link_of(&wait_for(&smtp.maildir, "ann@", 2, MAIL_WAIT).await[1].text);
        assert_eq!(delivered(&smtp.maildir).len(), 2, "nothing for an unknown address");
        assert_eq!(activate(&server, &first).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(activate(&server, &second).await.0, StatusCode::NO_CONTENT);
        // Confirmed: no more links for it.
        let (status, _) = post(&server, "/api/users/resend_activation/", json!({"email": "ann@example.com"})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(delivered(&smtp.maildir).len(), 2);
    }

    /// Accounts made without a registration's verification (by an administrator, an import,
    /// or before it was turned on) count as confirmed.
    async fn accounts_made_otherwise_count_as_confirmed(backend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = SmtpServer::start_in(dir.path());
        let server = verifying(backend, &smtp, EmailVerification::Mandatory).await;
        server.create_user("ann", PASSWORD).await;
        let (status, body) = log_in(&server, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// With verification off (the default), the endpoints say so.
#[tokio::test]
async fn without_verification_the_endpoints_say_it_is_off() {
    let server = TestServer::start_with(|_| {}).await;
    let (status, body) = post(
        &server,
        "/api/users/activation/",
        json!({"uid": "MQ", "token": "t"}),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("not_configured"))
    );
}

on_both_backends! {
    /// With verification on, a new address waits until the link sent to it is followed: the
    /// user shows it as pending, the old address gets a notice, and logins by email keep using
    /// the old address until the change is confirmed.
    async fn a_new_address_takes_effect_once_its_link_is_followed(backend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp = SmtpServer::start_in(dir.path());
        let url = smtp.url();
        let server = TestServer::start_on(backend, |s| {
            s.smtp_url = tollgate_core::settings::Secret(url);
            s.activation_url = Some(PAGE.to_owned());
            s.email_change_url = Some("https://app.example.com/email/{uid}/{token}".to_owned());
            s.email_verification = EmailVerification::Optional;
        })
        .await;
        server.create_user("ann", PASSWORD).await;
        let (_, tokens) = log_in(&server, PASSWORD).await;
        let access = crate::common::token_field(&tokens, "access");
        let response = server
            .client
            .patch(server.url("/api/user/"))
            .bearer_auth(&access)
            .json(&json!({"email": "ann@new.example.org"}))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::OK);
        let user: Value = response.json().await.expect("JSON");
        assert_eq!((&user["email"], &user["pending_email"]),
            (&json!("ann@example.com"), &json!("ann@new.example.org")));

        let notice = wait_for(&smtp.maildir, "ann@example.com", 1, MAIL_WAIT).await;
        assert_eq!(notice[0].subject, "Your email address is being changed");
        assert!(notice[0].text.contains("ann@new.example.org"));
        let mail = wait_for(&smtp.maildir, "ann@new.example.org", 1, MAIL_WAIT).await;
        let (uid, token) = link_in(&mail[0].text, "https://app.example.com/email/");
        let (uid, token) = (uid.as_str(), token.as_str());
        assert!(!notice[0].text.contains(token), "the old address never sees the link");

        let confirm = |token: String| {
            post(&server, "/api/users/confirm_email/", json!({"uid": uid, "token": token}))
        };
        assert_eq!(confirm("x".repeat(43)).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(confirm(token.to_owned()).await.0, StatusCode::NO_CONTENT);
        let response = server
            .client
            .get(server.url("/api/user/"))
            .bearer_auth(&access)
            .send()
            .await
            .expect("sent");
        let user: Value = response.json().await.expect("JSON");
        assert_eq!((&user["email"], &user["pending_email"]),
            (&json!("ann@new.example.org"), &Value::Null));
        assert_eq!(confirm(token.to_owned()).await.0, StatusCode::BAD_REQUEST, "spent");
    }
}
