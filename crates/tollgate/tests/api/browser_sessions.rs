//! Sessions for browsers (#9): the refresh token in an HttpOnly cookie with an origin check,
//! deleted and inactive users refused, and no usable token left in the database.

use crate::common;

use common::{token_field, Backend, TestServer};
use reqwest::header::{COOKIE, HOST, ORIGIN, REFERER, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_core::unix_now;

const PASSWORD: &str = "correct horse battery";
const COOKIE_NAME: &str = "tollgate_refresh";

/// A server with the refresh cookie on, rotating and blacklisting refresh tokens.
async fn cookie_server(backend: Backend) -> TestServer {
    let server = TestServer::start_on(backend, |s| {
        s.refresh_cookie = true;
        s.rotate_refresh_tokens = true;
        s.blacklist_after_rotation = true;
        s.csrf_trusted_origins = vec!["https://app.example.com".to_owned()];
    })
    .await;
    server.create_user("user1", PASSWORD).await;
    server
}

/// A response's status, `Set-Cookie` values and JSON body.
struct Answer {
    status: StatusCode,
    set_cookies: Vec<String>,
    body: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Answer {
        let status = response.status();
        let set_cookies = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ASCII Set-Cookie").to_owned())
            .collect();
        let body = response.json().await.expect("JSON body");
        Answer {
            status,
            set_cookies,
            body,
        }
    }

    /// The one refresh cookie this answer sets: its value and its attributes.
    fn refresh_cookie(&self) -> (String, String) {
        assert_eq!(self.set_cookies.len(), 1, "{:?}", self.set_cookies);
        let (pair, attributes) = self.set_cookies[0]
            .split_once(';')
            .expect("cookie has attributes");
        let value = pair
            .strip_prefix(&format!("{COOKIE_NAME}="))
            .expect("the refresh cookie");
        (value.to_owned(), attributes.trim().to_owned())
    }
}

/// The attributes after a refresh cookie's leading `Max-Age`, which must be what the token has
/// left to live: REFRESH_TOKEN_LIFETIME, less the second that may have turned since it was
/// minted.
fn after_max_age<'a>(attributes: &'a str, server: &TestServer) -> &'a str {
    let lifetime = server.settings.refresh_token_lifetime.as_secs();
    let (max_age, rest) = attributes
        .strip_prefix("Max-Age=")
        .and_then(|a| a.split_once("; "))
        .expect("Max-Age first");
    let max_age: u64 = max_age.parse().expect("seconds");
    assert!((lifetime - 1..=lifetime).contains(&max_age), "{attributes}");
    rest
}

