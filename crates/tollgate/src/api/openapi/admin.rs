//! The admin API's descriptions: accounts, their sessions and login history, the signing keys,
//! the audit log.

#![allow(dead_code)] // The functions below exist only to carry their `#[utoipa::path]`.

use serde::Serialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use super::{BadRequest, ErrorDetail};

/// An account as administrators see it: the user's fields (the profile fields of
/// USER_PROFILE_FIELDS after the built-in ones) and the flags. The password is never shown.
#[derive(Serialize, ToSchema)]
struct AdminUser {
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
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
}

/// A page of accounts (Django REST framework's page shape).
#[derive(Serialize, ToSchema)]
struct UserPage {
    /// How many accounts the whole list has.
    count: i64,
    /// The next page's absolute URL, or null on the last page.
    next: Option<String>,
    /// The previous page's absolute URL, or null on the first page.
    previous: Option<String>,
    results: Vec<AdminUser>,
}

/// A new account: USERNAME_FIELD, USER_REQUIRED_FIELDS and the password (which must pass the
/// password policy); the flags default to active, not staff, not superuser, and only a
/// superuser may set `is_staff` or `is_superuser`.
#[derive(Serialize, ToSchema)]
struct NewAccount {
    username: String,
    password: String,
    email: Option<String>,
    phone: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    is_active: Option<bool>,
    is_staff: Option<bool>,
    is_superuser: Option<bool>,
}

/// Changes to an account: any of its fields and flags.
#[derive(Serialize, ToSchema)]
struct AccountChange {
    username: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    is_active: Option<bool>,
    is_staff: Option<bool>,
    is_superuser: Option<bool>,
}

/// The password to set.
#[derive(Serialize, ToSchema)]
struct NewPassword {
    new_password: String,
}

/// Whether a lockout was in force.
#[derive(Serialize, ToSchema)]
struct Unlocked {
    was_locked: bool,
}

/// A session of the account.
#[derive(Serialize, ToSchema)]
struct AdminSession {
    /// The session's id, the `sid` claim of its tokens.
    id: String,
    /// When the user logged in (RFC 3339, UTC).
    created: String,
    /// When a token of the session was last refreshed, or the login.
    last_used: String,
    /// When its last token expires.
    expires: String,
    client_address: String,
    user_agent: String,
    /// How the user signed in: `pwd`, `otp`, `hwk` (the tokens' `amr` claim).
    amr: Vec<String>,
}

/// One login attempt (or password reset).
#[derive(Serialize, ToSchema)]
struct LoginEventBody {
    /// RFC 3339, UTC.
    time: String,
    succeeded: bool,
    /// `succeeded`, or why not: `wrong_password`, `inactive`, `locked`, `email_not_verified`;
    /// `password_reset` for a reset by mailed link.
    outcome: String,
    client_address: String,
    user_agent: Option<String>,
}

/// A page of login events.
#[derive(Serialize, ToSchema)]
struct EventPage {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<LoginEventBody>,
}

/// A signing key, without its material.
#[derive(Serialize, ToSchema)]
struct SigningKey {
    kid: String,
    algorithm: String,
    /// `next` (published, signs from `signs_from`), `active`, `retired` (verifies until
    /// `verify_until`) or `expired`.
    state: String,
    /// When it was made; null for the configured key before the first rotation.
    created: Option<String>,
    /// When a pre-published key signs (`next`), or began to; null for a key that signed from
    /// when it was made.
    signs_from: Option<String>,
    /// When a retired key stops verifying; for the active key, once a next key waits, when it
    /// will. Null while it verifies with no end.
    verify_until: Option<String>,
    /// `encrypted` (rotated, in the database) or `SIGNING_KEY` (configured).
    stored: String,
}

/// The algorithm of the new key; by default that of the key signing now.
#[derive(Serialize, ToSchema)]
struct Rotation {
    algorithm: Option<String>,
}

/// What a rotation did.
#[derive(Serialize, ToSchema)]
struct Rotated {
    kid: String,
    algorithm: String,
    /// The key that signed before.
    retired: String,
    /// Until when the retired key verifies.
    retired_verify_until: String,
}

