//! The web console at `/admin/`, spoken to as a browser speaks to it: forms posted with the
//! cookies the server set, redirects read rather than followed. Who may sign in, the CSRF and
//! origin checks of every form, the headers of every answer, and that what the console does
//! holds at the API.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tollgate_store::User;

use crate::admin::{account, call, PASSWORD};
use crate::common::authenticator::SoftPasskey;
use crate::common::{payload, Backend, TestServer};

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One browser: its cookies, kept as the server sets them.
struct Browser<'a> {
    server: &'a TestServer,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

/// An answer: status, headers and the page.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    page: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        self.field("csrf")
    }

    /// The value of the page's first input named `name`.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .page
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} on the page: {}", self.page))
            + marker.len();
        let end = self.page[start..].find('"').expect("closing quote") + start;
        self.page[start..end].to_owned()
    }
}

impl<'a> Browser<'a> {
    fn new(server: &'a TestServer) -> Browser<'a> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("console test browser")
            .build()
            .expect("client builds");
        Browser {
            server,
            client,
            cookies: BTreeMap::new(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = self.client.get(self.server.url(path));
        self.send(request).await
    }

    /// Posts a form, with the `Origin` header a browser sends (the server's own).
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let origin = self.server.base.clone();
        self.post_from(path, fields, Some(&origin)).await
    }

    async fn post_from(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Answer {
        let mut request = self.client.post(self.server.url(path)).form(fields);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        self.send(request).await
    }

    async fn send(&mut self, mut request: reqwest::RequestBuilder) -> Answer {
        if !self.cookies.is_empty() {
            let cookies: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            request = request.header(COOKIE, cookies.join("; "));
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(SET_COOKIE) {
            let set = set.to_str().expect("ASCII cookie");
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let page = response.text().await.expect("body read");
        Answer {
            status,
            headers,
            page,
        }
    }

    /// Signs in on the sign-in form: the answer to the password.
    async fn sign_in(&mut self, username: &str, password: &str) -> Answer {
        let form = self.get("/admin/login/").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.page);
        let csrf = form.csrf();
        self.post(
            "/admin/login/",
            &[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
            ],
        )
        .await
    }

    fn has_session(&self) -> bool {
        self.cookies.contains_key("tollgate_console")
    }
}

/// A staff member signed in to the console, and their browser.
async fn staff_browser<'a>(server: &'a TestServer, username: &str) -> (User, Browser<'a>) {
    let (staff, _) = account(server, username, true, false).await;
    let mut browser = Browser::new(server);
    let signed_in = browser.sign_in(username, PASSWORD).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.page
    );
    assert_eq!(signed_in.location(), "/admin/users/");
    assert!(browser.has_session());
    (staff, browser)
}

on_both_backends! {
    /// An account that is neither staff nor superuser gets a refusal page and no session; a
    /// staff member gets in, and the session is one of their sessions.
    async fn sign_in_is_for_staff_only(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        server.create_user("ann", PASSWORD).await;
        let mut browser = Browser::new(&server);
        let refused = browser.sign_in("ann", PASSWORD).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.page);
        assert!(refused.page.contains("for staff members and superusers"), "{}", refused.page);
        assert!(!browser.has_session());
        assert_eq!(browser.get("/admin/users/").await.location(), "/admin/login/");

        // A wrong password is answered on the form, in the API's words.
        let wrong = browser.sign_in("ann", "wrong password").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(wrong.page.contains("No active account found with the given credentials"));

        let (staff, mut browser) = staff_browser(&server, "sam").await;
        let users = browser.get("/admin/users/").await;
        assert_eq!(users.status, StatusCode::OK, "{}", users.page);
        assert!(users.page.contains("You have signed in."), "the flash is shown");
        assert!(users.page.contains(">ann</a>"), "{}", users.page);
        assert!(!browser.get("/admin/users/").await.page.contains("You have signed in."),
            "a flash is shown once");
        let sessions = server.store().sessions_of(staff.id, tollgate_core::unix_now()).await.expect("sessions");
        assert_eq!(sessions.len(), 2, "the login of `account` and the console's");
        assert!(sessions.iter().any(|s| s.user_agent == "console test browser"));

        // Signing out ends the session: its token is blacklisted.
        let page = browser.get("/admin/users/").await;
        let out = browser.post("/admin/logout/", &[("csrf", &page.csrf())]).await;
        assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/admin/login/"));
        assert!(!browser.has_session());
        let sessions = server.store().sessions_of(staff.id, tollgate_core::unix_now()).await.expect("sessions");
        assert_eq!(sessions.len(), 1);
    }