/// A login from a page on Tollgate's own origin, as its `fetch` sends it.
async fn log_in(server: &TestServer) -> Answer {
    let response = server
        .client
        .post(server.url("/api/token/"))
        .header(ORIGIN, &server.base)
        .json(&json!({"username": "user1", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    Answer::read(response).await
}

/// A POST with no body, the refresh cookie and an `Origin`, as a browser's `fetch` sends it.
async fn post_with_cookie(
    server: &TestServer,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
) -> Answer {
    let mut request = server
        .client
        .post(server.url(path))
        .header(COOKIE, format!("theme=dark; {COOKIE_NAME}={cookie}"));
    if let Some(origin) = origin {
        request = request.header(ORIGIN, origin);
    }
    Answer::read(request.send().await.expect("sent")).await
}

const APP: Option<&str> = Some("https://app.example.com");

on_both_backends! {
    /// Login sets the cookie and keeps the refresh token out of the body; refresh works from the
    /// cookie alone and rotates it; logout blacklists it and clears the cookie.
    async fn cookie_flow_end_to_end(backend) {
        let server = cookie_server(backend).await;
        let login = log_in(&server).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        let body = login.body.as_object().expect("object");
        assert_eq!(body.keys().collect::<Vec<_>>(), ["access"], "no refresh in the body");
        let (refresh, attributes) = login.refresh_cookie();
        assert_eq!(
            after_max_age(&attributes, &server),
            "Path=/api/token/; HttpOnly; SameSite=Strict; Secure"
        );
        let claims = server.state.codec.decode(&refresh, unix_now()).expect("a valid token");
        assert_eq!(claims.get("token_type"), Some(&json!("refresh")));

        // Refresh from the cookie alone: a new access token, and the rotated refresh token in a
        // new cookie, not in the body.
        let refreshed = post_with_cookie(&server, "/api/token/refresh/", &refresh, APP).await;
        assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
        assert_eq!(refreshed.body.as_object().expect("object").len(), 1);
        let access = token_field(&refreshed.body, "access");
        let (status, me) = server.get("/api/index/", Some(&format!("Bearer {access}"))).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        let (rotated, _) = refreshed.refresh_cookie();
        assert_ne!(rotated, refresh);
        // The presented token was blacklisted by the rotation.
        let replay = post_with_cookie(&server, "/api/token/refresh/", &refresh, APP).await;
        assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
        assert_eq!(replay.body, json!({"detail": "Token is blacklisted", "code": "token_not_valid"}));

        // Logout from the cookie: blacklisted, and the cookie cleared with the same path.
        let logout = post_with_cookie(&server, "/api/token/blacklist/", &rotated, APP).await;
        assert_eq!(logout.status, StatusCode::OK, "{}", logout.body);
        assert_eq!(logout.body, json!({}));
        assert_eq!(
            logout.set_cookies,
            [format!("{COOKIE_NAME}=; Max-Age=0; Path=/api/token/; HttpOnly; SameSite=Strict; Secure")]
        );
        let after = post_with_cookie(&server, "/api/token/refresh/", &rotated, APP).await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED);
        // Logging out again with the stale cookie still clears it.
        let again = post_with_cookie(&server, "/api/token/blacklist/", &rotated, APP).await;
        assert_eq!(again.status, StatusCode::UNAUTHORIZED);
        assert_eq!(again.set_cookies.len(), 1);
        assert!(again.set_cookies[0].starts_with(&format!("{COOKIE_NAME}=; Max-Age=0")));
        server.stop().await;
    }

    /// No text in any table, after a login, a refresh and a logout, is or holds a token that
    /// verifies: the store keeps token ids, never tokens (#9).
    async fn database_holds_no_usable_token(backend) {
        let server = TestServer::start_on(backend, |s| {
            s.rotate_refresh_tokens = true;
            s.blacklist_after_rotation = true;
            s.update_last_login = true;
        })
        .await;
        server.create_user("user1", PASSWORD).await;
        let (refresh, access) = server.obtain_pair("user1", PASSWORD).await;
        let (status, body) = server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let rotated = token_field(&body, "refresh");
        let (status, _) = server.post_json("/api/token/blacklist/", json!({"refresh": rotated})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, second_access) = server.obtain_pair("user1", PASSWORD).await;
        let (status, body) = server.post_json("/api/token/sliding/", json!({"username": "user1", "password": PASSWORD})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let sliding = token_field(&body, "token");
        let handed_out = [&refresh, &access, &rotated, &second_access, &sliding];

        let texts = every_text_value(&server).await;
        // The scan reads the token tables: the refresh token's id is there.
        let claims = server.state.codec.decode(&refresh, unix_now()).expect("valid");
        let jti = claims.get("jti").and_then(Value::as_str).expect("has a jti");
        assert!(texts.iter().any(|t| t == jti), "the scan did not reach the outstanding tokens");
        for text in &texts {
            for token in handed_out {
                assert!(!text.contains(token.as_str()), "a token is stored: {text}");
            }
            for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))) {
                assert!(
                    server.state.codec.decode(word, unix_now()).is_err(),
                    "a stored value verifies as a token: {word}"
                );
            }
        }
        server.stop().await;
    }

    /// Verify and sliding refresh answer 401 for a deleted or deactivated user, as refresh does.
    async fn deleted_and_inactive_users_are_refused(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let active = server.create_user("user1", PASSWORD).await;
        let (refresh, access) = server.obtain_pair("user1", PASSWORD).await;
        let (status, body) = server.post_json("/api/token/sliding/", json!({"username": "user1", "password": PASSWORD})).await;
        assert_eq!(status, StatusCode::OK);
        let sliding = token_field(&body, "token");
        for token in [&refresh, &access, &sliding] {
            assert_eq!(server.post_json("/api/token/verify/", json!({"token": token})).await, (StatusCode::OK, json!({})));
        }
        let refused = (StatusCode::UNAUTHORIZED, json!({"detail": "No active account found for the given token."}));
        for change in ["deactivate", "delete"] {
            match change {
                "deactivate" => assert!(server.store().set_active(active.id, false).await.expect("updated")),
                _ => assert!(server.store().delete_user(active.id).await.expect("deleted")),
            }
            for token in [&refresh, &access, &sliding] {
                assert_eq!(server.post_json("/api/token/verify/", json!({"token": token})).await, refused, "{change}");
            }
            assert_eq!(server.post_json("/api/token/sliding/refresh/", json!({"token": sliding})).await, refused, "{change}");
            assert_eq!(server.post_json("/api/token/refresh/", json!({"refresh": refresh})).await, refused, "{change}");
        }
        server.stop().await;
    }
}

