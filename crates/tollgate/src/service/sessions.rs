//! Ending logins: logging out a refresh token, revoking one session or all of a user's, for
//! the user themself or an administrator.
//!
//! A session is one login and the family of tokens refreshed from it. Ending it blacklists its
//! refresh and sliding tokens and, with ACCESS_TOKEN_REVOCATION, revokes its access tokens on
//! every instance (they carry its `sid`).

use serde_json::json;
use tollgate_core::{unix_now, Claims, TokenError, TokenType};
use tollgate_store::{Revocation, User};

use super::refresh::{decode_blacklistable, token_record, user_pk};
use super::{Context, ServiceError};
use crate::state::{AppState, SID_CLAIM};
use crate::webhooks::Event;

/// Logs out refresh token `raw` (holding it is enough): it is blacklisted and its session
/// ends, its other tokens included. `access_in_header` is the access token the request was
/// sent with, if any: with ACCESS_TOKEN_REVOCATION it is revoked too, if valid (an unusable
/// one is no reason to fail a logout).
pub(crate) async fn log_out(
    state: &AppState,
    raw: &str,
    access_in_header: Option<&str>,
) -> Result<(), ServiceError> {
    let now = unix_now();
    let claims = match decode_blacklistable(state, raw, TokenType::Refresh, now).await {
        Err(ServiceError::Token(TokenError::Blacklisted))
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
    if let Some(sid) = claims.str(SID_CLAIM) {
        state.store.revoke_session(None, sid, now).await?;
    }
    if state.settings.access_token_revocation {
        revoke_logged_out_access(state, &claims, access_in_header, now).await?;
    }
    let data = json!({
        "user_id": owner,
        "session_id": claims.str(SID_CLAIM),
        "reason": "logout",
    });
    state
        .outbox
        .emit(&state.store, Event::SessionRevoked, data)
        .await;
    Ok(())
}

/// ACCESS_TOKEN_REVOCATION at logout: ends the access tokens of the refresh token's session
/// (its `sid`, which its access tokens carry) and the access token sent with the logout.
async fn revoke_logged_out_access(
    state: &AppState,
    refresh: &Claims,
    access_in_header: Option<&str>,
    now: i64,
) -> Result<(), ServiceError> {
    if let Some(sid) = refresh.str(SID_CLAIM) {
        state.revoke_access(Revocation::Session { sid }).await?;
    }
    let Some(raw) = access_in_header else {
        return Ok(());
    };
    if let Ok(access) = state.codec.decode_as(raw, Some(TokenType::Access), now) {
        if let (Some(jti), Some(expires_at)) = (state.codec.jti(&access), access.timestamp("exp")) {
            state
                .revoke_access(Revocation::Token { jti, expires_at })
                .await?;
            tracing::info!(jti, "access token revoked at logout");
        }
    }
    Ok(())
}

/// Revokes session `sid` (of user `owner` only, when given, as when users end their own):
/// its tokens are blacklisted and, with ACCESS_TOKEN_REVOCATION, its access tokens revoked.
/// [`ServiceError::SessionNotFound`] if there was no such live session.
pub(crate) async fn revoke_session(
    ctx: &Context<'_>,
    owner: Option<i64>,
    sid: &str,
) -> Result<(), ServiceError> {
    if !ctx.store.revoke_session(owner, sid, unix_now()).await? {
        return Err(ServiceError::SessionNotFound);
    }
    ctx.revoke_access(Revocation::Session { sid }).await?;
    tracing::info!(session_id = sid, "session revoked");
    let data = json!({ "user_id": owner, "session_id": sid, "reason": "revoked" });
    ctx.emit(Event::SessionRevoked, data).await;
    Ok(())
}

/// Logs `user` out everywhere: every session revoked, every refresh and sliding token
/// blacklisted, and with ACCESS_TOKEN_REVOCATION the sessions' access tokens revoked. Returns
/// how many sessions ended.
pub(crate) async fn log_out_everywhere(
    ctx: &Context<'_>,
    user: &User,
) -> Result<usize, ServiceError> {
    let revoked = ctx.store.revoke_all_sessions(user.id, unix_now()).await?;
    for sid in &revoked {
        ctx.revoke_access(Revocation::Session { sid }).await?;
    }
    for sid in &revoked {
        let data = json!({ "user_id": user.id, "session_id": sid, "reason": "logout_everywhere" });
        ctx.emit(Event::SessionRevoked, data).await;
    }
    tracing::info!(
        user_id = user.id,
        sessions = revoked.len(),
        "logged out everywhere"
    );
    Ok(revoked.len())
}

/// Revokes every live session of `user` but `keep` (the caller's own, when there is one): after
/// a change to how the account is secured, whoever holds another session must sign in again.
/// Returns how many sessions ended.
pub(crate) async fn revoke_other_sessions(
    ctx: &Context<'_>,
    user: &User,
    keep: Option<&str>,
) -> Result<usize, ServiceError> {
    let live = ctx.store.sessions_of(user.id, unix_now()).await?;
    let mut ended = 0;
    for session in live.iter().filter(|s| Some(s.id.as_str()) != keep) {
        match revoke_session(ctx, Some(user.id), &session.id).await {
            // Ended meanwhile (expired, or logged out): nothing left to do.
            Ok(()) | Err(ServiceError::SessionNotFound) => ended += 1,
            Err(err) => return Err(err),
        }
    }
    Ok(ended)
}