    /// Deactivating a user in the console deactivates them at the API: their access token is
    /// refused and their refresh token too; the audit log names the staff member.
    async fn deactivating_in_the_console_refuses_the_users_tokens(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        let ann = server.create_user("ann", PASSWORD).await;
        let (refresh, access) = server.obtain_pair("ann", PASSWORD).await;
        let (_, mut browser) = staff_browser(&server, "sam").await;

        let page = browser.get(&format!("/admin/users/{}/", ann.id)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.page);
        let done = browser
            .post(&format!("/admin/users/{}/active/", ann.id), &[("active", "false"), ("csrf", &page.csrf())])
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.page);
        assert_eq!(done.location(), format!("/admin/users/{}/", ann.id));
        let after = browser.get(done.location()).await;
        assert!(after.page.contains("The account is deactivated; 1 session(s) ended."), "{}", after.page);

        let (status, body) = server.get("/api/index/", Some(&format!("Bearer {access}"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "user_inactive", "{body}");
        let (status, _) = server.post_json("/api/token/refresh/", json!({ "refresh": refresh })).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let audit = browser.get("/admin/audit/").await;
        assert!(audit.page.contains("<code>user.update</code>"), "{}", audit.page);
        assert!(audit.page.contains("changed: is_active; is_active: false"), "{}", audit.page);
        assert!(audit.page.contains("<td>sam</td>"), "the staff member is named: {}", audit.page);
    }
}

/// A form without the CSRF token, or with another's, is refused and changes nothing; so is one
/// from another origin, and a sign-in without the sign-in page's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_its_csrf_token_is_refused() {
    let server = TestServer::start_on(Backend::Sqlite, |_| {}).await;
    let ann = server.create_user("ann", PASSWORD).await;
    let (_, mut browser) = staff_browser(&server, "sam").await;
    let (_, mut other) = staff_browser(&server, "kim").await;
    let path = format!("/admin/users/{}/active/", ann.id);
    let page = browser.get(&format!("/admin/users/{}/", ann.id)).await;
    let token = page.csrf();
    let others_token = other.get("/admin/users/").await.csrf();
    assert_ne!(token, others_token, "each session has its own token");

