//! Using a token that was issued: refreshing (with rotation, the blacklist, and reuse
//! detection), sliding a sliding token, and verifying.
//!
//! Each follows simplejwt 5.5's serializer step by step; the order of checks decides which
//! refusal a client sees, so it is kept.

use std::sync::Arc;

use tollgate_core::body::Payload;
use tollgate_core::settings::LoginResponse;
use tollgate_core::{unix_now, Claims, Issued, TokenError, TokenType};
use tollgate_store::{RotateOutcome, TokenRecord, User, UserField};

use super::claims_hook::{self, HookEvent};
use super::sessions::revoke_session;
use super::tokens::{issued_record, sign, ORIG_IAT_CLAIM};
use super::{Context, ServiceError};
use crate::auth::{issued_to_holder, password_unchanged};
use crate::state::{AppState, SID_CLAIM};
use crate::webhooks::Event;

/// What a refresh hands out: a new access token, and with ROTATE_REFRESH_TOKENS the refresh
/// token that replaces the one presented.
#[derive(Debug)]
pub(crate) struct Refreshed {
    pub(crate) access: Issued,
    pub(crate) refresh: Option<Issued>,
}

/// What a refresh request gets: simplejwt's answer, or djangorestframework-jwt's.
#[derive(Debug)]
pub(crate) enum RefreshAnswer {
    /// `{"access"}`, with rotation `{"access", "refresh"}`.
    Refreshed(Refreshed),
    /// `{"token"}`: djangorestframework-jwt's refresh of its one token.
    Token(Issued),
}

/// Refreshes what a refresh request presents: the refresh token in `cookie` (the refresh
/// cookie, read when the body has no `refresh` field) or in the body's `refresh` field. With
/// LOGIN_RESPONSE = "token", logins issue djangorestframework-jwt's single token, and its
/// clients refresh by sending it as `token`: a body with `token` and no `refresh` is that
/// refresh (see [`refresh_single`]).
pub(crate) async fn refresh_request(
    state: &AppState,
    payload: &Payload,
    cookie: Option<String>,
) -> Result<RefreshAnswer, ServiceError> {
    let single_token = state.settings.login_response == LoginResponse::Token;
    let raw = match cookie {
        Some(raw) => raw,
        None if single_token && !payload.has("refresh") && payload.has("token") => {
            let [raw] = payload.char_fields(["token"])?;
            return Ok(RefreshAnswer::Token(refresh_single(state, &raw).await?));
        }
        None => {
            let [raw] = payload.char_fields(["refresh"])?;
            raw
        }
    };
    Ok(RefreshAnswer::Refreshed(refresh(state, &raw).await?))
}

/// djangorestframework-jwt's refresh of its one token (LOGIN_RESPONSE = "token"): a
/// still-valid access token gets a new one with a fresh `exp` and the same claims, its
/// `orig_iat` (the login's time) included, while `orig_iat` plus REFRESH_TOKEN_LIFETIME
/// (JWT_REFRESH_EXPIRATION_DELTA's meaning) has not passed. A token without `orig_iat`
/// counts from its `iat`. The token must still pass every check a request with it passes:
/// its user active, its password unchanged, not revoked.
async fn refresh_single(state: &AppState, raw: &str) -> Result<Issued, ServiceError> {
    let now = unix_now();
    let claims = state.codec.decode_as(raw, Some(TokenType::Access), now)?;
    if state.access_revoked(&claims) {
        return Err(TokenError::Blacklisted.into());
    }
    let user = require_active_user(state, &claims).await?;
    let claims = with_hook(state, claims, user.as_deref()).await?;
    let orig_iat = claims
        .timestamp(ORIG_IAT_CLAIM)
        .or_else(|| claims.timestamp("iat"))
        .ok_or_else(|| TokenError::MissingClaim(ORIG_IAT_CLAIM.to_owned()))?;
    let window = i64::try_from(state.settings.refresh_token_lifetime.as_secs()).unwrap_or(i64::MAX);
    let leeway = i64::try_from(state.settings.leeway.as_secs()).unwrap_or(i64::MAX);
    if orig_iat.saturating_add(window) <= now.saturating_sub(leeway) {
        return Err(TokenError::ClaimExpired(ORIG_IAT_CLAIM.to_owned()).into());
    }
    let mut renewed = state.codec.access_claims_from(&claims, now);
    renewed.insert(ORIG_IAT_CLAIM, orig_iat);
    let access = sign(state, renewed)?;
    state.metrics.issued(TokenType::Access);
    state.metrics.refreshed();
    tracing::info!(jti = %access.jti, "single token refreshed");
    Ok(access)
}

