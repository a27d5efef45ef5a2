//! The token endpoints: obtain (pair and sliding), refresh, verify, blacklist, sliding refresh.
//!
//! Each follows simplejwt 5.5's view and serializer step by step; the order of checks decides
//! which message a client sees, so it is kept.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tollgate_core::auth::{parse_header, HeaderCredentials};
use tollgate_core::{unix_now, Claims, Issued, TokenError, TokenType};
use tollgate_store::{Revocation, RotateOutcome, TokenRecord, User, UserField};

use super::body::Payload;
use super::{cookie, login};
use crate::auth::{issued_to_holder, password_unchanged};
use crate::client::{ClientAddr, UserAgent};
use crate::error::ApiError;
use crate::service::tokens::{self, issued_record, Origin, Pair};
use crate::state::{AppState, SID_CLAIM};

/// `POST /api/token/`: a refresh and an access token for a username and password. With the
/// refresh cookie on, the request's origin is checked first ([`cookie::CookieRequest`]), since
/// the answer sets the cookie.
pub(crate) async fn obtain_pair(
    State(state): State<AppState>,
    _origin_checked: cookie::CookieRequest,
    client: ClientAddr,
    agent: UserAgent,
    payload: Payload,
) -> Result<Response, ApiError> {
    let user = login::log_in(&state, client, &agent, &payload).await?;
    let mut refresh_for_cookie = None;
    let mut body = if state.settings.login_response == "token" {
        // djangorestframework-jwt's answer: one token, nothing to refresh.
        let access = tokens::issue_access(&state, &user)?;
        json!({ "token": access.token })
    } else {
        let addr = client.0.to_string();
        let Pair { refresh, access } =
            tokens::issue_pair(&state, &user, origin(&addr, &agent)).await?;
        if state.settings.refresh_cookie {
            refresh_for_cookie = Some(refresh);
            json!({ "access": access.token })
        } else {
            json!({ "refresh": refresh.token, "access": access.token })
        }
    };
    if state.settings.login_response_user {
        if let Value::Object(map) = &mut body {
            map.insert("user".to_owned(), super::users::user_json(&state, &user));
        }
    }
    match refresh_for_cookie {
        Some(refresh) => with_refresh_cookie(&state, body, &refresh),
        None => Ok(Json(body).into_response()),
    }
}

/// `POST /api/token/sliding/`: a sliding token for a username and password.
pub(crate) async fn obtain_sliding(
    State(state): State<AppState>,
    client: ClientAddr,
    agent: UserAgent,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let user = login::log_in(&state, client, &agent, &payload).await?;
    let addr = client.0.to_string();
    let sliding = tokens::issue_sliding(&state, &user, origin(&addr, &agent)).await?;
    Ok(Json(json!({ "token": sliding.token })))
}

/// Where a login came from, as its session records it.
fn origin<'a>(client_addr: &'a str, agent: &'a UserAgent) -> Origin<'a> {
    Origin {
        client_addr,
        user_agent: agent.0.as_deref().unwrap_or_default(),
    }
}