/// One administrative action.
#[derive(Serialize, ToSchema)]
struct AuditEntryBody {
    id: i64,
    /// RFC 3339, UTC.
    time: String,
    /// `{"kind": "user", "id", "username"}` or `{"kind": "cli", "os_user"}`.
    actor: Value,
    /// `user.create`, `user.update`, `user.delete`, `user.set_password`,
    /// `user.send_password_reset`, `user.unlock`, `user.mfa_reset`, `session.revoke`,
    /// `keys.rotate`.
    action: String,
    /// `{"id", "username"}` of the account acted on, or null.
    target: Option<Value>,
    /// What changed (field names, flags...); never a password.
    details: Value,
    /// The administrator's address; null for a command.
    client_address: Option<String>,
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
struct AuditPage {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<AuditEntryBody>,
}

#[utoipa::path(get, path = "/api/admin/users/", tag = "admin",
    description = "A page of accounts, by id (staff). `search` finds text in the username, email and names without regard to case; `is_active` filters on the flag.",
    security(("bearer" = [])),
    params(
        ("search" = Option<String>, Query, description = "Text to find"),
        ("is_active" = Option<bool>, Query, description = "Only active (true) or inactive (false) accounts"),
        ("page" = Option<String>, Query, description = "The page number, from 1, or `last`"),
        ("page_size" = Option<i64>, Query, description = "Accounts per page: 50 by default, at most 100"),
    ),
    responses(
        (status = 200, description = "The page", body = UserPage),
        (status = 400, description = "`is_active` is not a boolean", body = BadRequest),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not staff (`permission_denied`), or no second factor with ADMIN_REQUIRES_MFA (`mfa_required`)", body = ErrorDetail),
        (status = 404, description = "No such page: {\"detail\": \"Invalid page.\"}", body = ErrorDetail),
    ))]
fn list_users() {}

#[utoipa::path(post, path = "/api/admin/users/", tag = "admin",
    description = "Create an account (staff; superusers for a staff or superuser account), by registration's rule: identifiers in their normal forms and free across username, email and phone, the password policy. The address counts as confirmed. Emits `user.created`; recorded in the audit log.",
    security(("bearer" = [])),
    request_body = NewAccount,
    responses(
        (status = 201, description = "The account", body = AdminUser),
        (status = 400, description = "Missing, invalid or taken fields, or a weak password: every problem, a list of messages per field", body = BadRequest),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not staff, or a staff member making a staff member or a superuser (`permission_denied`); no second factor with ADMIN_REQUIRES_MFA (`mfa_required`)", body = ErrorDetail),
    ))]
fn create_user() {}

#[utoipa::path(get, path = "/api/admin/users/{id}/", tag = "admin",
    description = "One account (staff).",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account", body = AdminUser),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such account", body = ErrorDetail),
    ))]
fn get_user() {}

#[utoipa::path(patch, path = "/api/admin/users/{id}/", tag = "admin",
    description = "Change an account's fields and flags (staff, on ordinary accounts; superusers on any, and only they change `is_staff` and `is_superuser`). Deactivating ends the user's sessions and their tokens are refused; an administrator cannot deactivate themself or take away their own flags. Recorded in the audit log.",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The account's id")),
    request_body = AccountChange,
    responses(
        (status = 200, description = "The changed account", body = AdminUser),
        (status = 400, description = "Invalid or taken fields, or a change of one's own account that would lock one out", body = BadRequest),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such account", body = ErrorDetail),
    ))]
fn update_user() {}

#[utoipa::path(delete, path = "/api/admin/users/{id}/", tag = "admin",
    description = "Delete an account: its sessions go with it and its tokens are refused. An administrator cannot delete themself (400, code `own_account`). Emits `user.deleted`; recorded in the audit log.",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "One's own account", body = ErrorDetail),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such account", body = ErrorDetail),
    ))]
fn delete_user() {}

#[utoipa::path(post, path = "/api/admin/users/{id}/set_password/", tag = "admin",
    description = "Set the account's password; it must pass the password policy. Every session of the user ends. Recorded in the audit log (without the password).",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The account's id")),
    request_body = NewPassword,
    responses(
        (status = 200, description = "Set: {\"detail\": \"New password has been saved.\"}", body = ErrorDetail),
        (status = 400, description = "Missing or weak password", body = BadRequest),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such account", body = ErrorDetail),
    ))]
fn set_password() {}

#[utoipa::path(post, path = "/api/admin/users/{id}/send_password_reset/", tag = "admin",
    description = "Mail the user a password reset link (needs SMTP_URL and PASSWORD_RESET_URL). Recorded in the audit log.",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = 204, description = "The mail is queued"),
        (status = 400, description = "Mail is not configured (`not_configured`) or the account has no address (`no_email`)", body = ErrorDetail),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such account", body = ErrorDetail),
    ))]
fn send_password_reset() {}

#[utoipa::path(post, path = "/api/admin/users/{id}/unlock/", tag = "admin",
    description = "Lift the account's login lockout and forget its failed logins. Recorded in the audit log.",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = 200, description = "Unlocked", body = Unlocked),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such account", body = ErrorDetail),
    ))]