/// Refreshes with refresh token `raw`: a new access token and, with rotation, a new refresh
/// token in the same session. With BLACKLIST_AFTER_ROTATION the presented token is spent:
/// of concurrent refreshes of one token only one rotates it, and a token presented again is
/// refused or, with REFRESH_TOKEN_REUSE_DETECTION, handled as a replay (see [`replayed`]).
pub(crate) async fn refresh(state: &AppState, raw: &str) -> Result<Refreshed, ServiceError> {
    let now = unix_now();
    let claiming = state.settings.rotate_refresh_tokens && state.settings.blacklist_after_rotation;
    let (claims, user) = if claiming {
        // A replayed rotated token passes these checks; its rotation then fails, and reuse
        // detection, when on, takes over below.
        checked_for_rotation(state, raw, now).await?
    } else {
        let claims = decode_blacklistable(state, raw, TokenType::Refresh, now).await?;
        let user = require_active_user(state, &claims).await?;
        (claims, user)
    };
    // Asked before the rotation spends the presented token: a hook that refuses leaves it
    // usable. The hook cannot change `jti`, `exp` or `sid`, which the records below read.
    let claims = with_hook(state, claims, user.as_deref()).await?;
    let owner = user.map(|user| user.id);
    let rotated = if state.settings.rotate_refresh_tokens {
        Some(sign(state, state.codec.rotated_claims(&claims, now))?)
    } else {
        None
    };
    if !claiming {
        // With the blacklist, the rotation records the refresh on the session itself.
        touch_session(state, &claims, now, rotated.as_ref().map(|r| r.expires_at)).await?;
    }
    let access = sign(state, state.codec.access_claims_from(&claims, now))?;
    let Some(rotated) = rotated else {
        state.metrics.issued(TokenType::Access);
        state.metrics.refreshed();
        return Ok(Refreshed {
            access,
            refresh: None,
        });
    };
    let owner = match owner {
        Some(id) => Some(id),
        None => user_pk(state, &claims).await?,
    };
    let new_record = issued_record(&rotated, owner);
    if state.settings.blacklist_after_rotation {
        // The blacklist insert is the lock: of concurrent refreshes of one token, only the one
        // whose insert lands may rotate it; the old and new records are one transaction.
        let old_record = token_record(state, &claims, owner);
        match state.store.rotate(&old_record, &new_record, now).await? {
            RotateOutcome::Rotated => {}
            RotateOutcome::AlreadyBlacklisted if detects_reuse(state) || retries(state) => {
                // Rotated already: by a concurrent refresh of the same token, or by one whose
                // answer was lost. Within the grace period, answered with what it got.
                return replayed(state, &claims, now).await;
            }
            RotateOutcome::AlreadyBlacklisted | RotateOutcome::SessionRevoked => {
                return Err(TokenError::Blacklisted.into());
            }
        }
        state.metrics.blacklisted();
    } else {
        state.store.record_outstanding(&new_record).await?;
    }
    // Counted once handed out: a rotation that lost the race issued nothing.
    state.metrics.issued(TokenType::Access);
    state.metrics.issued(TokenType::Refresh);
    state.metrics.refreshed();
    tracing::info!(jti = %rotated.jti, "refresh token rotated");
    Ok(Refreshed {
        access,
        refresh: Some(rotated),
    })
}

/// Whether REFRESH_TOKEN_REUSE_DETECTION applies: it needs rotation with the blacklist.
fn detects_reuse(state: &AppState) -> bool {
    let s = &state.settings;
    s.refresh_token_reuse_detection && s.rotate_refresh_tokens && s.blacklist_after_rotation
}

/// Whether REFRESH_TOKEN_RETRY_GRACE applies.
fn retries(state: &AppState) -> bool {
    !state.settings.refresh_token_retry_grace.is_zero()
}

/// How long after its rotation a refresh token presented again is answered as a retry: the
/// retry grace, and with reuse detection at least the reuse grace.
fn retry_grace(state: &AppState) -> i64 {
    let s = &state.settings;
    let mut grace = s.refresh_token_retry_grace;
    if detects_reuse(state) {
        grace = grace.max(s.refresh_token_reuse_grace);
    }
    i64::try_from(grace.as_secs()).unwrap_or(i64::MAX)
}

