//! The OpenAPI 3.1 description of the API, served at `/api/schema/`, and the interactive docs
//! page at `/api/docs/` (Swagger UI, its assets compiled into the binary: no CDN).
//!
//! Each operation is described here beside the schemas of its bodies, at the default paths;
//! [`document`] moves them to the configured ones. A test checks that every route the server
//! answers is described.

#![allow(dead_code)] // The functions below exist only to carry their `#[utoipa::path]`.

use std::collections::BTreeMap;

use serde::Serialize;
use tollgate_core::Settings;
use utoipa::openapi::OpenApi as Document;
use utoipa::{OpenApi, ToSchema};

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

/// An empty object: the request succeeded.
#[derive(Serialize, ToSchema)]
struct Empty {}

/// The authenticated user.
#[derive(Serialize, ToSchema)]
struct IndexUser {
    id: i64,
    username: String,
}

/// The process is up.
#[derive(Serialize, ToSchema)]
struct Health {
    status: String,
}

/// Readiness: `status` is `ok` or `unavailable`; each dependency is `ok` or `down`.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// `ok` when every dependency answers, else `unavailable`.
    status: String,
    /// The database: `ok` or `down`.
    database: String,
    /// Redis, present only when REDIS_URL is set: `ok` or `down`.
    #[schema(nullable = false)]
    redis: Option<String>,
}

/// A JSON Web Key Set.
#[derive(Serialize, ToSchema)]
struct Jwks {
    /// Public JWKs: kty, kid, alg, use and the key's public parameters.
    keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// An error with a message: `{"detail": "..."}`, with a machine-readable `code` on token
/// errors and, on protected endpoints, the reason of each token type tried.
#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    detail: String,
    code: Option<String>,
    messages: Option<Vec<TokenClassMessage>>,
}

/// Why one token type refused the token.
#[derive(Serialize, ToSchema)]
struct TokenClassMessage {
    token_class: String,
    token_type: String,
    message: String,
}

/// Field errors: each field with its messages, e.g. `{"password": ["This field is required."]}`;
/// errors of no field under `non_field_errors`.
#[derive(Serialize, ToSchema)]
struct FieldErrors(BTreeMap<String, Vec<String>>);

/// A 400: field errors, or a body that could not be read (`{"detail": "JSON parse error - …"}`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum BadRequest {
    Fields(FieldErrors),
    Unreadable(ErrorDetail),
}

#[utoipa::path(post, path = "/api/token/", tag = "token",
    description = "Obtain a refresh and an access token with a username and password. With REFRESH_COOKIE, the refresh token is set in an HttpOnly cookie instead of the body, and the request's Origin (or Referer) must be Tollgate's own or in CSRF_TRUSTED_ORIGINS.",
    request_body(content(
        (Credentials = "application/json"),
        (Credentials = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Tokens issued", body = TokenPair),
        (status = 400, description = "A field is missing or blank", body = BadRequest),
        (status = 401, description = "No active account found with the given credentials", body = ErrorDetail),
        (status = 403, description = "The account is locked after LOGIN_LOCKOUT_THRESHOLD failed logins (code `account_locked`), or (REFRESH_COOKIE) the request comes from an untrusted origin", body = ErrorDetail),
        (status = 429, description = "Too many failed logins for the account or address; see Retry-After", body = ErrorDetail),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES", body = ErrorDetail),
        (status = 415, description = "The body is neither JSON nor a form", body = ErrorDetail),
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
        (status = 401, description = "No active account found with the given credentials", body = ErrorDetail),
        (status = 403, description = "The account is locked after LOGIN_LOCKOUT_THRESHOLD failed logins (code `account_locked`); see Retry-After", body = ErrorDetail),
        (status = 429, description = "Too many failed logins for the account or address; see Retry-After", body = ErrorDetail),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES", body = ErrorDetail),
        (status = 415, description = "The body is neither JSON nor a form", body = ErrorDetail),
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
    ))]
fn refresh_sliding() {}

#[utoipa::path(get, path = "/api/index/", tag = "user",
    description = "The authenticated user's id and username.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = IndexUser),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
    ))]
fn index() {}

