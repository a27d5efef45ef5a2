//! The web console at `/admin/`: server-rendered pages over the admin API's operations, for
//! staff members and superusers in a browser. Handlers only, as the API's: each page or form
//! calls one operation of [`crate::service::admin`] with the administrator the session names,
//! so the console refuses what the API refuses and its actions land in the same audit log.
//!
//! - [`session`]: the session cookie, the administrator behind it, and the forms' CSRF tokens.
//! - [`render`]: the templates (embedded in the binary) and error pages; [`view`]: what the
//!   templates are given; [`messages`]: what an action did or why not, in words.
//! - [`sign_in`], [`users`], [`account`], [`records`]: the pages and their forms.
//!
//! Every answer carries a Content-Security-Policy that allows no inline script or style and
//! nothing from another origin, and is never cached; the one stylesheet and the one script
//! come from `/admin/static/`.

mod account;
mod messages;
mod records;
mod render;
mod session;
mod sign_in;
mod users;
mod view;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY, X_FRAME_OPTIONS};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, MethodRouter};
use axum::Router;

use crate::client::ClientAddr;
use crate::error::ApiError;
use crate::service::ServiceError;
use crate::state::AppState;
use messages::Flash;
use render::Pages;
use session::Admin;

/// Where the console lives; its cookies are scoped to it.
const BASE: &str = "/admin/";

/// The policy of every console answer: the console's own stylesheet and script, images inline
/// as data URLs at most, requests (the script's passkey ceremony) and forms only back to it,
/// never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// What the console's handlers share: the application state and the compiled templates.
#[derive(Clone)]
pub(super) struct ConsoleState {
    app: AppState,
    pages: Arc<Pages>,
}

impl FromRef<ConsoleState> for AppState {
    fn from_ref(console: &ConsoleState) -> AppState {
        console.app.clone()
    }
}

/// Every page and form of the console: its method, path and handler.
fn pages() -> Vec<(Method, &'static str, MethodRouter<ConsoleState>)> {
    vec![
        (Method::GET, "/admin/", get(sign_in::index)),
        (Method::GET, "/admin/login/", get(sign_in::form)),
        (Method::POST, "/admin/login/", post(sign_in::sign_in)),
        (
            Method::POST,
            "/admin/login/mfa/",
            post(sign_in::second_factor),
        ),
        (
            Method::POST,
            "/admin/login/mfa/passkey/begin/",
            post(sign_in::begin_passkey),
        ),
        (
            Method::POST,
            "/admin/login/mfa/passkey/",
            post(sign_in::finish_passkey),
        ),
        (Method::POST, "/admin/logout/", post(sign_in::sign_out)),
        (Method::GET, "/admin/users/", get(users::list)),
        (Method::GET, "/admin/users/new/", get(users::new_form)),
        (Method::POST, "/admin/users/new/", post(users::create)),
        (Method::GET, "/admin/users/{id}/", get(users::page)),
        (Method::POST, "/admin/users/{id}/", post(users::edit)),
        (
            Method::POST,
            "/admin/users/{id}/active/",
            post(users::set_active),
        ),
        (
            Method::GET,
            "/admin/users/{id}/delete/",
            get(users::confirm_delete),
        ),
        (
            Method::POST,
            "/admin/users/{id}/delete/",
            post(users::delete),
        ),
        (
            Method::POST,
            "/admin/users/{id}/password/",
            post(account::set_password),
        ),
        (
            Method::POST,
            "/admin/users/{id}/password_reset/",
            post(account::send_password_reset),
        ),
        (
            Method::POST,
            "/admin/users/{id}/unlock/",
            post(account::unlock),
        ),
        (
            Method::POST,
            "/admin/users/{id}/mfa_reset/",
            post(account::reset_mfa),
        ),
        (
            Method::POST,
            "/admin/users/{id}/sessions/revoke/",
            post(account::revoke_all_sessions),
        ),
        (
            Method::POST,
            "/admin/users/{id}/sessions/{sid}/revoke/",
            post(account::revoke_session),
        ),
        (Method::GET, "/admin/keys/", get(records::keys)),
        (
            Method::POST,
            "/admin/keys/rotate/",
            post(records::rotate_keys),
        ),
        (Method::GET, "/admin/audit/", get(records::audit)),
        (Method::GET, "/admin/static/console.css", get(stylesheet)),
        (Method::GET, "/admin/static/console.js", get(script)),
    ]
}

