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

/// The second step of a login: the `mfa_token` with a code, a recovery code, or a passkey's
/// answer.
#[derive(Serialize, ToSchema)]
struct SecondStep {
    mfa_token: String,
    /// The `PublicKeyCredential` of `navigator.credentials.get()` with the options of
    /// `/api/token/mfa/passkey/`.
    credential: Option<serde_json::Map<String, serde_json::Value>>,
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

/// Options for the browser's WebAuthn call (`publicKey`, its binary fields base64url-encoded),
/// and the token to send back with its answer.
#[derive(Serialize, ToSchema)]
struct CeremonyOptions {
    #[serde(rename = "publicKey")]
    public_key: serde_json::Map<String, serde_json::Value>,
    /// For a registration.
    registration_token: Option<String>,
    /// For a passwordless sign-in.
    passkey_token: Option<String>,
}

/// The browser's answer to a registration.
#[derive(Serialize, ToSchema)]
struct PasskeyRegistration {
    registration_token: String,
    /// The `PublicKeyCredential` of `navigator.credentials.create()`, binary fields
    /// base64url-encoded.
    credential: serde_json::Map<String, serde_json::Value>,
    /// What the user calls it ("Passkey" when empty).
    name: Option<String>,
}

/// A registered passkey.
#[derive(Serialize, ToSchema)]
struct PasskeyRegistered {
    id: i64,
    /// When it is the user's first factor (shown this once).
    recovery_codes: Option<Vec<String>>,
}

/// The second step of a login to be answered with a passkey.
#[derive(Serialize, ToSchema)]
struct MfaToken {
    mfa_token: String,
}

/// The browser's answer to a passwordless sign-in.
#[derive(Serialize, ToSchema)]
struct PasskeySignIn {
    passkey_token: String,
    /// The `PublicKeyCredential` of `navigator.credentials.get()`.
    credential: serde_json::Map<String, serde_json::Value>,
}

#[utoipa::path(post, path = "/api/user/mfa/passkeys/", tag = "mfa",
    description = "Starts registering a passkey (PASSKEY_RP_ID): options for \
                   `navigator.credentials.create()`, and the `registration_token` to send back. \
                   Takes the caller's access token, or an enrolment `mfa_token`.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The options", body = CeremonyOptions),
        (status = 400, description = "`not_configured`: passkeys are off", body = ErrorDetail),
        (status = 401, description = "Not authenticated", body = ErrorDetail),
    ))]
fn begin_passkey_registration() {}

#[utoipa::path(post, path = "/api/user/mfa/passkeys/confirm/", tag = "mfa",
    description = "Registers the passkey the browser made: every later login asks for a second \
                   factor. The first factor comes with recovery codes; with an enrolment \
                   `mfa_token`, with the login's answer too.",
    security(("bearer" = [])),
    request_body(content = PasskeyRegistration, content_type = "application/json"),
    responses(
        (status = 200, description = "Registered", body = PasskeyRegistered),
        (status = 400, description = "An unknown or expired `registration_token`, or a credential that does not check", body = BadRequest),
        (status = 401, description = "Not authenticated", body = ErrorDetail),
    ))]
fn finish_passkey_registration() {}

#[utoipa::path(delete, path = "/api/user/mfa/passkeys/{id}/", tag = "mfa",
    description = "Removes one of the caller's passkeys, with a current TOTP code or the \
                   password. The caller's other sessions end.",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The passkey's id, as `GET /api/user/mfa/` lists it")),
    request_body(content = Consent, content_type = "application/json"),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A wrong code or password", body = BadRequest),
        (status = 401, description = "Not authenticated", body = ErrorDetail),
        (status = 404, description = "No such passkey of the caller's", body = ErrorDetail),
    ))]
fn remove_passkey() {}

#[utoipa::path(post, path = "/api/token/mfa/passkey/", tag = "token",
    description = "Options for `navigator.credentials.get()` with the passkeys of the user whose \
                   login waits for its second step; send the browser's answer to \
                   `/api/token/mfa/` as `{\"mfa_token\", \"credential\"}`.",
    request_body(content = MfaToken, content_type = "application/json"),
    responses(
        (status = 200, description = "The options", body = CeremonyOptions),
        (status = 400, description = "The account has no passkey, or passkeys are off", body = BadRequest),
        (status = 401, description = "`mfa_token_invalid`", body = ErrorDetail),
    ))]
fn begin_passkey_second_factor() {}

#[utoipa::path(post, path = "/api/token/passkey/begin/", tag = "token",
    description = "Starts a sign-in with a passkey alone (PASSKEY_LOGIN): options for \
                   `navigator.credentials.get()` naming no credential, and the `passkey_token`.",
    responses(
        (status = 200, description = "The options", body = CeremonyOptions),
        (status = 400, description = "`not_configured`: PASSKEY_LOGIN is off", body = ErrorDetail),
    ))]
fn begin_passkey_sign_in() {}

#[utoipa::path(post, path = "/api/token/passkey/", tag = "token",
    description = "Signs in the user the passkey names (PASSKEY_LOGIN): the login's answer, with \
                   `amr` `[\"hwk\"]`.",
    request_body(content = PasskeySignIn, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in", body = LoginAnswer),
        (status = 400, description = "A field is missing, or PASSKEY_LOGIN is off", body = BadRequest),
        (status = 401, description = "`passkey_invalid`: an unknown passkey, a signature that does not check, or an unknown, expired or used `passkey_token`", body = ErrorDetail),
        (status = 403, description = "The request's origin is not trusted (refresh cookie)", body = ErrorDetail),
    ))]
fn finish_passkey_sign_in() {}

#[derive(OpenApi)]
#[openapi(paths(
    complete_login,
    status,
    begin_totp,
    confirm_totp,
    disable_totp,
    renew_recovery_codes,
    begin_passkey_registration,
    finish_passkey_registration,
    remove_passkey,
    begin_passkey_second_factor,
    begin_passkey_sign_in,
    finish_passkey_sign_in
))]
pub(super) struct Paths;
