//! The token endpoints' descriptions: obtain, refresh, verify, blacklist, sliding.

#![allow(dead_code)] // The functions below exist only to carry their `#[utoipa::path]`.

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::{BadRequest, Empty, ErrorDetail};

/// A username and password (the username field is USERNAME_FIELD).
#[derive(Serialize, ToSchema)]
struct Credentials {
    username: String,
    password: String,
}

/// A refresh and an access token. With REFRESH_COOKIE the refresh token is in the `Set-Cookie`
/// header instead and `refresh` is absent.
#[derive(Serialize, ToSchema)]
struct TokenPair {
    refresh: Option<String>,
    access: String,
}

/// A refresh token. With REFRESH_COOKIE, `refresh` may be left out and the refresh cookie is read.
#[derive(Serialize, ToSchema)]
struct RefreshRequest {
    refresh: Option<String>,
}

/// A new access token; with ROTATE_REFRESH_TOKENS, a new refresh token too (in the refresh
/// cookie instead, with REFRESH_COOKIE).
#[derive(Serialize, ToSchema)]
struct Refreshed {
    access: String,
    refresh: Option<String>,
}

/// A single token (verify, sliding refresh, sliding obtain's answer).
#[derive(Serialize, ToSchema)]
struct TokenBody {
    token: String,
}

#[utoipa::path(post, path = "/api/token/", tag = "token",
    description = "Obtain a refresh and an access token with a username and password. With REFRESH_COOKIE, the refresh token is set in an HttpOnly cookie instead of the body, and the request's Origin (or Referer) must be Tollgate's own or in CSRF_TRUSTED_ORIGINS.",
    request_body(content(
        (Credentials = "application/json"),
        (Credentials = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Tokens issued; with CLAIMS_HOOK_URL, also the fields the hook adds", body = TokenPair),
        (status = 400, description = "A field is missing or blank", body = BadRequest),
        (status = 401, description = "No active account found with the given credentials; or, for a user with a second factor, `mfa_required` with the `mfa_token` of the second step (POST /api/token/mfa/), or `mfa_enrollment_required` (MFA_REQUIRED)", body = ErrorDetail),
        (status = 403, description = "The account is locked after LOGIN_LOCKOUT_THRESHOLD failed logins (code `account_locked`), or (REFRESH_COOKIE) the request comes from an untrusted origin", body = ErrorDetail),
        (status = 429, description = "Too many failed logins for the account or address; see Retry-After", body = ErrorDetail),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES", body = ErrorDetail),
        (status = 415, description = "The body is neither JSON nor a form", body = ErrorDetail),
        (status = 503, description = "The claims hook failed with CLAIMS_HOOK_FAILURE = deny (code `claims_hook_failed`): nothing was issued", body = ErrorDetail),
    ))]
fn obtain_pair() {}

#[utoipa::path(post, path = "/api/token/refresh/", tag = "token",
    description = "A new access token for a refresh token; with rotation, a new refresh token too. With REFRESH_COOKIE, the request's Origin (or Referer) must be Tollgate's own or in CSRF_TRUSTED_ORIGINS, and a body without `refresh` uses the refresh cookie (two cookies of its name are refused).",
    request_body(content(
        (RefreshRequest = "application/json"),
        (RefreshRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Refreshed", body = Refreshed),
        (status = 400, description = "The field is missing or blank", body = BadRequest),
        (status = 401, description = "Invalid, expired, blacklisted or wrong type of token, or its user deleted or inactive", body = ErrorDetail),
        (status = 403, description = "REFRESH_COOKIE: a request from an untrusted origin, or with more than one refresh cookie", body = ErrorDetail),
        (status = 503, description = "The claims hook failed with CLAIMS_HOOK_FAILURE = deny (code `claims_hook_failed`): nothing was issued", body = ErrorDetail),
    ))]
fn refresh() {}

#[utoipa::path(post, path = "/api/token/verify/", tag = "token",
    description = "Check a token of any type.",
    request_body(content(
        (TokenBody = "application/json"),
        (TokenBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The token is valid", body = Empty),
        (status = 400, description = "Missing field, or blacklisted token (with BLACKLIST_AFTER_ROTATION)", body = BadRequest),
        (status = 401, description = "Invalid or expired token, or its user deleted or inactive (VERIFY_CHECKS_USER)", body = ErrorDetail),
    ))]
fn verify() {}

#[utoipa::path(post, path = "/api/token/blacklist/", tag = "token",
    description = "Log out: blacklist a refresh token. With REFRESH_COOKIE, the origin is checked as for refresh, a body without `refresh` uses the refresh cookie, and the answer clears the cookie.",
    request_body(content(
        (RefreshRequest = "application/json"),
        (RefreshRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Blacklisted", body = Empty),
        (status = 400, description = "The field is missing or blank", body = BadRequest),
        (status = 401, description = "Invalid, expired, already blacklisted or wrong type of token", body = ErrorDetail),
        (status = 403, description = "REFRESH_COOKIE: a request from an untrusted origin, or with more than one refresh cookie", body = ErrorDetail),
    ))]