/// A refresh token presented again after it was rotated (REFRESH_TOKEN_RETRY_GRACE,
/// REFRESH_TOKEN_REUSE_DETECTION).
///
/// Within the grace period of its rotation it is an honest retry (a lost answer, two tabs
/// refreshing at once): the answer is the family's current refresh token, signed again from
/// what the store keeps of it (the rotated token's payload differs from the replayed one only
/// in `jti`, `iat` and `exp`), and a fresh access token. Later, it is refused as blacklisted;
/// with reuse detection it was stolen or leaked, and the whole family (its session, or without
/// one its newest token) is revoked too. A token that was logged out or revoked rather than
/// rotated is refused and changes nothing.
async fn replayed(state: &AppState, claims: &Claims, now: i64) -> Result<Refreshed, ServiceError> {
    let blacklisted = || ServiceError::Token(TokenError::Blacklisted);
    let Some(jti) = state.codec.jti(claims) else {
        return Err(blacklisted());
    };
    let Some(rotation) = state.store.rotation(jti).await? else {
        return Err(blacklisted());
    };
    if rotation.current_blacklisted {
        // The family already ended (logged out, revoked, or a reuse detected before).
        return Err(blacklisted());
    }
    let within_grace = now.saturating_sub(rotation.rotated_at) < retry_grace(state);
    if let (true, Some(issued_at)) = (within_grace, rotation.current_created_at) {
        if let Some(sid) = &rotation.session_id {
            if !state.store.touch_session(sid, now, None).await? {
                return Err(blacklisted());
            }
        }
        let mut current = claims.clone();
        if let Some(jti_claim) = &state.settings.jti_claim {
            current.insert(jti_claim.clone(), rotation.current_jti.as_str());
        }
        current.insert("iat", issued_at);
        current.insert("exp", rotation.current_expires_at);
        let refresh = sign(state, current)?;
        let access = sign(state, state.codec.access_claims_from(&refresh.claims, now))?;
        state.metrics.issued(TokenType::Access);
        state.metrics.refreshed();
        tracing::info!(jti, current = %rotation.current_jti, "rotated refresh token presented again within the grace period");
        return Ok(Refreshed {
            access,
            refresh: Some(refresh),
        });
    }
    if !detects_reuse(state) {
        return Err(blacklisted());
    }
    match &rotation.session_id {
        Some(sid) => {
            revoke_session(&Context::of(state), None, sid).await?;
        }
        None => {
            let record = TokenRecord {
                jti: &rotation.current_jti,
                user_id: user_pk(state, claims).await?,
                created_at: rotation.current_created_at,
                expires_at: rotation.current_expires_at,
                session_id: None,
            };
            state.store.blacklist(&record, now).await?;
        }
    }
    state.metrics.blacklisted();
    tracing::warn!(
        jti,
        user_id = state.codec.user_id(claims).unwrap_or_default(),
        session_id = rotation.session_id.as_deref().unwrap_or_default(),
        "refresh token reuse detected: its family is revoked"
    );
    let data = serde_json::json!({
        "user_id": user_pk(state, claims).await.ok().flatten(),
        "session_id": rotation.session_id,
        "jti": jti,
    });
    state
        .outbox
        .emit(&state.store, Event::TokenReuseDetected, data)
        .await;
    Err(blacklisted())
}