    for (fields, origin) in [
        (vec![("active", "false")], None),
        (vec![("active", "false"), ("csrf", "")], None),
        (vec![("active", "false"), ("csrf", "forged")], None),
        (
            vec![("active", "false"), ("csrf", others_token.as_str())],
            None,
        ),
        (
            vec![("active", "false"), ("csrf", token.as_str())],
            Some("http://evil.example"),
        ),
    ] {
        let refused = browser.post_from(&path, &fields, origin).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{fields:?} from {origin:?}: {}",
            refused.page
        );
        let stored = server
            .store()
            .find_user(tollgate_store::UserField::Id, &ann.id.to_string())
            .await;
        assert!(
            stored.expect("read").expect("exists").is_active,
            "{fields:?} changed nothing"
        );
    }
    // The right token, with or without an Origin header (some browsers leave it out).
    let done = browser
        .post_from(&path, &[("active", "false"), ("csrf", &token)], None)
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.page);

    // Signing in needs the sign-in page's token, of this browser.
    let mut stranger = Browser::new(&server);
    let refused = stranger
        .post(
            "/admin/login/",
            &[("username", "sam"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let csrf = stranger.get("/admin/login/").await.csrf();
    let mut forger = Browser::new(&server);
    let refused = forger
        .post(
            "/admin/login/",
            &[("username", "sam"), ("password", PASSWORD), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "another browser's token"
    );
    assert!(!forger.has_session());
}

/// A staff member creates an account on the console's form, by the rules of the API: what is
/// wrong is shown on the form as it was filled in (never the password), a superuser's flag is
/// refused to a staff member, the form needs its CSRF token; the new account's page follows,
/// it logs in, and the audit log names who made it. A superuser may make a staff member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_is_created_on_the_console_form() {
    let server = TestServer::start_on(Backend::Sqlite, |_| {}).await;
    server.create_user("ann", PASSWORD).await;
    let (_, mut browser) = staff_browser(&server, "sam").await;
    let list = browser.get("/admin/users/").await;
    assert!(
        list.page.contains("href=\"/admin/users/new/\""),
        "{}",
        list.page
    );
    let form = browser.get("/admin/users/new/").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.page);
    assert!(
        !form.page.contains("is_superuser"),
        "a staff member is offered no privilege: {}",
        form.page
    );
    let csrf = form.csrf();
    let strong = "quantum-ferret-72";
    let exists = |username: &'static str| {
        let store = server.store();
        async move {
            store
                .find_user(tollgate_store::UserField::Username, username)
                .await
                .expect("query")
        }
    };

    let refused = browser
        .post(
            "/admin/users/new/",
            &[
                ("csrf", &csrf),
                ("username", "ann"),
                ("email", "not an address"),
                ("first_name", "Carl"),
                ("password", "12345678"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.page);
    for words in [
        "Username: A user with that username already exists.",
        "Email: Enter a valid email address.",
        "Password: This password is entirely numeric.",
    ] {
        assert!(refused.page.contains(words), "{words}: {}", refused.page);
    }
    assert!(refused.page.contains("value=\"Carl\""), "{}", refused.page);
    assert!(
        !refused.page.contains("12345678"),
        "the password is not sent back"
    );

    let escalation = browser
        .post(
            "/admin/users/new/",
            &[
                ("csrf", &csrf),
                ("username", "eve"),
                ("password", strong),
                ("is_superuser", "true"),
            ],
        )
        .await;
    assert_eq!(
        escalation.status,
        StatusCode::FORBIDDEN,
        "{}",
        escalation.page
    );
    assert!(
        escalation
            .page
            .contains("You do not have permission to perform this action."),
        "{}",
        escalation.page
    );
    for csrf in [None, Some("forged")] {
        let mut fields = vec![("username", "eve"), ("password", strong)];
        fields.extend(csrf.map(|token| ("csrf", token)));
        let forged = browser.post("/admin/users/new/", &fields).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.page);
    }
    assert!(exists("eve").await.is_none(), "no refusal made an account");

    // Inputs left empty are fields not given: no phone, no last name.
    let created = browser
        .post(
            "/admin/users/new/",
            &[
                ("csrf", &csrf),
                ("username", "carl"),
                ("email", "carl@example.com"),
                ("phone", ""),
                ("first_name", "Carl"),
                ("last_name", ""),
                ("password", strong),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.page);
    let carl = exists("carl").await.expect("created");
    assert_eq!(created.location(), format!("/admin/users/{}/", carl.id));
    assert_eq!(
        (
            carl.is_active,
            carl.is_staff,
            carl.is_superuser,
            carl.phone.as_deref()
        ),
        (true, false, false, None)
    );
    let page = browser.get(created.location()).await;
    assert!(
        page.page.contains("The account carl is created."),
        "{}",
        page.page
    );
    server.obtain_pair("carl", strong).await;
    let audit = browser.get("/admin/audit/").await;
    assert!(
        audit.page.contains("<code>user.create</code>"),
        "{}",
        audit.page
    );
    assert!(audit.page.contains("<td>sam</td>"), "{}", audit.page);

    account(&server, "root", true, true).await;
    let mut root = Browser::new(&server);
    assert_eq!(
        root.sign_in("root", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let form = root.get("/admin/users/new/").await;
    assert!(form.page.contains("name=\"is_staff\""), "{}", form.page);
    let made = root
        .post(
            "/admin/users/new/",
            &[
                ("csrf", &form.csrf()),
                ("username", "sue"),
                ("password", strong),
                ("is_staff", "true"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.page);
    let sue = exists("sue").await.expect("created");
    assert!(sue.is_staff && !sue.is_superuser);
}

/// Every console answer, page or redirect or refusal or file, carries the content security
/// policy and the other headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_answer_has_the_security_headers() {
    let server = TestServer::start_on(Backend::Sqlite, |_| {}).await;
    let (_, mut browser) = staff_browser(&server, "sam").await;
    let mut signed_out = Browser::new(&server);
    let answers = [
        ("sign-in page", signed_out.get("/admin/login/").await),
        ("redirect", signed_out.get("/admin/users/").await),
        ("users", browser.get("/admin/users/").await),
        ("refused form", browser.post("/admin/logout/", &[]).await),
        ("missing page", browser.get("/admin/nothing/here/").await),
        ("stylesheet", browser.get("/admin/static/console.css").await),
        ("script", browser.get("/admin/static/console.js").await),
    ];
    for (what, answer) in answers {
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-security-policy"), CSP, "{what}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(header("referrer-policy"), "same-origin", "{what}");
        assert_eq!(header("cache-control"), "no-store", "{what}");
        assert_eq!(header("x-frame-options"), "DENY", "{what}");
        if answer.page.contains("<html") {
            assert!(
                !answer.page.contains("<script>"),
                "{what}: no inline script"
            );
            assert!(!answer.page.contains(" style="), "{what}: no inline style");
            assert!(answer.page.contains("<html lang=\"en\">"), "{what}");
        }
    }
    assert_eq!(
        browser.get("/admin/nothing/here/").await.status,
        StatusCode::NOT_FOUND
    );
}

/// A console session ends with its session: revoked through the API, the next page sends the
/// browser to sign in. A staff member who loses the flag is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_or_a_withdrawn_flag_ends_console_access() {
    let server = TestServer::start_on(Backend::Sqlite, |_| {}).await;
    let (_, root) = account(&server, "root", true, true).await;
    let (sam, mut browser) = staff_browser(&server, "sam").await;
    let (status, _) = call(
        &server,
        Method::DELETE,
        &format!("/api/admin/users/{}/sessions/", sam.id),
        &root,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let answer = browser.get("/admin/users/").await;
    assert_eq!(answer.location(), "/admin/login/");
    assert!(!browser.has_session());
    assert!(browser
        .get("/admin/login/")
        .await
        .page
        .contains("Your console session has ended."));

    let (kim, mut browser) = staff_browser(&server, "kim").await;
    let (status, body) = call(
        &server,
        Method::PATCH,
        &format!("/api/admin/users/{}/", kim.id),
        &root,
        Some(json!({ "is_staff": false })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = browser.get("/admin/users/").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.page);
    assert!(!browser.has_session());
}

/// A staff member with a second factor signs in in two steps; with ADMIN_REQUIRES_MFA, one
/// without is refused, and the session of one with it carries the factor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_factor_is_asked_and_admin_requires_mfa_holds() {
    let server = TestServer::start_on(Backend::Sqlite, |s| s.admin_requires_mfa = true).await;
    account(&server, "sam", true, false).await;
    let mut browser = Browser::new(&server);
    let refused = browser.sign_in("sam", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.page);
    assert!(refused.page.contains("second factor"), "{}", refused.page);

    let (_, recovery_codes) = crate::mfa::enrol(&server, "sam").await;
    let second = browser.sign_in("sam", PASSWORD).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.page);
    assert!(second.page.contains("Recovery code"), "{}", second.page);
    assert!(!browser.has_session());
    let mfa_token = second.field("mfa_token");
    let csrf = second.csrf();
    let wrong = browser
        .post(
            "/admin/login/mfa/",
            &[
                ("mfa_token", &mfa_token),
                ("code", "000000x"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.page);
    assert!(
        wrong.page.contains("The code is not valid."),
        "{}",
        wrong.page
    );
    let done = browser
        .post(
            "/admin/login/mfa/",
            &[
                ("mfa_token", &mfa_token),
                ("recovery_code", &recovery_codes[0]),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.page);
    let token = browser.cookies["tollgate_console"].clone();
    assert_eq!(payload(&token)["amr"], json!(["pwd", "otp"]));
    assert_eq!(browser.get("/admin/users/").await.status, StatusCode::OK);
}

/// Begins the console's passkey ceremony for the sign-in `mfa_token` names: the options for the
/// authenticator.
async fn begin_passkey(
    browser: &mut Browser<'_>,
    mfa_token: &str,
    csrf: &str,
) -> serde_json::Value {
    let begun = browser
        .post(
            "/admin/login/mfa/passkey/begin/",
            &[("mfa_token", mfa_token), ("csrf", csrf)],
        )
        .await;
    assert_eq!(begun.status, StatusCode::OK, "{}", begun.page);
    assert_eq!(begun.headers["content-type"], "application/json");
    serde_json::from_str(&begun.page).expect("JSON options")
}

/// With ADMIN_REQUIRES_MFA, a staff member whose only factor is a passkey signs in to the
/// console with it: the second-factor page offers the passkey (and their recovery codes, but no
/// authenticator-app code); the ceremony's begin is refused without this browser's CSRF token
/// or a pending sign-in; an answer of another authenticator is refused on the page and uses the
/// ceremony up; the right one opens a session whose tokens carry `hwk`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_is_the_consoles_second_factor() {
    const ORIGIN: &str = "http://localhost:8080";
    let server = TestServer::start_on(Backend::Sqlite, |s| {
        s.admin_requires_mfa = true;
        s.passkey_rp_id = "localhost".into();
        s.passkey_origins = vec![ORIGIN.into()];
    })
    .await;
    let (_, access) = account(&server, "sam", true, false).await;
    let mut passkey = SoftPasskey::new("localhost", ORIGIN);
    let (status, options) = server
        .send(Method::POST, "/api/user/mfa/passkeys/", Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let registration = json!({
        "registration_token": options["registration_token"],
        "credential": passkey.register(&options),
        "name": "Laptop",
    });
    let (status, body) = server
        .send(
            Method::POST,
            "/api/user/mfa/passkeys/confirm/",
            Some(&access),
            Some(registration),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut browser = Browser::new(&server);
    let second = browser.sign_in("sam", PASSWORD).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.page);
    assert!(second.page.contains("Use a passkey"), "{}", second.page);
    assert!(second.page.contains("Recovery code"), "{}", second.page);
    assert!(!second.page.contains("name=\"code\""), "{}", second.page);
    let mfa_token = second.field("mfa_token");
    let csrf = second.csrf();
    let begin = "/admin/login/mfa/passkey/begin/";

    let forged = browser.post(begin, &[("mfa_token", &mfa_token)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.page);
    let mut stranger = Browser::new(&server);
    let elsewhere = stranger
        .post(begin, &[("mfa_token", &mfa_token), ("csrf", &csrf)])
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN, "another browser");
    let unknown = browser
        .post(begin, &[("mfa_token", "mfa_unknown"), ("csrf", &csrf)])
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "{}", unknown.page);
    let unknown: serde_json::Value = serde_json::from_str(&unknown.page).expect("JSON");
    assert_eq!(unknown["code"], "mfa_token_invalid");

    let options = begin_passkey(&mut browser, &mfa_token, &csrf).await;
    let not_ours = SoftPasskey::new("localhost", ORIGIN).assert(&options);
    let refused = browser
        .post(
            "/admin/login/mfa/passkey/",
            &[
                ("mfa_token", &mfa_token),
                ("credential", &not_ours.to_string()),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.page);
    assert!(
        refused.page.contains("The passkey was not accepted."),
        "{}",
        refused.page
    );
    assert!(refused.page.contains("Use a passkey"), "asked again");
    assert!(!browser.has_session());

    let options = begin_passkey(&mut browser, &mfa_token, &csrf).await;
    let answer = passkey.assert(&options).to_string();
    let done = browser
        .post(
            "/admin/login/mfa/passkey/",
            &[
                ("mfa_token", &mfa_token),
                ("credential", &answer),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.page);
    assert_eq!(done.location(), "/admin/users/");
    let token = browser.cookies["tollgate_console"].clone();
    assert_eq!(payload(&token)["amr"], json!(["pwd", "hwk"]));
    assert_eq!(browser.get("/admin/users/").await.status, StatusCode::OK);

    // The sign-in is used up: its passkey answer does not open a second session.
    let mut again = Browser::new(&server);
    let page = again.get("/admin/login/").await;
    let replay = again
        .post(
            "/admin/login/mfa/passkey/",
            &[
                ("mfa_token", &mfa_token),
                ("credential", &answer),
                ("csrf", &page.csrf()),
            ],
        )
        .await;
    assert!(
        replay.page.contains("This sign-in has expired."),
        "{}",
        replay.page
    );
    assert!(!again.has_session());
}

/// ADMIN_CONSOLE_ENABLED = false: nothing is served under `/admin/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_can_be_turned_off() {
    let server = TestServer::start_on(Backend::Sqlite, |s| s.admin_console_enabled = false).await;
    for path in ["/admin/", "/admin/login/", "/admin/static/console.css"] {
        let (status, body) = server.get(path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, json!({ "detail": "Not found." }));
    }
}

/// The console refuses what the admin API refuses, in its words, on the page the form came
/// from: a staff member acting on a superuser, a field that breaks its rule, the keys for
/// anyone but a superuser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_keeps_the_admin_rules_and_says_why() {
    let server = TestServer::start_on(Backend::Sqlite, |_| {}).await;
    let (root, _) = account(&server, "root", true, true).await;
    let ann = server.create_user("ann", PASSWORD).await;
    let (_, mut browser) = staff_browser(&server, "sam").await;

    let root_page = browser.get(&format!("/admin/users/{}/", root.id)).await;
    assert_eq!(root_page.status, StatusCode::OK);
    assert!(
        root_page.page.contains("Only a superuser manages"),
        "{}",
        root_page.page
    );
    let csrf = root_page.csrf();
    let refused = browser
        .post(
            &format!("/admin/users/{}/active/", root.id),
            &[("active", "false"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    let shown = browser.get(refused.location()).await;
    assert!(
        shown
            .page
            .contains("You do not have permission to perform this action."),
        "{}",
        shown.page
    );

    let edit = browser
        .post(
            &format!("/admin/users/{}/", ann.id),
            &[("email", "not an address"), ("csrf", &csrf)],
        )
        .await;
    let shown = browser.get(edit.location()).await;
    assert!(
        shown.page.contains("Email: Enter a valid email address."),
        "{}",
        shown.page
    );
    let set = browser
        .post(
            &format!("/admin/users/{}/password/", ann.id),
            &[("new_password", "12345678"), ("csrf", &csrf)],
        )
        .await;
    let shown = browser.get(set.location()).await;
    assert!(
        shown.page.contains("This password is entirely numeric."),
        "{}",
        shown.page
    );
    // The refused password changed nothing: the old one still logs in.
    server.obtain_pair("ann", PASSWORD).await;

    let keys = browser.get("/admin/keys/").await;
    assert_eq!(keys.status, StatusCode::FORBIDDEN, "{}", keys.page);
    assert!(!browser
        .get("/admin/users/")
        .await
        .page
        .contains("Signing keys"));
    let mut root_browser = Browser::new(&server);
    let signed_in = root_browser.sign_in("root", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let keys = root_browser.get("/admin/keys/").await;
    assert_eq!(keys.status, StatusCode::OK, "{}", keys.page);
    let rotate = root_browser
        .post(
            "/admin/keys/rotate/",
            &[("algorithm", ""), ("csrf", &keys.csrf())],
        )
        .await;
    let shown = root_browser.get(rotate.location()).await;
    assert!(
        shown.page.contains("KEYS_ENCRYPTION_KEY"),
        "not configured, in words: {}",
        shown.page
    );
}
