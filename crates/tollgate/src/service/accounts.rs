//! Account operations: changing a password, and reading the user fields that tokens and
//! bodies are made of.

use serde_json::{json, Map, Value};
use tollgate_core::password::{PasswordPolicy, UserAttribute};
use tollgate_core::{unix_now, Settings};
use tollgate_store::{Store, User, UserField};

use super::ServiceError;
use crate::state::{AppState, PasswordPool};
use crate::user_cache::UserCache;

/// What the account operations act on: the server's state, or what a command builds (which
/// needs no signing key, since nothing is minted).
pub(crate) struct Accounts<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) store: &'a Store,
    pub(crate) passwords: &'a PasswordPool,
    pub(crate) policy: &'a PasswordPolicy,
    /// USER_ID_FIELD: how tokens name the user.
    pub(crate) user_id_field: UserField,
    /// The server's cache of users, cleared after a change; a command has none.
    pub(crate) user_cache: Option<&'a UserCache>,
}

impl<'a> Accounts<'a> {
    /// The account operations of a running server.
    pub(crate) fn of(state: &'a AppState) -> Accounts<'a> {
        Accounts {
            settings: &state.settings,
            store: &state.store,
            passwords: &state.passwords,
            policy: &state.policy,
            user_id_field: state.user_id_field,
            user_cache: Some(&state.user_cache),
        }
    }
}

/// Who changes a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangedBy {
    /// The user, who had to give the current password (checked behind the login's throttle
    /// and lockout before this): whether it matched.
    User { old_password_matched: bool },
    /// An administrator, on the command line: no current password is asked.
    Administrator,
}

/// A password changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PasswordChanged {
    /// How many refresh and sliding tokens of the user were blacklisted.
    pub(crate) blacklisted: u64,
}

/// Sets `user`'s password to `new_password`, once it passes the password policy (Django's
/// validators, with the user's own fields for the similarity rule) and, for a change by the
/// user, once the current password matched. Every refresh and sliding token issued to the user
/// so far is blacklisted and their sessions end (in the Redis denylist too when the store has
/// one); with ACCESS_TOKEN_REVOCATION their access tokens are revoked, on every instance, and
/// the answer waits for the next second so that a login with the new password gets a token
/// that is not.
pub(crate) async fn change_password(
    accounts: &Accounts<'_>,
    user: &User,
    new_password: String,
    by: ChangedBy,
) -> Result<PasswordChanged, ServiceError> {
    let old_password_wrong = by
        == ChangedBy::User {
            old_password_matched: false,
        };
    let problems = accounts
        .policy
        .check(&new_password, &password_attributes(user));
    if old_password_wrong || !problems.is_empty() {
        return Err(ServiceError::PasswordRefused {
            old_password_wrong,
            problems,
        });
    }
    let hash = accounts.passwords.hash(new_password).await;
    let blacklisted = accounts
        .store
        .change_password(user.id, &hash, unix_now())
        .await?
        .ok_or(ServiceError::UserNotFound)?;
    if let Some(cache) = accounts.user_cache {
        cache.clear();
    }
    let user_id = user.field(accounts.user_id_field);
    crate::state::revoke_earlier_tokens(accounts.store, accounts.settings, &user_id).await?;
    tracing::info!(user_id = user.id, revoked = blacklisted, "password changed");
    Ok(PasswordChanged { blacklisted })
}

/// What the similarity rule compares a password with, in Django's order.
fn password_attributes(user: &User) -> [UserAttribute<'_>; 4] {
    [
        ("username", user.username.as_str()),
        ("first name", user.first_name.as_str()),
        ("last name", user.last_name.as_str()),
        ("email address", user.email.as_str()),
    ]
    .map(|(verbose_name, value)| UserAttribute {
        verbose_name,
        value,
    })
}

/// One user field's value as a token claim: a built-in field or a profile field (null when
/// the user has none).
pub(crate) fn user_value(user: &User, field: &str) -> Value {
    match field {
        "id" => json!(user.id),
        "username" => json!(user.username),
        "email" => json!(user.email),
        "phone" => json!(user.phone),
        "first_name" => json!(user.first_name),
        "last_name" => json!(user.last_name),
        "is_staff" => json!(user.is_staff),
        "is_superuser" => json!(user.is_superuser),
        _ => profile_of(user).remove(field).unwrap_or(Value::Null),
    }
}

/// The user's profile fields (USER_PROFILE_FIELDS), as stored.
pub(crate) fn profile_of(user: &User) -> Map<String, Value> {
    match serde_json::from_str(&user.profile) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}