/// `POST /api/token/refresh/`: a new access token (and, with rotation, a new refresh token).
pub(crate) async fn refresh(
    State(state): State<AppState>,
    request: cookie::CookieRequest,
    payload: Payload,
) -> Result<Response, ApiError> {
    let raw = cookie::presented(&request, &payload)?.token;
    let now = unix_now();
    let claiming = state.settings.rotate_refresh_tokens && state.settings.blacklist_after_rotation;
    let (claims, owner) = if claiming {
        // A replayed rotated token passes these checks; its rotation then fails, and reuse
        // detection, when on, takes over below.
        checked_for_rotation(&state, &raw, now).await?
    } else {
        let claims = decode_blacklistable(&state, &raw, TokenType::Refresh, now).await?;
        require_active_user(&state, &claims).await?;
        (claims, None)
    };
    let rotated = if state.settings.rotate_refresh_tokens {
        Some(sign(&state, state.codec.rotated_claims(&claims, now))?)
    } else {
        None
    };
    if !claiming {
        // With the blacklist, the rotation records the refresh on the session itself.
        touch_session(&state, &claims, now, rotated.as_ref().map(|r| r.expires_at)).await?;
    }
    let access = sign(&state, state.codec.access_claims_from(&claims, now))?;
    let Some(rotated) = rotated else {
        state.metrics.issued(TokenType::Access);
        state.metrics.refreshed();
        return Ok(Json(json!({ "access": access.token })).into_response());
    };
    let owner = match owner {
        Some(id) => Some(id),
        None => user_pk(&state, &claims).await?,
    };
    let new_record = issued_record(&rotated, owner);
    if state.settings.blacklist_after_rotation {
        // The blacklist insert is the lock: of concurrent refreshes of one token, only the one
        // whose insert lands may rotate it; the old and new records are one transaction.
        let old_record = token_record(&state, &claims, owner);
        match state.store.rotate(&old_record, &new_record, now).await? {
            RotateOutcome::Rotated => {}
            RotateOutcome::AlreadyBlacklisted if detects_reuse(&state) => {
                // Lost the race to a concurrent refresh of the same token: a replay within the
                // grace period, answered with what the winner got.
                return replayed(&state, &claims, now).await;
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
    refreshed(&state, &access, &rotated)
}

/// The answer to a refresh with rotation: the new access token, and the new refresh token in
/// the body or the refresh cookie.
fn refreshed(state: &AppState, access: &Issued, refresh: &Issued) -> Result<Response, ApiError> {
    if state.settings.refresh_cookie {
        return with_refresh_cookie(state, json!({ "access": access.token }), refresh);
    }
    Ok(Json(json!({ "access": access.token, "refresh": refresh.token })).into_response())
}

/// Whether REFRESH_TOKEN_REUSE_DETECTION applies: it needs rotation with the blacklist.
fn detects_reuse(state: &AppState) -> bool {
    let s = &state.settings;
    s.refresh_token_reuse_detection && s.rotate_refresh_tokens && s.blacklist_after_rotation
}

/// A refresh token presented again after it was rotated (REFRESH_TOKEN_REUSE_DETECTION).
///
/// Within REFRESH_TOKEN_REUSE_GRACE of its rotation it is an honest retry (a lost answer, two
/// tabs refreshing at once): the answer is the family's current refresh token, signed again
/// from what the store keeps of it (the rotated token's payload differs from the replayed one
/// only in `jti`, `iat` and `exp`), and a fresh access token. Later, it was stolen or leaked:
/// the whole family (its session, or without one its newest token) is revoked and the answer
/// is the usual 401 for a blacklisted token. A token that was logged out or revoked rather than
/// rotated gets that 401 and changes nothing.
async fn replayed(state: &AppState, claims: &Claims, now: i64) -> Result<Response, ApiError> {
    let blacklisted = || ApiError::from(TokenError::Blacklisted);
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
    let grace =
        i64::try_from(state.settings.refresh_token_reuse_grace.as_secs()).unwrap_or(i64::MAX);
    let within_grace = now.saturating_sub(rotation.rotated_at) < grace;
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
        return refreshed(state, &access, &refresh);
    }
    match &rotation.session_id {
        Some(sid) => {
            revoke_session(state, None, sid, now).await?;
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
    Err(blacklisted())
}

/// Revokes session `sid` (of user `owner` only, when given): its tokens are blacklisted and,
/// with ACCESS_TOKEN_REVOCATION, its access tokens revoked. False if there was no such live
/// session.
pub(super) async fn revoke_session(
    state: &AppState,
    owner: Option<i64>,
    sid: &str,
    now: i64,
) -> Result<bool, ApiError> {
    if !state.store.revoke_session(owner, sid, now).await? {
        return Ok(false);
    }
    state.revoke_access(Revocation::Session { sid }).await?;
    tracing::info!(session_id = sid, "session revoked");
    Ok(true)
}

/// Records a refresh of the token's session; a token whose session was revoked is refused as
/// blacklisted. Tokens without a stored session pass.
async fn touch_session(
    state: &AppState,
    claims: &Claims,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(), ApiError> {
    if let Some(sid) = claims.str(SID_CLAIM) {
        if !state.store.touch_session(sid, now, expires_at).await? {
            return Err(TokenError::Blacklisted.into());
        }
    }
    Ok(())
}

/// The checks of a refresh with rotation and blacklisting, with one read fewer: the blacklist
/// is not read up front, since the rotation claims the token atomically (and fails if it was
/// blacklisted). It is read only when the refresh is refused for another reason, so that a
/// blacklisted token gets simplejwt's answer, "Token is blacklisted", whatever else is wrong
/// with it. Returns the claims and the user's primary key, when the user was read.
async fn checked_for_rotation(
    state: &AppState,
    raw: &str,
    now: i64,
) -> Result<(Claims, Option<i64>), ApiError> {
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
    let owner = user.map(|user| user.id);
    Ok((claims, owner))
}

/// `POST /api/token/verify/`: `{}` if the token is valid, of any type.
pub(crate) async fn verify(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let [raw] = payload.char_fields(["token"])?;
    let now = unix_now();
    let claims = state.codec.decode_as(&raw, None, now)?;
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
        require_active_user(&state, &claims).await?;
    }
    // simplejwt checks the blacklist here only when BLACKLIST_AFTER_ROTATION is on, and answers
    // a validation error (400), not a token error. Only refresh and sliding tokens are ever
    // blacklisted, so an access token needs no lookup (a revoked one was refused above).
    if state.settings.blacklist_after_rotation && !is_access {
        if let Some(jti) = state.codec.jti(&claims) {
            if state.store.is_blacklisted(jti).await? {
                return Err(ApiError::NonField(TokenError::Blacklisted.to_string()));
            }
        }
    }
    Ok(Json(json!({})))
}

/// `POST /api/token/blacklist/`: logs out a refresh token. Holding the token is enough.
pub(crate) async fn blacklist(
    State(state): State<AppState>,
    request: cookie::CookieRequest,
    headers: HeaderMap,
    payload: Payload,
) -> Result<Response, ApiError> {
    let presented = cookie::presented(&request, &payload)?;
    let outcome = blacklist_token(&state, &headers, &presented.token).await;
    // Logging out with the cookie ends with the cookie gone, even when the token in it was
    // already refused: a browser must not keep a cookie that can no longer log anyone in.
    if !presented.from_cookie {
        return outcome.map(|body| body.into_response());
    }
    let clear = cookie::clear(&state.settings)?;
    let mut response = match outcome {
        Ok(body) => body.into_response(),
        Err(err) => err.into_response(),
    };
    response.headers_mut().append(SET_COOKIE, clear);
    Ok(response)
}

async fn blacklist_token(
    state: &AppState,
    headers: &HeaderMap,
    raw: &str,
) -> Result<Json<Value>, ApiError> {
    let now = unix_now();
    let claims = match decode_blacklistable(state, raw, TokenType::Refresh, now).await {
        Err(ApiError::Token(TokenError::Blacklisted))
            if state.store.redis_healthy() == Some(true) =>
        {
            // Logout writes Redis before the database: one whose database write failed left
            // the token listed in Redis alone, where a refill after a Redis restart would
            // lose it. Presenting the token again completes the logout.
            let claims = state.codec.decode(raw, now)?;
            let owner = user_pk(state, &claims).await?;
            state
                .store
                .blacklist(&token_record(state, &claims, owner), now)
                .await?;
            return Err(TokenError::Blacklisted.into());
        }
        decoded => decoded?,
    };
    let owner = user_pk(state, &claims).await?;
    if !state
        .store
        .blacklist(&token_record(state, &claims, owner), now)
        .await?
    {
        return Err(TokenError::Blacklisted.into());
    }
    state.metrics.blacklisted();
    tracing::info!(
        jti = state.codec.jti(&claims).unwrap_or_default(),
        "refresh token blacklisted"
    );
    // Logging out ends the session the token belongs to (its other tokens included).
    if let Some(sid) = claims.str(SID_CLAIM) {
        state.store.revoke_session(None, sid, now).await?;
    }
    if state.settings.access_token_revocation {
        revoke_logged_out_access(state, headers, &claims, now).await?;
    }
    Ok(Json(json!({})))
}

/// ACCESS_TOKEN_REVOCATION at logout: ends the access tokens of the refresh token's session
/// (its `sid`, which its access tokens carry) and the valid access token in the Authorization
/// header, if any. A missing or unusable header token is no reason to fail a logout.
async fn revoke_logged_out_access(
    state: &AppState,
    headers: &HeaderMap,
    refresh: &Claims,
    now: i64,
) -> Result<(), ApiError> {
    if let Some(sid) = refresh.str(crate::state::SID_CLAIM) {
        state.revoke_access(Revocation::Session { sid }).await?;
    }
    let header = headers
        .get(&state.auth_header)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    if let HeaderCredentials::Token(raw) = parse_header(header, &state.settings.auth_header_types) {
        let raw = std::str::from_utf8(raw).unwrap_or_default();
        if let Ok(access) = state.codec.decode_as(raw, Some(TokenType::Access), now) {
            if let (Some(jti), Some(expires_at)) =
                (state.codec.jti(&access), access.timestamp("exp"))
            {
                state
                    .revoke_access(Revocation::Token { jti, expires_at })
                    .await?;
                tracing::info!(jti, "access token revoked at logout");
            }
        }
    }
    Ok(())
}

/// `POST /api/token/sliding/refresh/`: the same sliding token with a new `exp`, while its
/// refresh window lasts.
pub(crate) async fn refresh_sliding(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let [raw] = payload.char_fields(["token"])?;
    let now = unix_now();
    let claims = decode_blacklistable(&state, &raw, TokenType::Sliding, now).await?;
    state.codec.check_refresh_window(&claims, now)?;
    require_active_user(&state, &claims).await?;
    let slid = sign(&state, state.codec.slid_claims(&claims, now))?;
    touch_session(&state, &claims, now, Some(slid.expires_at)).await?;
    state.metrics.issued(TokenType::Sliding);
    state.metrics.refreshed();
    Ok(Json(json!({ "token": slid.token })))
}

/// Decodes a refresh or sliding token in simplejwt's order: signature and expiry, then the
/// blacklist, then the presence of `exp` and `jti` and the type.
async fn decode_blacklistable(
    state: &AppState,
    raw: &str,
    expected: TokenType,
    now: i64,
) -> Result<Claims, ApiError> {
    let claims = state.codec.decode(raw, now)?;
    if is_blacklisted(state, &claims).await? {
        return Err(TokenError::Blacklisted.into());
    }
    state.codec.check_type(&claims, Some(expected), now)?;
    Ok(claims)
}

/// Whether the token's jti is blacklisted; a token without one cannot be.
async fn is_blacklisted(state: &AppState, claims: &Claims) -> Result<bool, ApiError> {
    match state.codec.jti(claims) {
        Some(jti) => Ok(state.store.is_blacklisted(jti).await?),
        None => Ok(false),
    }
}

/// Refuses a refresh for a user who is gone or inactive. simplejwt 5.5.1 answers 500 for a
/// deleted user; its next release, and Tollgate, answer 401. Tokens naming no user pass.
async fn require_active_user(state: &AppState, claims: &Claims) -> Result<(), ApiError> {
    if let Some(user) = active_user(state, claims).await? {
        if !password_unchanged(state, claims, &user) {
            refuse_for_changed_password(state, claims, &user).await?;
        }
    }
    Ok(())
}

/// The active user a token names (through the user cache, see USER_CACHE_TTL); None for a
/// token that names no user.
async fn active_user(
    state: &AppState,
    claims: &Claims,
) -> Result<Option<std::sync::Arc<User>>, ApiError> {
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
            Err(ApiError::NoActiveAccountForToken)
        }
        Some(user) if user.is_active || !state.settings.check_user_is_active => Ok(Some(user)),
        _ => Err(ApiError::NoActiveAccountForToken),
    }
}

/// Refuses a token whose password fingerprint is stale and, as simplejwt does, blacklists it.
async fn refuse_for_changed_password(
    state: &AppState,
    claims: &Claims,
    user: &User,
) -> Result<(), ApiError> {
    if state.codec.jti(claims).is_some() {
        let record = token_record(state, claims, Some(user.id));
        state.store.blacklist(&record, unix_now()).await?;
    }
    Err(ApiError::PasswordChangedForToken)
}

/// The primary key of the user a token names, if that user exists.
async fn user_pk(state: &AppState, claims: &Claims) -> Result<Option<i64>, ApiError> {
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

fn token_record<'c>(state: &AppState, claims: &'c Claims, user_id: Option<i64>) -> TokenRecord<'c> {
    TokenRecord {
        jti: state.codec.jti(claims).unwrap_or_default(),
        user_id,
        created_at: claims.timestamp("iat"),
        expires_at: claims.timestamp("exp").unwrap_or_default(),
        session_id: claims.str(SID_CLAIM),
    }
}

/// A JSON answer that hands the refresh token over in the refresh cookie instead of the body.
fn with_refresh_cookie(
    state: &AppState,
    body: Value,
    refresh: &Issued,
) -> Result<Response, ApiError> {
    let max_age = refresh.expires_at - unix_now();
    let set = cookie::set(&state.settings, &refresh.token, max_age)?;
    Ok(([(SET_COOKIE, set)], Json(body)).into_response())
}

fn sign(state: &AppState, claims: Claims) -> Result<Issued, ApiError> {
    tokens::sign(state, claims).map_err(ApiError::internal)
}