fn blacklist() {}

#[utoipa::path(post, path = "/api/token/sliding/", tag = "token",
    description = "Obtain a sliding token with a username and password.",
    request_body(content(
        (Credentials = "application/json"),
        (Credentials = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Token issued", body = TokenBody),
        (status = 400, description = "A field is missing or blank", body = BadRequest),
        (status = 401, description = "No active account found with the given credentials; or, for a user with a second factor, `mfa_required` with the `mfa_token` of the second step (POST /api/token/mfa/), or `mfa_enrollment_required` (MFA_REQUIRED)", body = ErrorDetail),
        (status = 403, description = "The account is locked after LOGIN_LOCKOUT_THRESHOLD failed logins (code `account_locked`); see Retry-After", body = ErrorDetail),
        (status = 429, description = "Too many failed logins for the account or address; see Retry-After", body = ErrorDetail),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES", body = ErrorDetail),
        (status = 415, description = "The body is neither JSON nor a form", body = ErrorDetail),
        (status = 503, description = "The claims hook failed with CLAIMS_HOOK_FAILURE = deny (code `claims_hook_failed`): nothing was issued", body = ErrorDetail),
    ))]
fn obtain_sliding() {}

#[utoipa::path(post, path = "/api/token/sliding/refresh/", tag = "token",
    description = "Extend a sliding token within its refresh window.",
    request_body(content(
        (TokenBody = "application/json"),
        (TokenBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Refreshed", body = TokenBody),
        (status = 400, description = "The field is missing or blank", body = BadRequest),
        (status = 401, description = "Invalid, expired or wrong type of token", body = ErrorDetail),
        (status = 503, description = "The claims hook failed with CLAIMS_HOOK_FAILURE = deny (code `claims_hook_failed`): nothing was issued", body = ErrorDetail),
    ))]
fn refresh_sliding() {}

#[utoipa::path(post, path = "/api/token/blacklist/all/", tag = "token",
    description = "Log out everywhere, as DELETE on the sessions list does: every session of the authenticated user is revoked.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every session revoked", body = Empty),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
    ))]
fn blacklist_all() {}

/// The user to issue tokens to: `user_id` (the value of USER_ID_FIELD, as tokens carry it) or
/// `username`, not both.
#[derive(Serialize, ToSchema)]
struct IssueRequest {
    user_id: Option<String>,
    username: Option<String>,
}

/// A login's answer: `refresh` and `access` (LOGIN_RESPONSE = "pair") or `token` ("token"),
/// `user` with LOGIN_RESPONSE_USER, and any field the claims hook adds.
#[derive(Serialize, ToSchema)]
struct IssuedTokens {
    refresh: Option<String>,
    access: Option<String>,
    token: Option<String>,
}

#[utoipa::path(post, path = "/api/token/issue/", tag = "token",
    description = "Issue a login's tokens to a user who signed in elsewhere, named by a trusted backend. Authenticated by `Authorization: Api-Key <key>` with a key of scope `tokens:issue` (`tollgate apikey create`); a bearer token is refused. The tokens start a session (its user agent `api-key:<name>`), are recorded in the login history and send `user.logged_in`. The refresh token is always in the body.",
    security(("api_key" = [])),
    request_body(content(
        (IssueRequest = "application/json"),
        (IssueRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Tokens issued", body = IssuedTokens),
        (status = 400, description = "Neither or both of `user_id` and `username`, or the user is inactive (code `user_inactive`)", body = BadRequest),
        (status = 401, description = "No API key (a bearer token included), a malformed header, or an unknown or revoked key; `WWW-Authenticate: Api-Key`", body = ErrorDetail),
        (status = 403, description = "The key lacks the scope `tokens:issue`", body = ErrorDetail),
        (status = 404, description = "No user has this id or username (code `user_not_found`)", body = ErrorDetail),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES", body = ErrorDetail),
        (status = 415, description = "The body is neither JSON nor a form", body = ErrorDetail),
        (status = 503, description = "The claims hook failed with CLAIMS_HOOK_FAILURE = deny (code `claims_hook_failed`)", body = ErrorDetail),
    ))]
fn issue() {}

#[derive(OpenApi)]
#[openapi(paths(
    obtain_pair,
    refresh,
    verify,
    blacklist,
    obtain_sliding,
    refresh_sliding,
    blacklist_all,
    issue
))]
pub(super) struct Paths;
