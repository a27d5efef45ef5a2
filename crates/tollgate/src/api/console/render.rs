//! Writing the console's answers: pages from the templates (minijinja, compiled into the
//! binary, escaping what they insert), redirects after a form with a message for the next
//! page, and refusals.

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use serde_json::{json, Value};
use tollgate_core::Settings;

use super::messages::{in_words, Flash, FLASH_COOKIE};
use super::session::{clear_cookie, set_cookie, Admin, SESSION_COOKIE};
use crate::error::ApiError;
use crate::service::ServiceError;

/// The templates, by name.
const TEMPLATES: [(&str, &str); 11] = [
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    (
        "second_factor.html",
        include_str!("templates/second_factor.html"),
    ),
    ("problem.html", include_str!("templates/problem.html")),
    ("users.html", include_str!("templates/users.html")),
    ("user.html", include_str!("templates/user.html")),
    ("new_user.html", include_str!("templates/new_user.html")),
    ("delete.html", include_str!("templates/delete.html")),
    ("keys.html", include_str!("templates/keys.html")),
    ("audit.html", include_str!("templates/audit.html")),
];

/// The compiled templates, and the settings the cookies of answers follow.
pub(super) struct Pages {
    templates: Environment<'static>,
    settings: Arc<Settings>,
}

impl Pages {
    /// Compiles the templates.
    pub(super) fn new(settings: Arc<Settings>) -> Result<Pages, minijinja::Error> {
        let mut templates = Environment::new();
        for (name, source) in TEMPLATES {
            templates.add_template(name, source)?;
        }
        Ok(Pages {
            templates,
            settings,
        })
    }

