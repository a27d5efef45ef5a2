//! Checking a password, as the obtain endpoints, HTTP Basic and a password change do: the
//! failed-login throttle, the lockout, the password check (and a rehash to the current
//! parameters, unless CHECK_REVOKE_TOKEN ties tokens to the stored hash), and the record of
//! each attempt on an account.

use std::time::Duration;

use serde_json::{json, Value};
use tollgate_core::identity::normalize_username;
use tollgate_core::password::PasswordCheck;
use tollgate_core::settings::EmailVerification;
use tollgate_core::unix_now;
use tollgate_store::{LockoutAdmission, LockoutRule, LoginOutcome, User, UserField};

use super::mfa::{LoginKind, AMR_PASSWORD};
use super::{Context, ServiceError};
use crate::metrics::LoginRefusal;
use crate::state::AppState;
use crate::throttle::{
    account_subject, identifier_subject, Attempt, Checking, Refusal, MAX_QUEUE_WAIT,
};
use crate::webhooks::{user_data, Event};

/// Where a password arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    /// The obtain endpoints: a login, which updates the last login and is recorded.
    Login,
    /// HTTP Basic on a protected endpoint (AUTHENTICATION_CLASSES): checked on every request,
    /// so only failures are recorded, and the last login is left alone (as Django does).
    Basic,
}

/// Who presents a password: the client's address (what the throttle counts) and user agent
/// (what the record of the attempt keeps).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client<'a> {
    pub(crate) address: std::net::IpAddr,
    pub(crate) user_agent: Option<&'a str>,
}

/// Checks an identifier and password behind the throttle and the lockout: an address or
/// identifier out of attempts gets 429, a locked identifier 403, before any password is checked;
/// an account out of attempts or locked through its other identifiers is answered as a wrong
/// password, so that neither tells which identifiers belong to one account or exist at all.
/// Every failure gives the same answer, [`ServiceError::NoActiveAccount`], and an unknown user costs
/// the same hash time as a wrong password.
///
/// The attempt takes its place under each limit before the password is checked (see
/// [`crate::throttle`] and [`tollgate_store::Store::reserve_login_attempt`]), so requests sent
/// together get no more checks than the limits allow.
pub(crate) async fn check_password(
    state: &AppState,
    client: Client<'_>,
    identifier: &str,
    password: String,
    channel: Channel,
) -> Result<User, ServiceError> {
    let user = find_account(state, identifier).await?;
    let attempt = Attempt {
        address: client.address,
        identifier: Some(identifier),
        account: user.as_ref().map(|user| user.id),
    };
    let admitted = match state.login_throttle.reserve(attempt).await {
        Ok(admitted) => admitted,
        Err(Refusal::Throttled(wait)) => {
            state.metrics.login_refused(LoginRefusal::Throttled);
            return Err(ServiceError::Throttled(wait));
        }
        Err(Refusal::AccountExhausted(_)) => {
            state.metrics.login_refused(LoginRefusal::Throttled);
            tracing::info!("login refused: the account is out of attempts");
            return Err(refuse_as_wrong_password(state, password).await);
        }
    };
    let attempt = Credentials {
        client,
        identifier,
        user,
        channel,
    };
    let outcome = check_credentials(state, attempt, password).await;
    if outcome.is_ok() {
        state.login_throttle.succeeded(admitted).await;
    }
    outcome
}

/// Checks the password of an account the client already holds a token for (the old password of
/// a password change): behind the same throttle and lockout as a login, so that a stolen token
/// is no free password oracle. `Ok(true)` when it matches.
pub(crate) async fn check_own_password(
    state: &AppState,
    client: Client<'_>,
    user: &User,
    password: String,
) -> Result<bool, ServiceError> {
    let stored = user.password.clone();
    let check = async move {
        Ok(state
            .passwords
            .verify(password, Some(stored))
            .await
            .matched())
    };
    check_own_secret(state, client, user, LoginOutcome::WrongPassword, check).await
}

