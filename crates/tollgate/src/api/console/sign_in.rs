//! Signing in to the console and out of it: the password form, the second factor's forms (a
//! code from an authenticator app, a recovery code, or a passkey through the console's script),
//! and sign-out. A sign-in is a login (the throttle, the lockout and the second factor apply, and
//! it is recorded) that only staff members and superusers complete.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
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
use crate::service::login::Client;
use crate::service::mfa::{self, passkeys, Proof};
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
            let factors = Factors::of(&console, &methods);
            if !factors.any() {
                let context = json!({
                    "title": "Passkeys are off",
                    "messages": ["Your account's only second factor is a passkey, and passkeys \
                                  are turned off on this server (PASSKEY_RP_ID). Ask an \
                                  administrator to reset your second factors."],
                });
                return console.pages.show_signed_out(
                    StatusCode::FORBIDDEN,
                    "problem.html",
                    context,
                    None,
                );
            }
            second_factor_form(
                &console,
                &form.secret,
                &mfa_token,
                factors,
                StatusCode::OK,
                &[],
            )
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
    let text = |name| form.payload.text(name).ok().flatten().unwrap_or_default();
    let recovery_code = text("recovery_code");
    let proof = if recovery_code.is_empty() {
        Proof::Code(text("code"))
    } else {
        Proof::RecoveryCode(recovery_code)
    };
    complete(&console, client.with(&agent), &form, proof).await
}

/// `POST /admin/login/mfa/passkey/begin/` with the second-factor page's `mfa_token`: the
/// options for `navigator.credentials.get()` with the passkeys of the account signing in, as
/// JSON for the console's script (or the API's error body). The ceremony is bound to that
/// pending sign-in, and the request to this browser's sign-in page (its CSRF token).
pub(super) async fn begin_passkey(
    State(console): State<ConsoleState>,
    form: SignInForm,
) -> Response {
    match passkeys::begin_second_factor(&console.app, &form.mfa_token()).await {
        Ok(options) => Json(options).into_response(),
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// `POST /admin/login/mfa/passkey/` with `mfa_token` and `credential` (the browser's answer to
/// the ceremony [`begin_passkey`] began, the `PublicKeyCredential` as JSON text, which the
/// console's script puts in the form): the second step with a passkey.
pub(super) async fn finish_passkey(
    State(console): State<ConsoleState>,
    client: ClientAddr,
    agent: UserAgent,
    form: SignInForm,
) -> Response {
    let sent = form.payload.text("credential").ok().flatten();
    // An answer that is no JSON is a wrong answer: it counts as one.
    let credential = sent
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    complete(
        &console,
        client.with(&agent),
        &form,
        Proof::Passkey(credential),
    )
    .await
}

/// The second step of the sign-in the form's `mfa_token` names, with `proof`: the session, or
/// the second-factor page again with why not (the password form once the sign-in has ended).
async fn complete(
    console: &ConsoleState,
    client: Client<'_>,
    form: &SignInForm,
    proof: Proof,
) -> Response {
    let state = &console.app;
    let mfa_token = form.mfa_token();
    let by_passkey = matches!(proof, Proof::Passkey(_));
    match console::complete_sign_in(state, client, &mfa_token, proof).await {
        Ok(refresh) => signed_in(console, &refresh),
        Err(ServiceError::MfaTokenInvalid) => expired(console, &form.secret),
        Err(err @ (ServiceError::PermissionDenied | ServiceError::MfaRequired)) => {
            console.pages.refused(&err)
        }
        Err(err) => {
            let wrong_passkey = by_passkey && matches!(err, ServiceError::WrongCode);
            let err = ApiError::from(err);
            let (status, mut words) = super::messages::in_words(&err);
            if status.is_server_error() {
                return console.pages.problem(err, None);
            }
            if wrong_passkey {
                words = vec!["The passkey was not accepted.".to_owned()];
            }
            // Asked again as the sign-in can still be answered; a wrong answer too many ends it.
            match mfa::pending_methods(state, &mfa_token).await {
                Ok(methods) => {
                    let factors = Factors::of(console, &methods);
                    second_factor_form(console, &form.secret, &mfa_token, factors, status, &words)
                }
                Err(ServiceError::MfaTokenInvalid) => expired(console, &form.secret),
                Err(err) => console.pages.problem(ApiError::from(err), None),
            }
        }
    }
}

/// The password form, saying that the sign-in waiting for its second step has ended.
fn expired(console: &ConsoleState, secret: &str) -> Response {
    let expired =
        ApiError::NonField("This sign-in has expired. Enter your password again.".to_owned());
    refused_form(console, secret, expired)
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

/// The second factors a sign-in's page offers: those the account has, a passkey only when
/// passkeys are on (PASSKEY_RP_ID).
#[derive(Debug, Clone, Copy)]
struct Factors {
    totp: bool,
    passkey: bool,
    recovery_code: bool,
}

impl Factors {
    fn of(console: &ConsoleState, methods: &[&str]) -> Factors {
        let has = |method| methods.contains(&method);
        Factors {
            totp: has("totp"),
            passkey: has("passkey") && console.app.passkeys.is_some(),
            recovery_code: has("recovery_code"),
        }
    }

    fn any(self) -> bool {
        self.totp || self.passkey || self.recovery_code
    }
}

fn second_factor_form(
    console: &ConsoleState,
    secret: &str,
    mfa_token: &str,
    factors: Factors,
    status: StatusCode,
    problems: &[String],
) -> Response {
    let context = json!({
        "title": "Second factor",
        "csrf": csrf_token(secret),
        "mfa_token": mfa_token,
        "totp": factors.totp,
        "passkey": factors.passkey,
        "recovery_code": factors.recovery_code,
        "problems": problems,
    });
    console
        .pages
        .show_signed_out(status, "second_factor.html", context, None)
}
