//! The accounts and sessions endpoints' descriptions: registration, the current user,
//! password change, sessions.

#![allow(dead_code)] // The functions below exist only to carry their `#[utoipa::path]`.

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::{BadRequest, ErrorDetail};

/// The authenticated user.
#[derive(Serialize, ToSchema)]
struct IndexUser {
    id: i64,
    username: String,
}

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
    description = "A full update of the authenticated user's own fields, as Django REST framework's: USERNAME_FIELD and USER_REQUIRED_FIELDS are required; fields not sent keep their values. With USER_UPDATE_NESTED the user's fields may come in an object under `user` (errors of those fields are answered under `user` too).",
    security(("bearer" = [])),
    request_body = UserChange,
    responses(
        (status = 200, description = "The changed user", body = UserBody),
        (status = 400, description = "Missing, invalid or taken fields", body = BadRequest),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
    ))]
fn replace_me() {}

#[utoipa::path(patch, path = "/api/user/", tag = "user",
    description = "A partial update: only the fields sent change, none is required. With USER_UPDATE_NESTED the user's fields may come in an object under `user`.",
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

/// The address of the account whose password was forgotten.
#[derive(Serialize, ToSchema)]
struct ResetRequest {
    email: String,
}

/// The `uid` and `token` of a reset link, and the new password.
#[derive(Serialize, ToSchema)]
struct ResetConfirm {
    uid: String,
    token: String,
    new_password: String,
}

#[utoipa::path(post, path = "/api/users/reset_password/", tag = "user",
    description = "Ask for a password reset link (djoser's reset_password). The answer is the same, at once, whether or not the address has an active account; if it has, a mail with a link to PASSWORD_RESET_URL (with `uid` and `token`) is sent. Needs SMTP_URL and PASSWORD_RESET_URL.",
    request_body = ResetRequest,
    responses(
        (status = 204, description = "Accepted"),
        (status = 400, description = "No email field, or password reset is not configured (code `not_configured`)", body = BadRequest),
        (status = 429, description = "Too many requests from the address (PASSWORD_RESETS_PER_ADDRESS); see Retry-After", body = ErrorDetail),
    ))]
fn reset_password() {}

#[utoipa::path(post, path = "/api/users/reset_password_confirm/", tag = "user",
    description = "Set a new password with the uid and token of a reset link (djoser's reset_password_confirm). The link works once, for PASSWORD_RESET_TIMEOUT, while it is the newest and the password unchanged. Every session of the user ends.",
    request_body = ResetConfirm,
    responses(
        (status = 204, description = "The password is set"),
        (status = 400, description = "`uid`: Invalid user id or user doesn't exist; `token`: Invalid token for given user; `new_password`: the password policy's refusals", body = BadRequest),
    ))]
fn reset_password_confirm() {}

/// The `uid` and `token` of an activation link.
#[derive(Serialize, ToSchema)]
struct Activation {
    uid: String,
    token: String,
}

#[utoipa::path(post, path = "/api/users/activation/", tag = "user",
    description = "Confirm a registration's email address with the uid and token of its activation link (djoser's activation). Needs EMAIL_VERIFICATION optional or mandatory.",
    request_body = Activation,
    responses(
        (status = 204, description = "The address is confirmed"),
        (status = 400, description = "`uid`: Invalid user id or user doesn't exist; `token`: Invalid token for given user; or verification is off (code `not_configured`)", body = BadRequest),
        (status = 403, description = "The address was confirmed already: {\"detail\": \"Stale token for given user.\"}", body = ErrorDetail),
    ))]
fn activation() {}

#[utoipa::path(post, path = "/api/users/resend_activation/", tag = "user",
    description = "Mail a new activation link (djoser's resend_activation). The answer is the same whether or not the address waits for one.",
    request_body = ResetRequest,
    responses(
        (status = 204, description = "Accepted"),
        (status = 400, description = "No email field, or verification is off (code `not_configured`)", body = BadRequest),
        (status = 429, description = "Too many requests from the address; see Retry-After", body = ErrorDetail),
    ))]
fn resend_activation() {}

#[utoipa::path(post, path = "/api/users/confirm_email/", tag = "user",
    description = "Make the address a user asked to change to (PATCH on the user, with EMAIL_VERIFICATION on) their address, with the uid and token of the link sent to it.",
    request_body = Activation,
    responses(
        (status = 204, description = "The new address is the user's"),
        (status = 400, description = "`uid`, `token` as for activation; `email` if the address was taken meanwhile; or verification is off (code `not_configured`)", body = BadRequest),
        (status = 403, description = "No change waits: {\"detail\": \"Stale token for given user.\"}", body = ErrorDetail),
    ))]
fn confirm_email() {}

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
    /// When its last token expires (RFC 3339, UTC).
    expires: String,
    /// How the user signed in: `pwd`, `otp`, `hwk` (the tokens' `amr` claim); empty for
    /// sessions recorded before it was.
    amr: Vec<String>,
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

#[derive(OpenApi)]
#[openapi(paths(
    index,
    register,
    me,
    replace_me,
    update_me,
    change_password,
    sessions,
    revoke_sessions,
    revoke_session,
    reset_password,
    reset_password_confirm,
    activation,
    resend_activation,
    confirm_email
))]
pub(super) struct Paths;