/// A user as the accounts API shows it; the profile fields of USER_PROFILE_FIELDS follow the
/// built-in ones. The password is never shown.
#[derive(Serialize, ToSchema)]
struct UserBody {
    id: i64,
    username: String,
    email: String,
    phone: Option<String>,
    first_name: String,
    last_name: String,
    /// RFC 3339, UTC.
    date_joined: String,
    /// RFC 3339, UTC; null before the first recorded login.
    last_login: Option<String>,
}

/// A new account: USERNAME_FIELD and the password are required, and so are
/// USER_REQUIRED_FIELDS; profile fields may be added.
#[derive(Serialize, ToSchema)]
struct Registration {
    username: String,
    password: String,
    email: Option<String>,
    phone: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

/// Changes to the current user: any of the user's own fields and profile fields.
#[derive(Serialize, ToSchema)]
struct UserChange {
    username: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

/// The current password and the new one.
#[derive(Serialize, ToSchema)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

#[utoipa::path(post, path = "/api/users/", tag = "user",
    description = "Register a user (REGISTRATION_ENABLED). The new password passes the password policy.",
    request_body(content(
        (Registration = "application/json"),
        (Registration = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "The user was created", body = UserBody),
        (status = 400, description = "Missing, invalid or taken fields, or a weak password", body = BadRequest),
        (status = 429, description = "Too many registration attempts from the address (REGISTRATIONS_PER_ADDRESS); see Retry-After", body = ErrorDetail),
    ))]
fn register() {}

#[utoipa::path(get, path = "/api/user/", tag = "user",
    description = "The authenticated user.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserBody),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
    ))]
fn me() {}

#[utoipa::path(put, path = "/api/user/", tag = "user",
    description = "Replace the authenticated user's own fields; USERNAME_FIELD and USER_REQUIRED_FIELDS are required.",
    security(("bearer" = [])),
    request_body = UserChange,
    responses(
        (status = 200, description = "The changed user", body = UserBody),
        (status = 400, description = "Missing, invalid or taken fields", body = BadRequest),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
    ))]
fn replace_me() {}

#[utoipa::path(patch, path = "/api/user/", tag = "user",
    description = "Change some of the authenticated user's own fields.",
    security(("bearer" = [])),
    request_body = UserChange,
    responses(
        (status = 200, description = "The changed user", body = UserBody),
        (status = 400, description = "Invalid or taken fields", body = BadRequest),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
    ))]
fn update_me() {}

#[utoipa::path(post, path = "/api/user/password/", tag = "user",
    description = "Change the password. The user's refresh tokens are blacklisted; with CHECK_REVOKE_TOKEN every earlier token stops working.",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed: {\"detail\": \"New password has been saved.\"}", body = ErrorDetail),
        (status = 400, description = "Wrong old password or a weak new one", body = BadRequest),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "The account is locked after LOGIN_LOCKOUT_THRESHOLD failed password checks (code `account_locked`); see Retry-After", body = ErrorDetail),
        (status = 429, description = "Too many failed password checks for the account or address; see Retry-After", body = ErrorDetail),
    ))]
fn change_password() {}

/// A login session: the family of tokens refreshed from one login.
#[derive(Serialize, ToSchema)]
struct SessionBody {
    /// The session's id, the `sid` claim of its tokens.
    id: String,
    /// When the user logged in (RFC 3339, UTC).
    created: String,
    /// When a token of the session was last refreshed, or the login (RFC 3339, UTC).
    last_used: String,
    /// The address the login came from (see TRUSTED_PROXIES).
    client_address: String,
    /// The login's `User-Agent` header, or "".
    user_agent: String,
    /// Whether the request's own token belongs to this session.
    current: bool,
}

#[utoipa::path(get, path = "/api/sessions/", tag = "sessions",
    description = "The authenticated user's live sessions (one per login), most recently used first; the session of the request's token is marked `current`.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The sessions", body = Vec<SessionBody>),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
    ))]
fn sessions() {}

#[utoipa::path(delete, path = "/api/sessions/", tag = "sessions",
    description = "Log out everywhere: revoke every session of the authenticated user and blacklist all their refresh and sliding tokens (with ACCESS_TOKEN_REVOCATION, their access tokens stop working too).",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session revoked"),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
    ))]