    /// A 303 to `to` (a path of the console), with `flash` for the page there.
    pub(super) fn redirect(&self, to: &str, flash: Option<Flash>) -> Response {
        let mut response = (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response();
        if let Some(flash) = flash {
            let cookie = set_cookie(&self.settings, FLASH_COOKIE, &flash.cookie_value(), 60);
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        response
    }

    /// Page `template` with `context` (a JSON object) and, for a signed-in administrator,
    /// the navigation, the sign-out form and the message of the previous action.
    pub(super) fn show(&self, template: &str, context: Value, admin: Option<&Admin>) -> Response {
        self.show_with(StatusCode::OK, template, context, admin)
    }

    /// [`Pages::show`] with another status.
    pub(super) fn show_with(
        &self,
        status: StatusCode,
        template: &str,
        context: Value,
        admin: Option<&Admin>,
    ) -> Response {
        let flash = admin.and_then(|admin| admin.flash.clone());
        let mut response = match self.html(template, context, admin, flash.as_ref()) {
            Ok(html) => html_response(status, html),
            Err(err) => return ApiError::internal(err).into_response(),
        };
        if flash.is_some() {
            // Shown once: the next page does not show it again.
            response
                .headers_mut()
                .append(SET_COOKIE, clear_cookie(&self.settings, FLASH_COOKIE));
        }
        response
    }

    /// A page for a visitor who is not signed in, with `flash`.
    pub(super) fn show_signed_out(
        &self,
        status: StatusCode,
        template: &str,
        context: Value,
        flash: Option<&Flash>,
    ) -> Response {
        let mut response = match self.html(template, context, None, flash) {
            Ok(html) => html_response(status, html),
            Err(err) => return ApiError::internal(err).into_response(),
        };
        if flash.is_some() {
            response
                .headers_mut()
                .append(SET_COOKIE, clear_cookie(&self.settings, FLASH_COOKIE));
        }
        response
    }

    fn html(
        &self,
        template: &str,
        mut context: Value,
        admin: Option<&Admin>,
        flash: Option<&Flash>,
    ) -> Result<String, minijinja::Error> {
        if let Value::Object(map) = &mut context {
            map.insert("flash".to_owned(), json!(flash));
            if let Some(admin) = admin {
                map.insert(
                    "admin".to_owned(),
                    json!({ "username": admin.username(), "is_superuser": admin.is_superuser() }),
                );
                map.insert("csrf".to_owned(), json!(admin.csrf));
            }
        }
        self.templates
            .get_template(template)?
            .render(minijinja::Value::from_serialize(&context))
    }

    /// The page of an error, in the API's words and with its status (and, for a failure of
    /// the server, the cause left for the access log).
    pub(super) fn problem(&self, err: ApiError, admin: Option<&Admin>) -> Response {
        let (status, words) = in_words(&err);
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            status if status.is_server_error() => "Something went wrong",
            _ => "The request was refused",
        };
        let context = json!({ "title": title, "messages": words });
        let page = self.show_with(status, "problem.html", context, admin);
        let mut response = err.into_response();
        let (parts, body) = page.into_parts();
        *response.body_mut() = body;
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        for cookie in parts.headers.get_all(SET_COOKIE) {
            response.headers_mut().append(SET_COOKIE, cookie.clone());
        }
        response
    }

    /// The console's 404 page.
    pub(super) fn not_found(&self) -> Response {
        self.problem(ApiError::NotFound, None)
    }

    /// The refusal of a form whose CSRF token is missing or wrong.
    pub(super) fn forged(&self, admin: Option<&Admin>) -> Response {
        let context = json!({
            "title": "The form was refused",
            "messages": [
                "The form did not come from this console, or its page has expired. Go back, \
                 reload the page and try again."
            ],
        });
        self.show_with(StatusCode::FORBIDDEN, "problem.html", context, admin)
    }

    /// The refusal of an account that may not use the console (403), its session cookie
    /// removed.
    pub(super) fn refused(&self, err: &ServiceError) -> Response {
        let message = match err {
            ServiceError::MfaRequired => {
                "The console needs a sign-in with a second factor. Set up an authenticator app \
                 for your account, then sign in again."
            }
            ServiceError::EnrollmentDue { .. } => {
                "Your account must set up a second factor before it signs in."
            }
            _ => "The console is for staff members and superusers, and your account is neither.",
        };
        let context = json!({ "title": "You cannot use the console", "messages": [message] });
        let mut response =
            self.show_signed_out(StatusCode::FORBIDDEN, "problem.html", context, None);
        response
            .headers_mut()
            .append(SET_COOKIE, clear_cookie(&self.settings, SESSION_COOKIE));
        response
    }

    /// The answer to a request without a live session: to the sign-in page, the session
    /// cookie removed.
    pub(super) fn signed_out(&self, flash: Option<Flash>) -> Response {
        let mut response = self.redirect("/admin/login/", flash);
        response
            .headers_mut()
            .append(SET_COOKIE, clear_cookie(&self.settings, SESSION_COOKIE));
        response
    }
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages() -> Pages {
        Pages::new(Arc::new(Settings::default())).expect("the templates compile")
    }

    fn render(template: &str, context: Value) -> String {
        pages()
            .html(template, context, None, None)
            .unwrap_or_else(|err| panic!("{template}: {err:#}"))
    }

    fn time() -> Value {
        json!({ "iso": "2026-12-07T10:02:11Z", "text": "2026-12-07 10:02 UTC" })
    }

    fn pages_of(count: i64) -> Value {
        json!({ "number": 1, "pages": 2, "count": count, "previous": null, "next": "/x?page=2" })
    }

    /// Every template renders, and escapes what it is given.
    #[test]
    fn every_template_renders_and_escapes() {
        let hostile = "<script>alert(1)</script>";
        let user = json!({
            "id": 7, "username": hostile, "email": "ann@example.com", "phone": null,
            "first_name": "Ann", "last_name": "Lee", "name": "Ann Lee", "is_active": true,
            "is_staff": false, "is_superuser": false, "date_joined": time(), "last_login": null,
        });
        let managed = json!({
            "sessions": [{ "id": "s1", "created": time(), "last_used": time(), "expires": time(),
                           "client_address": "127.0.0.1", "user_agent": hostile }],
            "events": [{ "time": time(), "succeeded": false, "outcome": "wrong password",
                         "client_address": "127.0.0.1", "user_agent": null }],
            "events_pages": pages_of(1),
            "factors": 1,
        });
        let cases = [
            (
                "sign_in.html",
                json!({ "title": "Sign in", "csrf": "t", "username_field": "username",
                                     "username_label": "Username", "problems": [hostile] }),
            ),
            (
                "second_factor.html",
                json!({ "title": "Second factor", "csrf": "t", "mfa_token": hostile,
                        "totp": true, "passkey": true, "recovery_code": true,
                        "problems": [hostile] }),
            ),
            (
                "problem.html",
                json!({ "title": "Not found", "messages": [hostile] }),
            ),
            (
                "users.html",
                json!({ "title": "Users", "search": hostile, "is_active": "true",
                                   "users": [user.clone()], "pages": pages_of(1) }),
            ),
            (
                "user.html",
                json!({ "title": "User", "user": user.clone(), "managed": managed,
                                  "own": false, "reset_configured": false,
                                  "admin": { "username": "root", "is_superuser": true } }),
            ),
            ("delete.html", json!({ "title": "Delete", "user": user })),
            (
                "new_user.html",
                json!({ "title": "New user", "problems": [hostile], "is_staff": true,
                        "is_superuser": false,
                        "fields": [{ "id": "username", "name": "username", "label": "Username",
                                     "type": "text", "required": true, "value": hostile }],
                        "admin": { "username": "root", "is_superuser": true } }),
            ),
            (
                "keys.html",
                json!({ "title": "Keys", "keys": [
                            { "kid": hostile, "algorithm": "ES256", "state": "next",
                              "created": time(), "signs_from": time(), "verify_until": null,
                              "stored": "in the database, encrypted" },
                            { "kid": "k1", "algorithm": "HS256", "state": "active",
                              "created": null, "signs_from": null, "verify_until": time(),
                              "stored": "SIGNING_KEY" }],
                        "algorithms": ["HS256"] }),
            ),
            (
                "audit.html",
                json!({ "title": "Audit", "target": null, "pages": pages_of(1),
                                   "entries": [{ "time": time(), "actor": hostile,
                                   "action": "user.update", "target_id": 7, "target_name": "ann",
                                   "details": "{\"changed\":[\"is_active\"]}",
                                   "client_address": null }] }),
            ),
        ];
        for (template, context) in cases {
            let html = render(template, context);
            assert!(html.starts_with("<!doctype html>"), "{template}");
            assert!(html.contains("<main id=\"main\""), "{template}");
            assert!(
                !html.contains(hostile),
                "{template} inserted markup unescaped"
            );
            assert!(!html.contains(" style="), "{template} has an inline style");
        }
    }
}