/// Every non-null text value of every table in the server's database.
async fn every_text_value(server: &TestServer) -> Vec<String> {
    use sqlx::{Column, Row};
    let url = server.settings.database_url.clone();
    let mut texts = Vec::new();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("opens");
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&pool)
                .await
                .expect("tables");
        for table in tables {
            let rows = sqlx::query(&format!("SELECT * FROM \"{table}\""))
                .fetch_all(&pool)
                .await
                .expect("rows");
            for row in rows {
                for column in row.columns() {
                    if let Ok(Some(text)) = row.try_get::<Option<String>, _>(column.ordinal()) {
                        texts.push(text);
                    }
                }
            }
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&url).await.expect("opens");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&pool)
        .await
        .expect("tables");
        for table in tables {
            // Every column as text, so no type is skipped.
            let rows = sqlx::query(&format!("SELECT t::text AS row FROM \"{table}\" t"))
                .fetch_all(&pool)
                .await
                .expect("rows");
            for row in rows {
                texts.push(row.try_get::<String, _>("row").expect("row as text"));
            }
            let columns: Vec<String> = sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = $1",
            )
            .bind(&table)
            .fetch_all(&pool)
            .await
            .expect("columns");
            for column in columns {
                let values: Vec<Option<String>> =
                    sqlx::query_scalar(&format!("SELECT \"{column}\"::text FROM \"{table}\""))
                        .fetch_all(&pool)
                        .await
                        .expect("values");
                texts.extend(values.into_iter().flatten());
            }
        }
        pool.close().await;
    }
    texts
}