fn unlock() {}

/// How many second factors an MFA reset removed.
#[derive(Serialize, ToSchema)]
struct MfaReset {
    factors_removed: u64,
}

#[utoipa::path(post, path = "/api/admin/users/{id}/mfa/reset/", tag = "admin",
    description = "Remove every second factor of the account (TOTP, passkeys), its recovery codes and pending second steps, and end all its sessions: the answer to a lost phone. The user then signs in with the password alone (and must enrol again if MFA_REQUIRED covers them). Recorded in the audit log.",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = 200, description = "Reset", body = MfaReset),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such account", body = ErrorDetail),
    ))]
fn reset_mfa() {}

#[utoipa::path(get, path = "/api/admin/users/{id}/sessions/", tag = "admin",
    description = "The account's live sessions, most recently used first.",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The sessions", body = Vec<AdminSession>),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such account", body = ErrorDetail),
    ))]
fn sessions() {}

#[utoipa::path(delete, path = "/api/admin/users/{id}/sessions/", tag = "admin",
    description = "Revoke every session of the account (with ACCESS_TOKEN_REVOCATION, their access tokens stop working too). Recorded in the audit log.",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such account", body = ErrorDetail),
    ))]
fn revoke_sessions() {}

#[utoipa::path(delete, path = "/api/admin/users/{id}/sessions/{sid}/", tag = "admin",
    description = "Revoke one session of the account. Recorded in the audit log.",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The account's id"),
        ("sid" = String, Path, description = "The session's id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such account, or no such live session of it", body = ErrorDetail),
    ))]
fn revoke_session() {}

#[utoipa::path(get, path = "/api/admin/users/{id}/events/", tag = "admin",
    description = "A page of the account's login attempts and password resets, newest first.",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The account's id"),
        ("page" = Option<String>, Query, description = "The page number, from 1, or `last`"),
        ("page_size" = Option<i64>, Query, description = "Events per page: 50 by default, at most 100"),
    ),
    responses(
        (status = 200, description = "The page", body = EventPage),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such account, or no such page", body = ErrorDetail),
    ))]
fn events() {}

#[utoipa::path(get, path = "/api/admin/keys/", tag = "admin",
    description = "The signing keys, the active one first (superusers). Key material is never shown.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys", body = Vec<SigningKey>),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not a superuser", body = ErrorDetail),
    ))]
fn keys() {}

#[utoipa::path(post, path = "/api/admin/keys/rotate/", tag = "admin",
    description = "Make a new active signing key, stored encrypted with KEYS_ENCRYPTION_KEY (superusers). The previous key verifies until every token it signed has expired; this instance signs with the new key at once, the others within KEYS_RELOAD_INTERVAL. Recorded in the audit log.",
    security(("bearer" = [])),
    request_body = Rotation,
    responses(
        (status = 201, description = "Rotated", body = Rotated),
        (status = 400, description = "An unknown algorithm, or no KEYS_ENCRYPTION_KEY (`not_configured`)", body = BadRequest),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not a superuser", body = ErrorDetail),
        (status = 409, description = "Another rotation was committed at the same time (`conflict`)", body = ErrorDetail),
    ))]
fn rotate_keys() {}

#[utoipa::path(get, path = "/api/admin/audit/", tag = "admin",
    description = "A page of the audit log, newest first (staff): every administrative action, through the API or the command line.",
    security(("bearer" = [])),
    params(
        ("actor" = Option<String>, Query, description = "An administrator's account id, or `cli` for the commands"),
        ("target" = Option<i64>, Query, description = "The id of the account acted on"),
        ("page" = Option<String>, Query, description = "The page number, from 1, or `last`"),
        ("page_size" = Option<i64>, Query, description = "Entries per page: 50 by default, at most 100"),
    ),
    responses(
        (status = 200, description = "The page", body = AuditPage),
        (status = 400, description = "`actor` or `target` is not a number", body = BadRequest),
        (status = 401, description = "No, malformed or invalid credentials", body = ErrorDetail),
        (status = 403, description = "Not allowed", body = ErrorDetail),
        (status = 404, description = "No such page", body = ErrorDetail),
    ))]
fn audit() {}

#[derive(OpenApi)]
#[openapi(paths(
    list_users,
    create_user,
    get_user,
    update_user,
    delete_user,
    set_password,
    send_password_reset,
    unlock,
    reset_mfa,
    sessions,
    revoke_sessions,
    revoke_session,
    events,
    keys,
    rotate_keys,
    audit
))]
pub(super) struct Paths;
