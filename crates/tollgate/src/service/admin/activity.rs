//! A user's activity, as administrators see it: live sessions (which they may revoke) and the
//! history of login attempts. Staff members see and act on ordinary accounts' only.

use serde_json::json;
use tollgate_core::unix_now;
use tollgate_store::{LoginEvent, Session};

use super::page::{Page, PageRequest};
use super::{target, Actor};
use crate::service::{audit, sessions, Context, ServiceError};

/// The live sessions of account `user_id`, most recently used first.
pub(crate) async fn sessions(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
) -> Result<Vec<Session>, ServiceError> {
    let user = target(ctx, user_id).await?;
    actor.may_manage(&user)?;
    Ok(ctx.store.sessions_of(user.id, unix_now()).await?)
}

/// Revokes session `sid` of account `user_id` (see [`sessions::revoke_session`]);
/// [`ServiceError::SessionNotFound`] when the user has no such live session. Recorded as
/// `session.revoke`.
pub(crate) async fn revoke_session(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
    sid: &str,
) -> Result<(), ServiceError> {
    let user = target(ctx, user_id).await?;
    actor.may_manage(&user)?;
    sessions::revoke_session(ctx, Some(user.id), sid).await?;
    let details = json!({ "session_id": sid });
    audit::record(ctx, actor, "session.revoke", Some(&user), details).await
}

/// Revokes every session of account `user_id` (see [`sessions::log_out_everywhere`]); returns
/// how many ended. Recorded as `session.revoke` with `"all": true`.
pub(crate) async fn revoke_all_sessions(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
) -> Result<usize, ServiceError> {
    let user = target(ctx, user_id).await?;
    actor.may_manage(&user)?;
    let ended = sessions::log_out_everywhere(ctx, &user).await?;
    let details = json!({ "all": true, "sessions": ended });
    audit::record(ctx, actor, "session.revoke", Some(&user), details).await?;
    Ok(ended)
}

/// A page of account `user_id`'s login attempts (and password resets), newest first.
pub(crate) async fn login_events(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
    request: PageRequest,
) -> Result<Page<LoginEvent>, ServiceError> {
    let user = target(ctx, user_id).await?;
    actor.may_manage(&user)?;
    let count = ctx.store.count_login_events(user.id).await?;
    let window = request.window(count)?;
    let events = ctx
        .store
        .login_events_page(user.id, window.limit, window.offset)
        .await?;
    Ok(window.page(events))
}