/// Cookie requests from elsewhere are refused with DRF's CSRF answer; trusted and own origins
/// pass; a token in the body needs no origin.
#[tokio::test]
async fn cross_site_cookie_requests_are_refused() {
    let server = cookie_server(Backend::Sqlite).await;
    let (refresh, _) = log_in(&server).await.refresh_cookie();
    let refused = post_with_cookie(
        &server,
        "/api/token/refresh/",
        &refresh,
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.body,
        json!({"detail": "CSRF Failed: origin https://evil.example is not trusted."})
    );
    assert!(refused.set_cookies.is_empty());
    let logout = post_with_cookie(&server, "/api/token/blacklist/", &refresh, None).await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    assert_eq!(
        logout.body,
        json!({"detail": "CSRF Failed: the refresh cookie needs an Origin or Referer header."})
    );
    assert!(
        logout.set_cookies.is_empty(),
        "a forged logout must not clear the cookie"
    );
    // A Referer from elsewhere is refused; one from the trusted origin passes.
    let cross_referer = server
        .client
        .post(server.url("/api/token/refresh/"))
        .header(COOKIE, format!("{COOKIE_NAME}={refresh}"))
        .header(REFERER, "https://evil.example/app.example.com")
        .send()
        .await
        .expect("sent");
    assert_eq!(cross_referer.status(), StatusCode::FORBIDDEN);

    // Tollgate's own origin: the Origin's host and port are the Host header's.
    let own = server.base.replace("http://", "");
    let response = server
        .client
        .post(server.url("/api/token/refresh/"))
        .header(COOKIE, format!("{COOKIE_NAME}={refresh}"))
        .header(ORIGIN, &server.base)
        .header(HOST, &own)
        .send()
        .await
        .expect("sent");
    let answer = Answer::read(response).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let (rotated, _) = answer.refresh_cookie();

    // A token in the body is checked too: the answer would set its rotated successor as the
    // cookie, so another site could plant its own session in the browser.
    let (status, body) = server
        .post_json("/api/token/refresh/", json!({"refresh": rotated}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let response = server
        .client
        .post(server.url("/api/token/refresh/"))
        .header(ORIGIN, "https://app.example.com")
        .json(&json!({"refresh": rotated}))
        .send()
        .await
        .expect("sent");
    let answer = Answer::read(response).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.get("refresh").is_none());
    answer.refresh_cookie();
    server.stop().await;
}

/// Login CSRF (#19): a form on another site that posts good credentials to the login endpoint
/// is refused before the password is checked, and sets no cookie; so are logins without an
/// origin. The same form from Tollgate's own origin logs in.
#[tokio::test]
async fn cross_site_login_is_refused_and_sets_no_cookie() {
    let server = TestServer::start_with(|s| {
        s.refresh_cookie = true;
        s.update_last_login = true;
        s.csrf_trusted_origins = vec!["https://app.example.com".to_owned()];
    })
    .await;
    server.create_user("user1", PASSWORD).await;
    let last_login = || async {
        server
            .store()
            .find_user(tollgate_store::UserField::Username, "user1")
            .await
            .expect("reads")
            .expect("exists")
            .last_login
    };
    let form = serde_urlencoded::to_string([("username", "user1"), ("password", PASSWORD)])
        .expect("form encodes");
    let login_form = |origin: Option<(&'static str, &str)>| {
        let mut request = server
            .client
            .post(server.url("/api/token/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone());
        if let Some((name, value)) = origin {
            request = request.header(name, value);
        }
        async move { Answer::read(request.send().await.expect("sent")).await }
    };
    let cross_site = login_form(Some(("origin", "https://evil.example"))).await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    assert_eq!(
        cross_site.body,
        json!({"detail": "CSRF Failed: origin https://evil.example is not trusted."})
    );
    assert!(
        cross_site.set_cookies.is_empty(),
        "{:?}",
        cross_site.set_cookies
    );
    let cross_referer = login_form(Some(("referer", "https://evil.example/login"))).await;
    assert_eq!(cross_referer.status, StatusCode::FORBIDDEN);
    assert!(cross_referer.set_cookies.is_empty());
    let anonymous = login_form(None).await;
    assert_eq!(anonymous.status, StatusCode::FORBIDDEN);
    assert_eq!(
        anonymous.body,
        json!({"detail": "CSRF Failed: the refresh cookie needs an Origin or Referer header."})
    );
    assert!(anonymous.set_cookies.is_empty());
    // Refused before the password was checked: the account shows no login.
    assert_eq!(last_login().await, None);

    let own = login_form(Some(("origin", server.base.as_str()))).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    let (refresh, _) = own.refresh_cookie();
    assert!(server.state.codec.decode(&refresh, unix_now()).is_ok());
    assert!(last_login().await.is_some());
    let trusted = login_form(Some(("origin", "https://app.example.com"))).await;
    assert_eq!(trusted.status, StatusCode::OK, "{}", trusted.body);
    server.stop().await;
}

/// Cookie tossing (#19): a request carrying two refresh cookies, in one `Cookie` header or in
/// two, is refused at refresh and at logout instead of one being picked, and changes nothing.
#[tokio::test]
async fn two_refresh_cookies_are_refused() {
    let server = cookie_server(Backend::Sqlite).await;
    let (mine, _) = log_in(&server).await.refresh_cookie();
    let (planted, _) = log_in(&server).await.refresh_cookie();
    let refused =
        json!({"detail": "CSRF Failed: the request carries more than one refresh cookie."});
    for path in ["/api/token/refresh/", "/api/token/blacklist/"] {
        for cookies in [
            vec![format!(
                "{COOKIE_NAME}={planted}; theme=dark; {COOKIE_NAME}={mine}"
            )],
            vec![
                format!("{COOKIE_NAME}={planted}"),
                format!("{COOKIE_NAME}={mine}"),
            ],
        ] {
            let mut request = server
                .client
                .post(server.url(path))
                .header(ORIGIN, "https://app.example.com");
            for cookie in &cookies {
                request = request.header(COOKIE, cookie);
            }
            let answer = Answer::read(request.send().await.expect("sent")).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path} {cookies:?}");
            assert_eq!(answer.body, refused, "{path}");
            assert!(
                answer.set_cookies.is_empty(),
                "{path}: {:?}",
                answer.set_cookies
            );
        }
    }
    // Neither token was rotated or logged out by the refused requests.
    for token in [&mine, &planted] {
        let answer = post_with_cookie(&server, "/api/token/refresh/", token, APP).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    server.stop().await;
}

/// With the cookie off (the default) nothing changes: the body carries the refresh token, no
/// cookie is set, and a cookie is not read.
#[tokio::test]
async fn without_the_setting_tokens_travel_in_the_body() {
    let server = TestServer::start().await;
    server.create_user("user1", PASSWORD).await;
    let login = log_in(&server).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.set_cookies.is_empty());
    let refresh = token_field(&login.body, "refresh");
    let answer = post_with_cookie(&server, "/api/token/refresh/", &refresh, APP).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body, json!({"refresh": ["This field is required."]}));
    server.stop().await;
}

/// DEVELOPMENT drops `Secure`, for plain-HTTP hosts other than localhost; the cookie's
/// path and domain follow the settings.
#[tokio::test]
async fn development_drops_secure_and_attributes_follow_settings() {
    let server = TestServer::start_with(|s| {
        s.refresh_cookie = true;
        s.development = true;
        s.refresh_cookie_name = "rt".to_owned();
        s.refresh_cookie_path = Some("/api/".to_owned());
        s.refresh_cookie_domain = Some("auth.example.com".to_owned());
    })
    .await;
    server.create_user("user1", PASSWORD).await;
    let login = log_in(&server).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.set_cookies.len(), 1);
    let (pair, attributes) = login.set_cookies[0]
        .split_once("; ")
        .expect("cookie has attributes");
    assert!(pair.starts_with("rt=") && pair.len() > 3, "{pair}");
    assert_eq!(
        after_max_age(attributes, &server),
        "Path=/api/; Domain=auth.example.com; HttpOnly; SameSite=Strict"
    );
    server.stop().await;
}

