//! An account's sessions and login history: `sessions/`, `sessions/{sid}/`, `events/`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::page::ListQuery;
use super::{user_id, Administrator};
use crate::api::sessions::session_json;
use crate::api::users::timestamp;
use crate::error::ApiError;
use crate::service::admin::activity;
use crate::service::Context;
use crate::state::AppState;

/// `GET /api/admin/users/{id}/sessions/`: the user's live sessions, most recently used first.
pub(super) async fn sessions(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let sessions = activity::sessions(&Context::of(&state), &actor, user_id(&id)?).await?;
    let listed = sessions
        .iter()
        .map(|session| Value::Object(session_json(session)))
        .collect();
    Ok(Json(Value::Array(listed)))
}

/// `DELETE /api/admin/users/{id}/sessions/`: revokes every session of the user; 204.
pub(super) async fn revoke_all(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    activity::revoke_all_sessions(&Context::of(&state), &actor, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/admin/users/{id}/sessions/{sid}/`: revokes one session of the user; 204, or
/// 404 when the user has no such live session.
pub(super) async fn revoke(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    Path((id, sid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    activity::revoke_session(&Context::of(&state), &actor, user_id(&id)?, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/admin/users/{id}/events/?page=&page_size=`: a page of the user's login attempts
/// (and password resets), newest first.
pub(super) async fn events(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    Path(id): Path<String>,
    query: ListQuery,
) -> Result<Json<Value>, ApiError> {
    let ctx = Context::of(&state);
    let page = activity::login_events(&ctx, &actor, user_id(&id)?, query.page()).await?;
    let page = page.map(|event| {
        let outcome = match (event.succeeded, event.reason.as_deref()) {
            (true, _) => "succeeded",
            (false, reason) => reason.unwrap_or("failed"),
        };
        json!({
            "time": timestamp(Some(event.at)),
            "succeeded": event.succeeded,
            "outcome": outcome,
            "client_address": event.client_addr,
            "user_agent": event.user_agent,
        })
    });
    Ok(Json(query.answer(page)))
}
