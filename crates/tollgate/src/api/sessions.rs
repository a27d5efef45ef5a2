//! The sessions API: the caller's sessions (one per login, the family of tokens refreshed from
//! it), and logging out of one session or of all of them.
//!
//! Every endpoint acts on the authenticated caller's own sessions only. A session id of another
//! user is answered exactly as an unknown one (404), so that ids reveal nothing.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use tollgate_core::unix_now;
use tollgate_store::Session;

use super::users::timestamp;
use crate::auth::AuthenticatedUser;
use crate::error::ApiError;
use crate::service::{sessions, Context};
use crate::state::{AppState, SID_CLAIM};

/// `GET /api/sessions/`: the caller's live sessions, most recently used first; the one the
/// caller's token belongs to has `"current": true`.
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: AuthenticatedUser,
) -> Result<Json<Value>, ApiError> {
    let current = auth.claims.str(SID_CLAIM);
    let sessions = state.store.sessions_of(auth.user.id, unix_now()).await?;
    let listed = sessions
        .iter()
        .map(|session| {
            let mut listed = session_json(session);
            let is_current = current == Some(session.id.as_str());
            listed.insert("current".to_owned(), is_current.into());
            Value::Object(listed)
        })
        .collect();
    Ok(Json(Value::Array(listed)))
}

/// A session as the sessions API and the admin API show it.
pub(crate) fn session_json(session: &Session) -> Map<String, Value> {
    let listed = json!({
        "id": session.id,
        "created": timestamp(Some(session.created_at)),
        "last_used": timestamp(Some(session.last_used_at)),
        "expires": timestamp(Some(session.expires_at)),
        "client_address": session.client_addr,
        "user_agent": session.user_agent,
        "amr": session.amr.split_whitespace().collect::<Vec<_>>(),
    });
    match listed {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `DELETE /api/sessions/{id}/`: revokes one of the caller's sessions; 204, or 404 if the
/// caller has no such live session.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    auth: AuthenticatedUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    sessions::revoke_session(&Context::of(&state), Some(auth.user.id), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/sessions/`: logs the caller out everywhere; 204.
pub(crate) async fn revoke_all(
    State(state): State<AppState>,
    auth: AuthenticatedUser,
) -> Result<StatusCode, ApiError> {
    sessions::log_out_everywhere(&Context::of(&state), &auth.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/token/blacklist/all/`: logs the caller out everywhere; `{}`, as logout answers.
pub(crate) async fn blacklist_all(
    State(state): State<AppState>,
    auth: AuthenticatedUser,
) -> Result<Json<Value>, ApiError> {
    sessions::log_out_everywhere(&Context::of(&state), &auth.user).await?;
    Ok(Json(json!({})))
}