/// Checks a secret of `user` other than a login's password (their current password, a
/// second-factor code) behind the login throttle and lockout: a failure counts toward both and
/// is recorded as `failure`, a success clears the account's failures. `check` runs only once
/// the attempt is admitted.
pub(crate) async fn check_own_secret(
    state: &AppState,
    client: Client<'_>,
    user: &User,
    failure: LoginOutcome,
    check: impl std::future::Future<Output = Result<bool, ServiceError>>,
) -> Result<bool, ServiceError> {
    let attempt = Attempt {
        address: client.address,
        identifier: None,
        account: Some(user.id),
    };
    let admitted = match state.login_throttle.reserve(attempt).await {
        Ok(admitted) => admitted,
        Err(Refusal::Throttled(wait) | Refusal::AccountExhausted(wait)) => {
            state.metrics.login_refused(LoginRefusal::Throttled);
            return Err(ServiceError::Throttled(wait));
        }
    };
    let now = unix_now();
    let account_key = account_subject(user.id);
    let mut checking = Vec::new();
    if let Some(rule) = lockout_rule(state) {
        match reserve_lockout(state, &account_key, rule, now).await? {
            (LockoutAdmission::Locked { until }, _) => {
                state.metrics.login_refused(LoginRefusal::Locked);
                return Err(ServiceError::AccountLocked(lock_wait(until, now)));
            }
            (LockoutAdmission::Admitted { .. }, running) => checking.extend(running),
        }
    }
    let matched = check.await?;
    let addr = client.address.to_string();
    if matched {
        state.login_throttle.succeeded(admitted).await;
        state
            .store
            .clear_login_failures(&[account_key], now)
            .await?;
    } else {
        state
            .store
            .record_login(user.id, failure, &addr, client.user_agent, now)
            .await?;
        tracing::info!(user_id = user.id, reason = ?failure, "secret check failed");
    }
    drop(checking);
    Ok(matched)
}

/// Takes the attempt's place under the lockout of `key`. A lock set by a check still running in
/// this process (which may yet match and lift it) is waited out, as the throttle waits for the
/// checks in flight. An admitted attempt comes with its mark as running, marked before the lock
/// could be set, for the caller to hold until its check ends.
async fn reserve_lockout(
    state: &AppState,
    key: &str,
    rule: LockoutRule,
    now: i64,
) -> Result<(LockoutAdmission, Option<Checking>), ServiceError> {
    let deadline = std::time::Instant::now() + MAX_QUEUE_WAIT;
    loop {
        let running = state.login_throttle.checking(key);
        let admission = state.store.reserve_login_attempt(key, rule, now).await?;
        if let LockoutAdmission::Admitted { .. } = admission {
            return Ok((admission, Some(running)));
        }
        drop(running);
        if !state.login_throttle.being_checked(key) || std::time::Instant::now() >= deadline {
            return Ok((admission, None));
        }
        state.login_throttle.one_check_ends().await;
    }
}

/// A refusal that must look like a wrong password: it costs a password check's time and gives
/// its answer.
async fn refuse_as_wrong_password(state: &AppState, password: String) -> ServiceError {
    state.passwords.verify(password, None).await;
    state.metrics.login(false);
    ServiceError::NoActiveAccount
}

