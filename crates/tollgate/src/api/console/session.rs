//! The console's session and the protection of its forms.
//!
//! A signed-in administrator's browser holds the refresh token of their console session in
//! a cookie scoped to `/admin/`, `HttpOnly` (no page script reads it) and `SameSite=Strict`
//! (no other site's page sends it), `Secure` as the refresh cookie is (outside DEVELOPMENT).
//! Each request checks the token, its session and the administrator again ([`Admin`]).
//!
//! Every form carries a CSRF token, an HMAC keyed by the secret the browser holds in its
//! cookie (the session's refresh token; before sign-in, a random value in a cookie of its
//! own): a page of another origin can neither read the cookie nor the console's pages, so it
//! cannot compute the token. A POST without the right token is refused (403), as is one whose
//! `Origin` header names an origin other than the console's own or CSRF_TRUSTED_ORIGINS.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tollgate_core::body::Payload;
use tollgate_core::Settings;

use super::messages::Flash;
use super::{ConsoleState, BASE};
use crate::api::cookie::{self, Cookie};
use crate::client::ClientAddr;
use crate::error::ApiError;
use crate::service::admin::console::administrator;
use crate::service::admin::Actor;
use crate::service::ServiceError;

/// The cookie holding a console session's refresh token.
pub(super) const SESSION_COOKIE: &str = "tollgate_console";
/// The cookie holding the random value the sign-in forms' CSRF token is made from.
pub(super) const SIGN_IN_COOKIE: &str = "tollgate_console_sign_in";
/// How long a sign-in page may wait before it is sent.
pub(super) const SIGN_IN_LIFETIME: i64 = 3600;
/// The form field of the CSRF token.
pub(super) const CSRF_FIELD: &str = "csrf";
/// What the CSRF token is the HMAC of, keyed by the browser's secret.
const CSRF_PURPOSE: &[u8] = b"tollgate console form";

/// A request of a signed-in administrator.
pub(super) struct Admin {
    pub(super) actor: Actor,
    /// The CSRF token of this session, for the page's forms.
    pub(super) csrf: String,
    /// The message the previous action left, shown once.
    pub(super) flash: Option<Flash>,
    /// The session's refresh token, for signing out.
    pub(super) token: String,
}

impl Admin {
    /// The administrator's username.
    pub(super) fn username(&self) -> &str {
        self.actor
            .account()
            .map_or("", |account| account.username.as_str())
    }

    /// Whether the administrator is a superuser.
    pub(super) fn is_superuser(&self) -> bool {
        self.actor.account().is_some_and(|a| a.is_superuser)
    }
}

impl FromRequestParts<ConsoleState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &ConsoleState,
    ) -> Result<Admin, Response> {
        let state = &console.app;
        // Two cookies of the name (one planted by a sibling origin) are no session at all.
        let cookie::Cookie::One(token) = cookie::read(&parts.headers, SESSION_COOKIE) else {
            return Err(console.pages.signed_out(None));
        };
        let client = ClientAddr::of(parts, state);
        match administrator(state, &token, client.0).await {
            Ok(actor) => Ok(Admin {
                actor,
                csrf: csrf_token(&token),
                flash: Flash::of(&parts.headers),
                token,
            }),
            Err(err @ (ServiceError::PermissionDenied | ServiceError::MfaRequired)) => {
                Err(console.pages.refused(&err))
            }
            // The token or its session ended: logged out, revoked, expired, the user
            // deactivated or their password changed.
            Err(
                ServiceError::Token(_)
                | ServiceError::NoActiveAccountForToken
                | ServiceError::PasswordChangedForToken,
            ) => {
                let flash = Flash::problem("Your console session has ended. Sign in again.");
                Err(console.pages.signed_out(Some(flash)))
            }
            Err(err) => Err(console.pages.problem(ApiError::from(err), None)),
        }
    }
}

/// A form posted by a signed-in administrator, its CSRF token and origin checked.
pub(super) struct Submitted {
    pub(super) admin: Admin,
    pub(super) payload: Payload,
}

impl FromRequest<ConsoleState> for Submitted {
    type Rejection = Response;

    async fn from_request(request: Request, console: &ConsoleState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let admin = Admin::from_request_parts(&mut parts, console).await?;
        let payload = form(Request::from_parts(parts, body), console).await?;
        if !csrf_matches(&payload, &admin.token) {
            return Err(console.pages.forged(Some(&admin)));
        }
        Ok(Submitted { admin, payload })
    }
}

