//! The second-factor endpoints' descriptions: enrolment under `/api/user/mfa/` and the second
//! step of a login at `/api/token/mfa/`.

#![allow(dead_code)] // The functions below exist only to carry their `#[utoipa::path]`.

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::{BadRequest, ErrorDetail};

/// The password was right and a second factor is due (401).
#[derive(Serialize, ToSchema)]
struct SecondFactorDue {
    /// "Multi-factor authentication required."
    detail: String,
    /// `mfa_required`, or `mfa_enrollment_required` when MFA_REQUIRED demands a factor the
    /// user has yet to enrol (then without `methods`).
    code: String,
    /// The token of the second step: single-use, valid MFA_TOKEN_LIFETIME, for
    /// `POST /api/token/mfa/` (or, with `mfa_enrollment_required`, as the bearer token of the
    /// enrolment endpoints). Not a JWT; nothing else accepts it.
    mfa_token: String,
    /// What the user can prove it with: `totp`, `recovery_code`.
    methods: Option<Vec<String>>,
}

/// The second step of a login: the `mfa_token` with a code, or with a recovery code.
#[derive(Serialize, ToSchema)]
struct SecondStep {
    mfa_token: String,
    /// The 6-digit code of the user's authenticator app.
    code: Option<String>,
    /// One of the user's recovery codes (`xxxx-xxxx-xxxx`; case, hyphens and spaces are
    /// ignored); each works once.
    recovery_code: Option<String>,
}

/// The login's answer: what `POST /api/token/` (or `/api/token/sliding/`, whichever the login
/// went to) would have answered, in LOGIN_RESPONSE's shape, the refresh token in the cookie
/// when REFRESH_COOKIE is on.
#[derive(Serialize, ToSchema)]
struct LoginAnswer {
    refresh: Option<String>,
    access: Option<String>,
    token: Option<String>,
}

/// A new TOTP secret, pending until confirmed.
#[derive(Serialize, ToSchema)]
struct TotpSecret {
    /// The secret in base32, to type into an app.
    secret: String,
    /// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…` (SHA-1, 6 digits, 30 s).
    otpauth_url: String,
    /// The QR code of `otpauth_url`, an SVG document.
    qr_svg: String,
}

/// A code from the authenticator app.
#[derive(Serialize, ToSchema)]
struct Code {
    code: String,
}

/// A current code, or the password.
#[derive(Serialize, ToSchema)]
struct Consent {
    code: Option<String>,
    password: Option<String>,
}

/// Recovery codes, shown this once (stored only as hashes). Confirming with an enrolment
/// `mfa_token` adds the login's answer (`refresh`, `access`...).
#[derive(Serialize, ToSchema)]
struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

/// A confirmed factor.
#[derive(Serialize, ToSchema)]
struct Factor {
    id: i64,
    /// `totp`.
    #[serde(rename = "type")]
    kind: String,
    name: String,
    created: String,
    last_used: Option<String>,
}

/// The caller's second factors.
#[derive(Serialize, ToSchema)]
struct MfaStatus {
    /// Whether a second factor is asked at login.
    enabled: bool,
    factors: Vec<Factor>,
    recovery_codes_left: i64,
}

#[utoipa::path(post, path = "/api/token/mfa/", tag = "token",
    description = "The second step of a login for a user with a second factor: the `mfa_token` \
                   the password step answered, with a code or a recovery code. Wrong codes count \
                   toward the account's throttle and lockout; after 5 the `mfa_token` is void. \
                   A code works once.",
    request_body(content = SecondStep, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in: the login's answer", body = LoginAnswer),
        (status = 400, description = "A field is missing", body = BadRequest),
        (status = 401, description = "`mfa_code_invalid`, or `mfa_token_invalid` (unknown, expired, used)", body = ErrorDetail),
        (status = 403, description = "The account is locked, or the request's origin is not trusted (refresh cookie)", body = ErrorDetail),
        (status = 429, description = "Too many failed attempts", body = ErrorDetail),
    ))]
fn complete_login() {}

#[utoipa::path(get, path = "/api/user/mfa/", tag = "mfa",
    description = "The caller's confirmed second factors and how many recovery codes are left.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The factors", body = MfaStatus),
        (status = 401, description = "Not authenticated", body = ErrorDetail),
    ))]
fn status() {}

#[utoipa::path(post, path = "/api/user/mfa/totp/", tag = "mfa",
    description = "Starts TOTP enrolment: a new secret, pending until confirmed (starting again \
                   replaces it). Takes the caller's access token, or the `mfa_token` of a login \
                   answered `mfa_enrollment_required`.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The secret", body = TotpSecret),
        (status = 400, description = "`mfa_already_enabled`: disable TOTP first", body = ErrorDetail),
        (status = 401, description = "Not authenticated", body = ErrorDetail),
    ))]
fn begin_totp() {}

#[utoipa::path(post, path = "/api/user/mfa/totp/confirm/", tag = "mfa",
    description = "Confirms TOTP with a code from the app: every later login asks for a code. \
                   Answers a fresh set of 10 recovery codes, shown this once; with an enrolment \
                   `mfa_token`, the login's answer too.",
    security(("bearer" = [])),
    request_body(content = Code, content_type = "application/json"),
    responses(
        (status = 200, description = "TOTP is on", body = RecoveryCodes),
        (status = 400, description = "A wrong code, or no enrolment started", body = BadRequest),
        (status = 401, description = "Not authenticated", body = ErrorDetail),
        (status = 429, description = "Too many failed attempts", body = ErrorDetail),
    ))]
fn confirm_totp() {}

#[utoipa::path(delete, path = "/api/user/mfa/totp/", tag = "mfa",
    description = "Turns TOTP off, with a current code or the password. The caller's other \
                   sessions end.",
    security(("bearer" = [])),
    request_body(content = Consent, content_type = "application/json"),
    responses(
        (status = 204, description = "TOTP is off"),
        (status = 400, description = "A wrong code or password, or `mfa_not_enabled`", body = BadRequest),
        (status = 401, description = "Not authenticated", body = ErrorDetail),
        (status = 429, description = "Too many failed attempts", body = ErrorDetail),
    ))]
fn disable_totp() {}

#[utoipa::path(post, path = "/api/user/mfa/recovery_codes/", tag = "mfa",
    description = "A fresh set of recovery codes, with a current code or the password; the old \
                   set stops working.",
    security(("bearer" = [])),
    request_body(content = Consent, content_type = "application/json"),
    responses(
        (status = 200, description = "The new codes, shown this once", body = RecoveryCodes),
        (status = 400, description = "A wrong code or password, or `mfa_not_enabled`", body = BadRequest),
        (status = 401, description = "Not authenticated", body = ErrorDetail),
        (status = 429, description = "Too many failed attempts", body = ErrorDetail),
    ))]
fn renew_recovery_codes() {}

#[derive(OpenApi)]
#[openapi(paths(
    complete_login,
    status,
    begin_totp,
    confirm_totp,
    disable_totp,
    renew_recovery_codes
))]
pub(super) struct Paths;