fn revoke_sessions() {}

#[utoipa::path(delete, path = "/api/sessions/{id}/", tag = "sessions",
    description = "Revoke one of the authenticated user's sessions: its refresh and sliding tokens are blacklisted (with ACCESS_TOKEN_REVOCATION, its access tokens stop working too).",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 404, description = "The user has no live session with this id", body = ErrorDetail),
    ))]
fn revoke_session() {}

#[utoipa::path(post, path = "/api/token/blacklist/all/", tag = "token",
    description = "Log out everywhere, as DELETE on the sessions list does: every session of the authenticated user is revoked.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every session revoked", body = Empty),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
    ))]
fn blacklist_all() {}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    description = "Liveness: the process is up.",
    responses((status = 200, description = "Up", body = Health)))]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    description = "Readiness: the database and, when REDIS_URL is set, Redis answer. A load balancer sends traffic only to instances that answer 200.",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is down; the body names it", body = Readiness),
    ))]
fn readyz() {}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys",
    description = "The public keys that verify tokens (RFC 7517), each with kid, alg and use: \
                   the active key first, then keys retired by a rotation until their tokens \
                   have expired. HMAC keys are never published (shared secrets).",
    responses((status = 200, description = "The key set", body = Jwks)))]
fn jwks() {}

#[utoipa::path(get, path = "/ws/echo/", tag = "websocket",
    description = "A WebSocket (RFC 6455) that greets its user (\"hello, USERNAME\") and then echoes \
                   every message. The access token comes from the `token` query parameter, the \
                   authorization header, or the first text message. A connection that does not \
                   authenticate is closed with code 4401 and a reason such as \
                   `token_not_valid: Token is expired`; an open one is closed the same way, within \
                   a second, when its token expires or is revoked (logout, password change) or its \
                   user is deactivated or deleted. Before it authenticates, a socket reads at most \
                   8 KiB a frame (larger: closed with 1009). A request that is not a WebSocket \
                   upgrade gets 426.",
    params(("token" = Option<String>, Query, description = "An access token")),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),
        (status = 426, description = "Not a WebSocket upgrade request", body = ErrorDetail),
    ))]
fn ws_echo() {}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate", description = "JWT authentication with djangorestframework-simplejwt's token API."),
    paths(obtain_pair, refresh, verify, blacklist, obtain_sliding, refresh_sliding, index, healthz, readyz, jwks,
        ws_echo, register, me, replace_me, update_me, change_password,
        sessions, revoke_sessions, revoke_session, blacklist_all),
    modifiers(&BearerScheme),
)]
struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The description with each path moved to where the settings put it.
pub(crate) fn document(settings: &Settings) -> Document {
    let mut doc = ApiDoc::openapi();
    let session_path = super::session_path(settings);
    let moved: Vec<(&str, &str)> = vec![
        ("/api/sessions/", &settings.sessions_path),
        ("/api/sessions/{id}/", &session_path),
        (
            "/api/token/blacklist/all/",
            &settings.token_blacklist_all_path,
        ),
        ("/api/token/", &settings.token_obtain_path),
        ("/api/token/refresh/", &settings.token_refresh_path),
        ("/api/token/verify/", &settings.token_verify_path),
        ("/api/token/blacklist/", &settings.token_blacklist_path),
        ("/api/token/sliding/", &settings.token_sliding_path),
        (
            "/api/token/sliding/refresh/",
            &settings.token_sliding_refresh_path,
        ),
        ("/api/index/", &settings.index_path),
        ("/api/users/", &settings.users_path),
        ("/api/user/", &settings.user_path),
        ("/api/user/password/", &settings.user_password_path),
    ];
    let mut paths = std::mem::take(&mut doc.paths.paths);
    if !settings.registration_enabled {
        paths.remove("/api/users/");
    }
    // Every item is taken out before any is put back, so that a path configured where another
    // one's default lies is not overwritten.
    let taken: Vec<_> = moved
        .into_iter()
        .filter_map(|(default, configured)| Some((configured, paths.remove(default)?)))
        .collect();
    for (configured, item) in taken {
        paths.insert(configured.to_owned(), item);
    }
    doc.paths.paths = paths;
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}