/// Records a refresh of the token's session; a token whose session was revoked is refused as
/// blacklisted. Tokens without a stored session pass.
async fn touch_session(
    state: &AppState,
    claims: &Claims,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(), ServiceError> {
    if let Some(sid) = claims.str(SID_CLAIM) {
        if !state.store.touch_session(sid, now, expires_at).await? {
            return Err(TokenError::Blacklisted.into());
        }
    }
    Ok(())
}

/// Checks refresh token `raw` as a refresh checks it, without refreshing: signature, expiry
/// and type, the blacklist, its user (active, password unchanged) and its session (not
/// revoked; its last use is recorded). For a session whose refresh token stays with the
/// server's own pages (the web console's cookie) and is checked on each of their requests.
/// Returns the claims and the user, when the token names one.
pub(crate) async fn check_live(
    state: &AppState,
    raw: &str,
) -> Result<(Claims, Option<Arc<User>>), ServiceError> {
    let now = unix_now();
    let claims = decode_blacklistable(state, raw, TokenType::Refresh, now).await?;
    let user = require_active_user(state, &claims).await?;
    touch_session(state, &claims, now, None).await?;
    Ok((claims, user))
}

/// The checks of a refresh with rotation and blacklisting, with one read fewer: the blacklist
/// is not read up front, since the rotation claims the token atomically (and fails if it was
/// blacklisted). It is read only when the refresh is refused for another reason, so that a
/// blacklisted token gets simplejwt's answer, "Token is blacklisted", whatever else is wrong
/// with it. Returns the claims and the user, when the token names one.
async fn checked_for_rotation(
    state: &AppState,
    raw: &str,
    now: i64,
) -> Result<(Claims, Option<Arc<User>>), ServiceError> {
    let claims = state.codec.decode(raw, now)?;
    let user = match state
        .codec
        .check_type(&claims, Some(TokenType::Refresh), now)
    {
        Ok(()) => active_user(state, &claims).await,
        Err(err) => Err(err.into()),
    };
    let blacklisted = || async {
        match state.codec.jti(&claims) {
            Some(jti) => state.store.is_blacklisted(jti).await,
            None => Ok(false),
        }
    };
    let user = match user {
        Ok(user) => user,
        Err(_) if blacklisted().await? => return Err(TokenError::Blacklisted.into()),
        Err(err) => return Err(err),
    };
    if let Some(user) = &user {
        if !password_unchanged(state, &claims, user) {
            if blacklisted().await? {
                return Err(TokenError::Blacklisted.into());
            }
            refuse_for_changed_password(state, &claims, user).await?;
        }
    }
    Ok((claims, user))
}

/// What a valid token's verification answers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verified {
    /// simplejwt's `{}`.
    Empty,
    /// djangorestframework-jwt's `{"token"}`, the token echoed (LOGIN_RESPONSE = "token").
    Token(String),
}

/// Verifies token `raw` and says how to answer: djangorestframework-jwt's clients
/// (LOGIN_RESPONSE = "token") read the token back from the answer.
pub(crate) async fn verify_request(
    state: &AppState,
    raw: String,
) -> Result<Verified, ServiceError> {
    verify(state, &raw).await?;
    Ok(match state.settings.login_response {
        LoginResponse::Token => Verified::Token(raw),
        LoginResponse::Pair => Verified::Empty,
    })
}

/// Verifies token `raw`, of any type: its signature, its claims and, as the settings ask, its
/// user and the blacklist.
async fn verify(state: &AppState, raw: &str) -> Result<(), ServiceError> {
    let now = unix_now();
    let claims = state.codec.decode_as(raw, None, now)?;
    // ACCESS_TOKEN_REVOCATION: a revoked access token is refused like a blacklisted one.
    // Refresh and sliding tokens are revoked through the blacklist, checked below.
    let is_access = state
        .codec
        .check_type(&claims, Some(TokenType::Access), now)
        .is_ok();
    if is_access && state.access_revoked(&claims) {
        return Err(TokenError::Blacklisted.into());
    }
    if state.settings.verify_checks_user {
        require_active_user(state, &claims).await?;
    }
    // simplejwt checks the blacklist here only when BLACKLIST_AFTER_ROTATION is on, and answers
    // a validation error, not a token error. Only refresh and sliding tokens are ever
    // blacklisted, so an access token needs no lookup (a revoked one was refused above).
    if state.settings.blacklist_after_rotation
        && !is_access
        && is_blacklisted(state, &claims).await?
    {
        return Err(ServiceError::BlacklistedOnVerify);
    }
    Ok(())
}

/// Slides sliding token `raw`: the same token with a new `exp`, while its refresh window lasts.
pub(crate) async fn refresh_sliding(state: &AppState, raw: &str) -> Result<Issued, ServiceError> {
    let now = unix_now();
    let claims = decode_blacklistable(state, raw, TokenType::Sliding, now).await?;
    state.codec.check_refresh_window(&claims, now)?;
    let user = require_active_user(state, &claims).await?;
    let claims = with_hook(state, claims, user.as_deref()).await?;
    let slid = sign(state, state.codec.slid_claims(&claims, now))?;
    touch_session(state, &claims, now, Some(slid.expires_at)).await?;
    state.metrics.issued(TokenType::Sliding);
    state.metrics.refreshed();
    Ok(slid)
}