/// A sign-in form (the password, or the second factor), its CSRF token and origin checked
/// against the sign-in cookie.
pub(super) struct SignInForm {
    pub(super) payload: Payload,
    /// The sign-in cookie's value, for the next form of the sign-in.
    pub(super) secret: String,
}

impl SignInForm {
    /// The pending sign-in the second-factor forms carry (empty when the form has none).
    pub(super) fn mfa_token(&self) -> String {
        self.payload
            .text("mfa_token")
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

impl FromRequest<ConsoleState> for SignInForm {
    type Rejection = Response;

    async fn from_request(request: Request, console: &ConsoleState) -> Result<Self, Response> {
        let secret = match cookie::read(request.headers(), SIGN_IN_COOKIE) {
            Cookie::One(secret) => Some(secret),
            _ => None,
        };
        let payload = form(request, console).await?;
        match secret {
            Some(secret) if csrf_matches(&payload, &secret) => Ok(SignInForm { payload, secret }),
            _ => Err(console.pages.forged(None)),
        }
    }
}

/// A form's fields, once its origin is checked (when the browser named one).
async fn form(request: Request, console: &ConsoleState) -> Result<Payload, Response> {
    if request.headers().contains_key(axum::http::header::ORIGIN) {
        if let Err(err) = crate::api::origin::check(&console.app.settings, request.headers()) {
            return Err(console.pages.problem(err, None));
        }
    }
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|_| console.pages.problem(ApiError::PayloadTooLarge, None))?;
    Payload::parse(content_type.as_deref(), &body)
        .map_err(|err| console.pages.problem(ApiError::from(err), None))
}

/// The CSRF token of the forms of a browser holding `secret`.
pub(super) fn csrf_token(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(csrf_mac(secret).finalize().into_bytes())
}

fn csrf_mac(secret: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(CSRF_PURPOSE);
    mac
}

/// Whether the form's CSRF token is that of `secret` (compared in constant time).
fn csrf_matches(payload: &Payload, secret: &str) -> bool {
    let sent = payload.text(CSRF_FIELD).ok().flatten().unwrap_or_default();
    match URL_SAFE_NO_PAD.decode(sent.as_bytes()) {
        Ok(bytes) => csrf_mac(secret).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// The sign-in cookie's value if the request has one, else a new random one.
pub(super) fn sign_in_secret(headers: &HeaderMap) -> (String, bool) {
    match cookie::read(headers, SIGN_IN_COOKIE) {
        Cookie::One(secret) => (secret, false),
        _ => (tollgate_core::account_token::new_account_token().0, true),
    }
}

/// The `Set-Cookie` value of a console cookie `name` holding `value` for `max_age` seconds.
pub(super) fn set_cookie(
    settings: &Settings,
    name: &str,
    value: &str,
    max_age: i64,
) -> HeaderValue {
    let secure = if settings.development { "" } else { "; Secure" };
    let text = format!(
        "{name}={value}; Max-Age={}; Path={BASE}; HttpOnly; SameSite=Strict{secure}",
        max_age.max(0)
    );
    // Names are constants and values URL-safe base64, a JWT or percent-encoded text.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that removes console cookie `name`.
pub(super) fn clear_cookie(settings: &Settings, name: &str) -> HeaderValue {
    set_cookie(settings, name, "", 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_with(token: &str) -> Payload {
        Payload::Form(vec![(CSRF_FIELD.to_owned(), token.to_owned())])
    }

    #[test]
    fn a_csrf_token_matches_its_secret_only() {
        let token = csrf_token("secret-a");
        assert!(csrf_matches(&form_with(&token), "secret-a"));
        assert!(!csrf_matches(&form_with(&token), "secret-b"));
        assert!(!csrf_matches(&form_with(""), "secret-a"));
        assert!(!csrf_matches(&form_with("not base64 !"), "secret-a"));
        assert!(!csrf_matches(&Payload::Form(Vec::new()), "secret-a"));
        // The token tells nothing of the secret it is made from.
        assert!(!token.contains("secret"));
    }

    #[test]
    fn console_cookies_are_strict_and_scoped_to_the_console() {
        let settings = Settings::default();
        assert_eq!(
            set_cookie(&settings, SESSION_COOKIE, "a.b.c", 60),
            "tollgate_console=a.b.c; Max-Age=60; Path=/admin/; HttpOnly; SameSite=Strict; Secure"
        );
        let development = Settings {
            development: true,
            ..Settings::default()
        };
        assert_eq!(
            clear_cookie(&development, SIGN_IN_COOKIE),
            "tollgate_console_sign_in=; Max-Age=0; Path=/admin/; HttpOnly; SameSite=Strict"
        );
    }
}
