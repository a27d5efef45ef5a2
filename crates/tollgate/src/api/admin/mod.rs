//! The admin API under `/api/admin/`: accounts, their sessions and login history, the signing
//! keys and the audit log, for staff members and superusers. Handlers only: the rules, the
//! permissions included, are in [`crate::service::admin`].
//!
//! Every handler takes an [`Administrator`]: a request without valid credentials is answered
//! 401 as every protected endpoint answers it, one from an account that is not staff 403
//! `permission_denied`, and with ADMIN_REQUIRES_MFA one without a second factor 403
//! `mfa_required`. Lists are paginated as Django REST framework paginates them.

mod account;
mod activity;
mod audit;
mod keys;
mod page;
mod users;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;

use super::{endpoint, Endpoint};
use crate::auth::AuthenticatedUser;
use crate::client::ClientAddr;
use crate::error::ApiError;
use crate::service::admin::{self, Actor};
use crate::state::AppState;

/// Where the accounts are listed and created.
pub(crate) const USERS_PATH: &str = "/api/admin/users/";
/// One account.
pub(crate) const USER_PATH: &str = "/api/admin/users/{id}/";
/// Setting an account's password.
pub(crate) const SET_PASSWORD_PATH: &str = "/api/admin/users/{id}/set_password/";
/// Mailing an account a password reset link.
pub(crate) const SEND_PASSWORD_RESET_PATH: &str = "/api/admin/users/{id}/send_password_reset/";
/// Lifting an account's lockout.
pub(crate) const UNLOCK_PATH: &str = "/api/admin/users/{id}/unlock/";
/// Removing an account's second factors.
pub(crate) const MFA_RESET_PATH: &str = "/api/admin/users/{id}/mfa/reset/";
/// An account's sessions.
pub(crate) const SESSIONS_PATH: &str = "/api/admin/users/{id}/sessions/";
/// One session of an account.
pub(crate) const SESSION_PATH: &str = "/api/admin/users/{id}/sessions/{sid}/";
/// An account's login history.
pub(crate) const EVENTS_PATH: &str = "/api/admin/users/{id}/events/";
/// The signing keys.
pub(crate) const KEYS_PATH: &str = "/api/admin/keys/";
/// Rotating the signing key.
pub(crate) const KEYS_ROTATE_PATH: &str = "/api/admin/keys/rotate/";
/// The audit log.
pub(crate) const AUDIT_PATH: &str = "/api/admin/audit/";

/// The admin API's endpoints.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(USERS_PATH, Method::GET, users::list),
        endpoint(USERS_PATH, Method::POST, users::create),
        endpoint(USER_PATH, Method::GET, users::get),
        endpoint(USER_PATH, Method::PATCH, users::update),
        endpoint(USER_PATH, Method::DELETE, users::delete),
        endpoint(SET_PASSWORD_PATH, Method::POST, account::set_password),
        endpoint(
            SEND_PASSWORD_RESET_PATH,
            Method::POST,
            account::send_password_reset,
        ),
        endpoint(UNLOCK_PATH, Method::POST, account::unlock),
        endpoint(MFA_RESET_PATH, Method::POST, account::reset_mfa),
        endpoint(SESSIONS_PATH, Method::GET, activity::sessions),
        endpoint(SESSIONS_PATH, Method::DELETE, activity::revoke_all),
        endpoint(SESSION_PATH, Method::DELETE, activity::revoke),
        endpoint(EVENTS_PATH, Method::GET, activity::events),
        endpoint(KEYS_PATH, Method::GET, keys::list),
        endpoint(KEYS_ROTATE_PATH, Method::POST, keys::rotate),
        endpoint(AUDIT_PATH, Method::GET, audit::list),
    ]
}

/// The administrator a request comes from: authenticated as any protected endpoint
/// authenticates (401 otherwise), read from the database, and allowed by
/// [`admin::authorize`] (403 otherwise).
pub(crate) struct Administrator(pub(crate) Actor);

impl FromRequestParts<AppState> for Administrator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = AuthenticatedUser::from_request_parts(parts, state).await?;
        // A stateless token's flags are its claims; permissions are read from the account.
        let auth = auth.stored(state).await?;
        let client = ClientAddr::of(parts, state);
        let actor = admin::authorize(&state.settings, &auth.user, &auth.claims, client.0)?;
        Ok(Administrator(actor))
    }
}

/// The account id of a path; a path whose id is not a number names no account (404).
fn user_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}