/// VERIFY_CHECKS_USER=false restores simplejwt's verify, which checks the token alone.
#[tokio::test]
async fn verify_can_ignore_the_user_as_simplejwt_does() {
    let server = TestServer::start_with(|s| s.verify_checks_user = false).await;
    let user = server.create_user("user1", PASSWORD).await;
    let (_, access) = server.obtain_pair("user1", PASSWORD).await;
    assert!(server.store().delete_user(user.id).await.expect("deleted"));
    assert_eq!(
        server
            .post_json("/api/token/verify/", json!({"token": access}))
            .await,
        (StatusCode::OK, json!({}))
    );
    server.stop().await;
}

/// With CORS_ALLOW_CREDENTIALS, a page on a trusted sibling origin logs in, refreshes and logs
/// out with the refresh cookie: preflights are approved with credentials and the headers asked
/// for, and every answer to that origin allows credentials, so the browser stores the cookie
/// and lets the page read the answer. Another origin is not named back, which is what makes a
/// browser refuse it.
#[tokio::test]
async fn the_refresh_cookie_works_from_a_trusted_sibling_origin() {
    let app = APP.expect("an origin");
    let server = TestServer::start_with(|s| {
        s.refresh_cookie = true;
        s.csrf_trusted_origins = vec![app.to_owned()];
        s.cors_allowed_origins = vec![app.to_owned()];
        s.cors_allow_credentials = true;
    })
    .await;
    server.create_user("user1", PASSWORD).await;
    let preflight = |origin: &'static str| {
        let server = &server;
        async move {
            server
                .client
                .request(reqwest::Method::OPTIONS, server.url("/api/token/refresh/"))
                .header(ORIGIN, origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "content-type,x-request-id",
                )
                .send()
                .await
                .expect("sent")
        }
    };
    let approved = preflight(app).await;
    assert_eq!(approved.status(), StatusCode::OK);
    let headers = approved.headers();
    assert_eq!(headers["access-control-allow-origin"], app);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(
        headers["access-control-allow-headers"],
        "content-type,x-request-id"
    );
    let other = preflight("https://evil.example.com").await;
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    let allows_credentials = |response: &reqwest::Response| {
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], app, "{headers:?}");
        assert_eq!(
            headers["access-control-allow-credentials"], "true",
            "{headers:?}"
        );
    };
    let login = server
        .client
        .post(server.url("/api/token/"))
        .header(ORIGIN, app)
        .json(&json!({"username": "user1", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    allows_credentials(&login);
    let login = Answer::read(login).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let (refresh, _) = login.refresh_cookie();
    let refreshed = server
        .client
        .post(server.url("/api/token/refresh/"))
        .header(ORIGIN, app)
        .header(COOKIE, format!("{COOKIE_NAME}={refresh}"))
        .send()
        .await
        .expect("sent");
    allows_credentials(&refreshed);
    let refreshed = Answer::read(refreshed).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    token_field(&refreshed.body, "access");
    server.stop().await;
}
