//! Logging in with a password, as the obtain endpoints do: the failed-login throttle, the
//! lockout, the password check, and the record of each attempt on an account.

use std::time::Duration;

use tollgate_core::password::PasswordCheck;
use tollgate_core::unix_now;
use tollgate_store::{LockoutRule, LoginOutcome, User};

use super::body::Payload;
use crate::client::{ClientAddr, UserAgent};
use crate::error::ApiError;
use crate::state::AppState;

/// Where a password arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    /// The obtain endpoints: a login, which updates the last login and is recorded.
    Login,
    /// HTTP Basic on a protected endpoint (AUTHENTICATION_CLASSES): checked on every request,
    /// so only failures are recorded, and the last login is left alone (as Django does).
    Basic,
}

/// Checks the credentials of an obtain request (the USERNAME_FIELD and `password` fields).
pub(super) async fn log_in(
    state: &AppState,
    client: ClientAddr,
    agent: &UserAgent,
    payload: &Payload,
) -> Result<User, ApiError> {
    let username_field = state.settings.username_field.as_str();
    let [identifier, password] = payload.char_fields([username_field, "password"])?;
    check_password(state, client, agent, &identifier, password, Channel::Login).await
}

/// Checks an identifier and password behind the failed-login throttle and the lockout: an
/// account or address out of failures gets 429, a locked one 403, before any password is
/// checked. Every failure gives the same answer, [`ApiError::NoActiveAccount`], and an unknown
/// user costs the same hash time as a wrong password.
pub(crate) async fn check_password(
    state: &AppState,
    client: ClientAddr,
    agent: &UserAgent,
    identifier: &str,
    password: String,
    channel: Channel,
) -> Result<User, ApiError> {
    let throttle = &state.login_throttle;
    throttle
        .check(Some(identifier), client.0)
        .await
        .map_err(ApiError::Throttled)?;
    let outcome = check_credentials(state, client, agent, identifier, password, channel).await;
    match &outcome {
        Ok(_) => throttle.succeeded(Some(identifier)).await,
        Err(ApiError::NoActiveAccount) => throttle.failed(Some(identifier), client.0).await,
        Err(_) => {}
    }
    outcome
}

async fn check_credentials(
    state: &AppState,
    client: ClientAddr,
    agent: &UserAgent,
    identifier: &str,
    password: String,
    channel: Channel,
) -> Result<User, ApiError> {
    let username_field = state.settings.username_field.as_str();
    let mut user = None;
    for field in &state.login_fields {
        user = state.store.find_user(*field, identifier).await?;
        if user.is_some() {
            break;
        }
    }
    let now = unix_now();
    let record = |user_id: i64, outcome: LoginOutcome| {
        let addr = client.0.to_string();
        async move {
            if channel == Channel::Basic && outcome == LoginOutcome::Succeeded {
                return Ok(());
            }
            state
                .store
                .record_login(user_id, outcome, &addr, agent.0.as_deref(), now)
                .await
        }
    };
    let lockout = lockout_rule(state);
    let lock_key = lockout.map(|_| lockout_key(user.as_ref(), identifier));
    if let Some(key) = &lock_key {
        if let Some(until) = state.store.locked_until(key, now).await? {
            if let Some(user) = &user {
                record(user.id, LoginOutcome::Locked).await?;
            }
            state.metrics.login(false);
            tracing::info!(username_field, "login refused: locked");
            let wait = (until != i64::MAX)
                .then(|| Duration::from_secs(u64::try_from(until - now).unwrap_or(0)));
            return Err(ApiError::AccountLocked(wait));
        }
    }
    let stored = user.as_ref().map(|u| u.password.clone());
    let check = state.passwords.verify(password.clone(), stored).await;
    let mut user = match user {
        Some(user) if check.matched() && user.is_active => user,
        user => {
            if let Some(user) = &user {
                let outcome = if check.matched() {
                    LoginOutcome::Inactive
                } else {
                    LoginOutcome::WrongPassword
                };
                record(user.id, outcome).await?;
            }
            if let (Some(key), Some(rule)) = (&lock_key, lockout) {
                if state
                    .store
                    .record_login_failure(key, rule, now)
                    .await?
                    .is_some()
                {
                    tracing::warn!(username_field, "login locked after repeated failures");
                }
            }
            state.metrics.login(false);
            tracing::info!(username_field, "login failed");
            return Err(ApiError::NoActiveAccount);
        }
    };
    if let Some(key) = lock_key {
        state.store.clear_login_failures(&[key], now).await?;
    }
    if check == PasswordCheck::MatchNeedsRehash {
        let hash = state.passwords.hash(password).await;
        state.store.set_password_hash(user.id, &hash).await?;
        // Tokens minted below carry the new hash's fingerprint; cached copies must not.
        user.password = hash;
        state.user_cache.clear();
    }
    if channel == Channel::Login && state.settings.update_last_login {
        state.store.set_last_login(user.id, now).await?;
        user.last_login = Some(now);
    }
    record(user.id, LoginOutcome::Succeeded).await?;
    if channel == Channel::Login {
        state.metrics.login(true);
    }
    Ok(user)
}

/// LOGIN_LOCKOUT_THRESHOLD and LOGIN_LOCKOUT_DURATION, if lockout is on.
fn lockout_rule(state: &AppState) -> Option<LockoutRule> {
    let settings = &state.settings;
    (settings.login_lockout_threshold > 0).then(|| LockoutRule {
        threshold: settings.login_lockout_threshold,
        duration: (!settings.login_lockout_duration.is_zero())
            .then(|| i64::try_from(settings.login_lockout_duration.as_secs()).unwrap_or(i64::MAX)),
    })
}

/// The lockout counter a login attempt counts against: the account, whichever identifier named
/// it, or the identifier itself when it names no account.
pub(crate) fn lockout_key(user: Option<&User>, identifier: &str) -> String {
    match user {
        Some(user) => format!("user:{}", user.id),
        None => format!("name:{}", identifier.trim().to_lowercase()),
    }
}