/// The account an identifier names, looked up in LOGIN_FIELDS in order; a username in Django's
/// normal form (NFKC), as registration stores it, then as sent, for a row stored before
/// usernames were normalised (rewriting those could merge two accounts). Either way the attempt
/// is counted under one folded identifier and the account, so the second lookup buys nothing.
async fn find_account(state: &AppState, identifier: &str) -> Result<Option<User>, ServiceError> {
    for field in &state.login_fields {
        let found = match field {
            UserField::Username => find_by_username(&state.store, identifier).await?,
            _ => state.store.find_user(*field, identifier).await?,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// The account a username names: in Django's normal form (NFKC), as registration stores it,
/// then as written, for a row stored before usernames were normalised.
pub(crate) async fn find_by_username(
    store: &tollgate_store::Store,
    name: &str,
) -> Result<Option<User>, ServiceError> {
    let normal = normalize_username(name);
    if let Some(user) = store.find_user(UserField::Username, &normal).await? {
        return Ok(Some(user));
    }
    if normal != name {
        return Ok(store.find_user(UserField::Username, name).await?);
    }
    Ok(None)
}

/// One login attempt, already admitted by the throttle.
struct Credentials<'a> {
    client: Client<'a>,
    identifier: &'a str,
    user: Option<User>,
    channel: Channel,
}

async fn check_credentials(
    state: &AppState,
    attempt: Credentials<'_>,
    password: String,
) -> Result<User, ServiceError> {
    let Credentials {
        client,
        identifier,
        user,
        channel,
    } = attempt;
    let username_field = state.settings.username_field.as_str();
    let now = unix_now();
    let record = |user_id: i64, outcome: LoginOutcome| {
        let addr = client.address.to_string();
        async move {
            state
                .store
                .record_login(user_id, outcome, &addr, client.user_agent, now)
                .await
        }
    };
    // The identifier's lock first: it shows (403), whether or not the identifier names an
    // account. The account's, reached through its other identifiers, does not.
    let mut lock_keys = Vec::new();
    // Held until the check has ended and its outcome is written (see `reserve_lockout`).
    let mut checking = Vec::new();
    let mut locks = false;
    if let Some(rule) = lockout_rule(state) {
        let identifier_key = identifier_subject(identifier);
        match reserve_lockout(state, &identifier_key, rule, now).await? {
            (LockoutAdmission::Locked { until }, _) => {
                if let Some(user) = &user {
                    record(user.id, LoginOutcome::Locked).await?;
                }
                let data = attempt_data(user.as_ref(), identifier, client, "locked");
                emit(state, Event::UserLoginFailed, data).await;
                state.metrics.login(false);
                state.metrics.login_refused(LoginRefusal::Locked);
                tracing::info!(username_field, "login refused: locked");
                return Err(ServiceError::AccountLocked(lock_wait(until, now)));
            }
            (LockoutAdmission::Admitted { locks: now_locked }, running) => {
                locks |= now_locked;
                checking.extend(running);
            }
        }
        lock_keys.push(identifier_key);
        if let Some(user) = &user {
            let account_key = account_subject(user.id);
            match reserve_lockout(state, &account_key, rule, now).await? {
                (LockoutAdmission::Locked { .. }, _) => {
                    record(user.id, LoginOutcome::Locked).await?;
                    state.metrics.login_refused(LoginRefusal::Locked);
                    let data = attempt_data(Some(user), identifier, client, "locked");
                    emit(state, Event::UserLoginFailed, data).await;
                    tracing::info!(username_field, "login refused: account locked");
                    return Err(refuse_as_wrong_password(state, password).await);
                }
                (LockoutAdmission::Admitted { locks: now_locked }, running) => {
                    locks |= now_locked;
                    checking.extend(running);
                }
            }
            lock_keys.push(account_key);
        }
    }
    let stored = user.as_ref().map(|u| u.password.clone());
    let check = state.passwords.verify(password.clone(), stored).await;
    let mut user = match user {
        Some(user) if check.matched() && user.is_active => user,
        user => {
            let reason = match &user {
                Some(_) if check.matched() => "inactive",
                Some(_) => "wrong_password",
                None => "no_account",
            };
            if let Some(user) = &user {
                let outcome = if check.matched() {
                    state.metrics.login_refused(LoginRefusal::Inactive);
                    LoginOutcome::Inactive
                } else {
                    LoginOutcome::WrongPassword
                };
                record(user.id, outcome).await?;
            }
            let data = attempt_data(user.as_ref(), identifier, client, reason);
            emit(state, Event::UserLoginFailed, data.clone()).await;
            if locks {
                tracing::warn!(username_field, "login locked after repeated failures");
                emit(state, Event::UserLocked, data).await;
            }
            state.metrics.login(false);
            tracing::info!(username_field, "login failed");
            return Err(ServiceError::NoActiveAccount);
        }
    };
    if !lock_keys.is_empty() {
        state.store.clear_login_failures(&lock_keys, now).await?;
    }
    if check == PasswordCheck::MatchNeedsRehash && !state.settings.check_revoke_token {
        // With CHECK_REVOKE_TOKEN, tokens carry a fingerprint of the stored hash string, as
        // simplejwt's do: a new hash would refuse every token of the user, those Django issued
        // with the same key included. The hash is kept as it is until the password changes.
        let hash = state.passwords.hash(password).await;
        state.store.set_password_hash(user.id, &hash).await?;
        // Tokens minted below carry the new hash's fingerprint; cached copies must not.
        user.password = hash;
        state.user_cache.clear();
    }
    if state.settings.email_verification == EmailVerification::Mandatory
        && user.email_verified_at.is_none()
    {
        // The password was right, so saying so tells nothing to someone who did not know it.
        record(user.id, LoginOutcome::Unverified).await?;
        state.metrics.login(false);
        tracing::info!(username_field, "login refused: email address not confirmed");
        return Err(ServiceError::EmailNotVerified);
    }
    if channel == Channel::Basic && super::mfa::has_second_factor(&state.store, user.id).await? {
        // HTTP Basic carries a password alone: for an account with a second factor it would be
        // a way around it.
        tracing::info!(
            username_field,
            "basic authentication refused: a second factor is due"
        );
        return Err(ServiceError::SecondFactorRequired);
    }
    Ok(user)
}

/// A user signs in: the password (and second factor, if any) was right. Updates the last login
/// (UPDATE_LAST_LOGIN), records the login and sends `user.logged_in`, with how the user signed
/// in (`amr`).
pub(crate) async fn logged_in(
    state: &AppState,
    user: &mut User,
    client: Client<'_>,
    identifier: &str,
    amr: &[&str],
) -> Result<(), ServiceError> {
    let now = unix_now();
    if state.settings.update_last_login {
        state.store.set_last_login(user.id, now).await?;
        user.last_login = Some(now);
    }
    let addr = client.address.to_string();
    state
        .store
        .record_login(
            user.id,
            LoginOutcome::Succeeded,
            &addr,
            client.user_agent,
            now,
        )
        .await?;
    state.metrics.login(true);
    let mut data = attempt_data(Some(user), identifier, client, "");
    if let Some(fields) = data.as_object_mut() {
        fields.remove("reason");
        fields.insert("amr".to_owned(), json!(amr));
    }
    emit(state, Event::UserLoggedIn, data).await;
    Ok(())
}

/// A login with a password: checked behind the throttle and the lockout
/// ([`check_password`]); then, for a user with a second factor (or whom MFA_REQUIRED covers),
/// [`ServiceError::SecondFactorDue`] with the `mfa_token` of the second step, which answers
/// `kind`; else the user, signed in with `pwd`.
pub(crate) async fn log_in(
    state: &AppState,
    client: Client<'_>,
    identifier: &str,
    password: String,
    kind: LoginKind,
) -> Result<User, ServiceError> {
    let mut user = check_password(state, client, identifier, password, Channel::Login).await?;
    super::mfa::second_step(state, &user, kind, client).await?;
    logged_in(state, &mut user, client, identifier, &[AMR_PASSWORD]).await?;
    Ok(user)
}

/// The data of a login event: the user (if the identifier names one), the identifier as
/// given, where the attempt came from, and why it failed.
fn attempt_data(user: Option<&User>, identifier: &str, client: Client<'_>, reason: &str) -> Value {
    json!({
        "user": user.map(user_data),
        "identifier": identifier,
        "ip_address": client.address.to_string(),
        "user_agent": client.user_agent,
        "reason": reason,
    })
}

async fn emit(state: &AppState, event: Event, data: Value) {
    state.outbox.emit(&state.store, event, data).await;
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

/// How long a lock that ends at `until` has left (`None`: until an administrator lifts it).
fn lock_wait(until: i64, now: i64) -> Option<Duration> {
    (until != i64::MAX).then(|| Duration::from_secs(u64::try_from(until - now).unwrap_or(0)))
}

/// Lifts `user`'s lockout and forgets their failed password checks: the lockout counters of
/// the account and of each identifier that names it, the throttle's counts in Redis and, given
/// a server's `throttle`, in this process. Returns whether a lock was in force.
pub(crate) async fn unlock(
    ctx: &Context<'_>,
    user: &User,
    throttle: Option<&crate::throttle::LoginThrottle>,
) -> Result<bool, ServiceError> {
    let keys = lockout_keys(user);
    let lifted = ctx.store.clear_login_failures(&keys, unix_now()).await?;
    let subjects: Vec<&str> = keys.iter().map(String::as_str).collect();
    match throttle {
        Some(throttle) => throttle.forget(&subjects).await,
        None => ctx.store.forget_shared_attempts(&subjects).await,
    }
    tracing::info!(user_id = user.id, locked = lifted > 0, "user unlocked");
    Ok(lifted > 0)
}

/// Every lockout counter that can lock `user` out: the account's own and those of the
/// identifiers that name it, for an administrator to lift.
pub(crate) fn lockout_keys(user: &User) -> Vec<String> {
    let identifiers = [
        Some(user.username.as_str()),
        Some(user.email.as_str()),
        user.phone.as_deref(),
    ];
    std::iter::once(account_subject(user.id))
        .chain(
            identifiers
                .into_iter()
                .flatten()
                .filter(|identifier| !identifier.is_empty())
                .map(identifier_subject),
        )
        .collect()
}