/// Decodes a refresh or sliding token in simplejwt's order: signature and expiry, then the
/// blacklist, then the presence of `exp` and `jti` and the type.
pub(super) async fn decode_blacklistable(
    state: &AppState,
    raw: &str,
    expected: TokenType,
    now: i64,
) -> Result<Claims, ServiceError> {
    let claims = state.codec.decode(raw, now)?;
    if is_blacklisted(state, &claims).await? {
        return Err(TokenError::Blacklisted.into());
    }
    state.codec.check_type(&claims, Some(expected), now)?;
    Ok(claims)
}

/// Whether the token's jti is blacklisted; a token without one cannot be.
async fn is_blacklisted(state: &AppState, claims: &Claims) -> Result<bool, ServiceError> {
    match state.codec.jti(claims) {
        Some(jti) => Ok(state.store.is_blacklisted(jti).await?),
        None => Ok(false),
    }
}

/// Refuses a refresh for a user who is gone or inactive. simplejwt 5.5.1 answers 500 for a
/// deleted user; its next release, and Tollgate, answer 401. Tokens naming no user pass (with
/// no user returned).
async fn require_active_user(
    state: &AppState,
    claims: &Claims,
) -> Result<Option<Arc<User>>, ServiceError> {
    let user = active_user(state, claims).await?;
    if let Some(user) = &user {
        if !password_unchanged(state, claims, user) {
            refuse_for_changed_password(state, claims, user).await?;
        }
    }
    Ok(user)
}

/// `claims` with what the claims hook adds at a refresh for `user`; a token naming no user
/// is not asked about.
async fn with_hook(
    state: &AppState,
    mut claims: Claims,
    user: Option<&User>,
) -> Result<Claims, ServiceError> {
    if let Some(user) = user {
        claims_hook::ask(state, HookEvent::Refresh, user, &claims)
            .await?
            .add_claims_to(&mut claims);
    }
    Ok(claims)
}

/// The active user a token names (through the user cache, see USER_CACHE_TTL); None for a
/// token that names no user.
async fn active_user(state: &AppState, claims: &Claims) -> Result<Option<Arc<User>>, ServiceError> {
    let Some(user_id) = state.codec.user_id(claims) else {
        return Ok(None);
    };
    let found = state
        .user_cache
        .find(&state.store, state.user_id_field, &user_id)
        .await?;
    match found {
        // A token issued to the identifier's previous holder has no account.
        Some(user) if !issued_to_holder(state, claims, &user) => {
            Err(ServiceError::NoActiveAccountForToken)
        }
        Some(user) if user.is_active || !state.settings.check_user_is_active => Ok(Some(user)),
        _ => Err(ServiceError::NoActiveAccountForToken),
    }
}

/// Refuses a token whose password fingerprint is stale and, as simplejwt does, blacklists it.
async fn refuse_for_changed_password(
    state: &AppState,
    claims: &Claims,
    user: &User,
) -> Result<(), ServiceError> {
    if state.codec.jti(claims).is_some() {
        let record = token_record(state, claims, Some(user.id));
        state.store.blacklist(&record, unix_now()).await?;
    }
    Err(ServiceError::PasswordChangedForToken)
}

/// The primary key of the user a token names, if that user exists.
pub(super) async fn user_pk(
    state: &AppState,
    claims: &Claims,
) -> Result<Option<i64>, ServiceError> {
    let Some(user_id) = state.codec.user_id(claims) else {
        return Ok(None);
    };
    if state.user_id_field == UserField::Id {
        // The store keeps the id only if the user exists; no lookup needed.
        return Ok(user_id.parse().ok());
    }
    Ok(state
        .store
        .find_user(state.user_id_field, &user_id)
        .await?
        .map(|user| user.id))
}

/// The record of a presented token, as the blacklist keeps it.
pub(super) fn token_record<'c>(
    state: &AppState,
    claims: &'c Claims,
    user_id: Option<i64>,
) -> TokenRecord<'c> {
    TokenRecord {
        jti: state.codec.jti(claims).unwrap_or_default(),
        user_id,
        created_at: claims.timestamp("iat"),
        expires_at: claims.timestamp("exp").unwrap_or_default(),
        session_id: claims.str(SID_CLAIM),
    }
}
