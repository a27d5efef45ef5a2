//! Signing in to the console and out of it: the password form, the second factor's form, and
//! sign-out. A sign-in is a login (the throttle, the lockout and the second factor apply, and
//! it is recorded) that only staff members and superusers complete.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use tollgate_core::{unix_now, Issued};

use super::messages::Flash;
use super::session::{
    clear_cookie, csrf_token, set_cookie, sign_in_secret, SignInForm, Submitted, SESSION_COOKIE,
    SIGN_IN_COOKIE, SIGN_IN_LIFETIME,
};
use super::ConsoleState;
use crate::client::{ClientAddr, UserAgent};
use crate::error::ApiError;
use crate::service::admin::console;
use crate::service::mfa::Proof;
use crate::service::{sessions, ServiceError};

/// `GET /admin/`: the list of users (which sends a visitor who is not signed in to sign in).
pub(super) async fn index(State(console): State<ConsoleState>) -> Response {
    console.pages.redirect("/admin/users/", None)
}

/// `GET /admin/login/`: the sign-in form.
pub(super) async fn form(State(console): State<ConsoleState>, headers: HeaderMap) -> Response {
    let (secret, new) = sign_in_secret(&headers);
    let flash = Flash::of(&headers);
    let mut response = password_form(&console, &secret, StatusCode::OK, &[], flash.as_ref());
    if new {
        let cookie = set_cookie(
            &console.app.settings,
            SIGN_IN_COOKIE,
            &secret,
            SIGN_IN_LIFETIME,
        );
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

/// `POST /admin/login/`: checks the password; answers the second factor's form when one is
/// due, else opens the session.
pub(super) async fn sign_in(
    State(console): State<ConsoleState>,
    client: ClientAddr,
    agent: UserAgent,
    form: SignInForm,
) -> Response {
    let state = &console.app;
    let username_field = state.settings.username_field.as_str();
    let [identifier, password] = match form.payload.char_fields([username_field, "password"]) {
        Ok(fields) => fields,
        Err(err) => return refused_form(&console, &form.secret, ApiError::from(err)),
    };
    let client = client.with(&agent);
    match console::sign_in(state, client, &identifier, password).await {
        Ok(refresh) => signed_in(&console, &refresh),
        Err(ServiceError::SecondFactorDue { mfa_token, methods }) => {
            if !methods
                .iter()
                .any(|m| matches!(*m, "totp" | "recovery_code"))
            {
                let context = json!({
                    "title": "Sign in with a passkey elsewhere",
                    "messages": ["Your account's second factor is a passkey, which the console \
                                  does not take. Add an authenticator app to sign in here."],
                });
                return console.pages.show_signed_out(
                    StatusCode::FORBIDDEN,
                    "problem.html",
                    context,
                    None,
                );
            }
            second_factor_form(&console, &form.secret, &mfa_token, StatusCode::OK, &[])
        }
        Err(
            err @ (ServiceError::PermissionDenied
            | ServiceError::MfaRequired
            | ServiceError::EnrollmentDue { .. }),
        ) => console.pages.refused(&err),
        Err(err) => refused_form(&console, &form.secret, ApiError::from(err)),
    }
}

/// `POST /admin/login/mfa/`: the second step, with a code from an authenticator app or a
/// recovery code.
pub(super) async fn second_factor(
    State(console): State<ConsoleState>,
    client: ClientAddr,
    agent: UserAgent,
    form: SignInForm,
) -> Response {
    let state = &console.app;
    let text = |name| form.payload.text(name).ok().flatten().unwrap_or_default();
    let mfa_token = text("mfa_token");
    let recovery_code = text("recovery_code");
    let proof = if recovery_code.is_empty() {
        Proof::Code(text("code"))
    } else {
        Proof::RecoveryCode(recovery_code)
    };
    let client = client.with(&agent);
    match console::complete_sign_in(state, client, &mfa_token, proof).await {
        Ok(refresh) => signed_in(&console, &refresh),
        Err(ServiceError::MfaTokenInvalid) => {
            let expired = ApiError::NonField(
                "This sign-in has expired. Enter your password again.".to_owned(),
            );
            refused_form(&console, &form.secret, expired)
        }
        Err(err @ (ServiceError::PermissionDenied | ServiceError::MfaRequired)) => {
            console.pages.refused(&err)
        }
        Err(err) => {
            let err = ApiError::from(err);
            let (status, words) = super::messages::in_words(&err);
            second_factor_form(&console, &form.secret, &mfa_token, status, &words)
        }
    }
}

/// `POST /admin/logout/`: ends the console session (its refresh token is blacklisted).
pub(super) async fn sign_out(State(console): State<ConsoleState>, form: Submitted) -> Response {
    let state = &console.app;
    match sessions::log_out(state, &form.admin.token, None).await {
        // A token refused here had ended already: signed out either way.
        Ok(()) | Err(ServiceError::Token(_)) => console
            .pages
            .signed_out(Some(Flash::done("You have signed out."))),
        Err(err) => console
            .pages
            .problem(ApiError::from(err), Some(&form.admin)),
    }
}

/// The answer to a sign-in that opened a session: its cookie, the sign-in cookie gone, and
/// the list of users.
fn signed_in(console: &ConsoleState, refresh: &Issued) -> Response {
    let settings = &console.app.settings;
    let max_age = refresh.expires_at - unix_now();
    let mut response = console
        .pages
        .redirect("/admin/users/", Some(Flash::done("You have signed in.")));
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        set_cookie(settings, SESSION_COOKIE, &refresh.token, max_age),
    );
    headers.append(SET_COOKIE, clear_cookie(settings, SIGN_IN_COOKIE));
    response
}

/// The sign-in form again, with why the sign-in failed (a failure of the server gets its
/// error page).
fn refused_form(console: &ConsoleState, secret: &str, err: ApiError) -> Response {
    let (status, words) = super::messages::in_words(&err);
    if status.is_server_error() {
        return console.pages.problem(err, None);
    }
    password_form(console, secret, status, &words, None)
}

fn password_form(
    console: &ConsoleState,
    secret: &str,
    status: StatusCode,
    problems: &[String],
    flash: Option<&Flash>,
) -> Response {
    let field = console.app.settings.username_field.as_str();
    let label = match field {
        "email" => "Email address",
        "phone" => "Phone number",
        _ => "Username",
    };
    let context = json!({
        "title": "Sign in",
        "csrf": csrf_token(secret),
        "username_field": field,
        "username_label": label,
        "problems": problems,
    });
    console
        .pages
        .show_signed_out(status, "sign_in.html", context, flash)
}

fn second_factor_form(
    console: &ConsoleState,
    secret: &str,
    mfa_token: &str,
    status: StatusCode,
    problems: &[String],
) -> Response {
    let context = json!({
        "title": "Second factor",
        "csrf": csrf_token(secret),
        "mfa_token": mfa_token,
        "problems": problems,
    });
    console
        .pages
        .show_signed_out(status, "second_factor.html", context, None)
}