/// The method and path of every console page, for [`super::clashing_route`]: an endpoint path
/// set to one of them would clash with it. (The console's catch-all 404 clashes with nothing:
/// any fixed path wins over it.)
pub(crate) fn routes_served() -> Vec<(Method, String)> {
    pages()
        .into_iter()
        .map(|(method, path, _)| (method, path.to_owned()))
        .collect()
}

/// The console's routes, answering for the console with `state`.
///
/// They are not in [`super::endpoints`]: those make up the JSON API that the OpenAPI document
/// describes (and its completeness test checks), while these are HTML pages and form posts
/// for a browser, which no client should build on. [`routes_served`] lists them for
/// [`super::clashing_route`] instead.
pub(super) fn routes(state: &AppState) -> Router<AppState> {
    // The templates are part of the binary; a unit test compiles and renders each of them.
    let pages_compiled =
        Pages::new(state.settings.clone()).expect("the console's embedded templates compile");
    let console = ConsoleState {
        app: state.clone(),
        pages: Arc::new(pages_compiled),
    };
    // A GET and a POST on one path are one route.
    let mut by_path: Vec<(&str, MethodRouter<ConsoleState>)> = Vec::new();
    for (_, path, handler) in pages() {
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(handler),
            None => by_path.push((path, handler)),
        }
    }
    let mut router: Router<ConsoleState> = Router::new();
    for (path, handler) in by_path {
        router = router.route(path, handler);
    }
    router
        .route("/admin/{*rest}", any(not_found))
        .layer(axum::middleware::map_response(console_headers))
        .with_state(console)
}

/// The headers of every console answer.
async fn console_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Pages show accounts and carry CSRF tokens; nothing of the console is kept by caches.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /admin/static/console.css`.
async fn stylesheet() -> Response {
    let css = include_str!("static/console.css");
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response()
}

/// `GET /admin/static/console.js`.
async fn script() -> Response {
    let js = include_str!("static/console.js");
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], js).into_response()
}

/// Any other path under `/admin/`: the console's own 404 page.
async fn not_found(axum::extract::State(console): axum::extract::State<ConsoleState>) -> Response {
    console.pages.not_found()
}

/// The console's view of the client's address, as the API's ([`ClientAddr::of`]).
impl FromRequestParts<ConsoleState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(parts, &console.app))
    }
}

/// The account id of a path; one that is not a number names no account.
fn user_id(id: &str) -> Option<i64> {
    id.parse().ok()
}

/// The answer to an action on account `id`: back to its page (see [`answer_at`]).
fn answer(
    console: &ConsoleState,
    admin: &Admin,
    id: i64,
    outcome: Result<String, ServiceError>,
) -> Response {
    answer_at(console, admin, &format!("/admin/users/{id}/"), outcome)
}

/// The answer to an action: back to page `back`, with what the action did or, for a refusal,
/// why (in the API's words); a failure of the server gets its error page.
fn answer_at(
    console: &ConsoleState,
    admin: &Admin,
    back: &str,
    outcome: Result<String, ServiceError>,
) -> Response {
    match outcome {
        Ok(done) => console.pages.redirect(back, Some(Flash::done(done))),
        Err(err) => {
            let err = ApiError::from(err);
            let (status, words) = messages::in_words(&err);
            if status.is_server_error() {
                console.pages.problem(err, Some(admin))
            } else {
                let flash = Flash::problem(words.join(" "));
                console.pages.redirect(back, Some(flash))
            }
        }
    }
}
