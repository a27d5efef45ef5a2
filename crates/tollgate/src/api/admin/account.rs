//! An account's password, lockout and second factors: `set_password/`, `send_password_reset/`,
//! `unlock/`, `mfa/reset/`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{user_id, Administrator};
use crate::api::body::Payload;
use crate::error::ApiError;
use crate::service::admin::users;
use crate::service::Context;
use crate::state::AppState;

/// `POST /api/admin/users/{id}/set_password/` with `{"new_password"}`: sets the password
/// (the password policy applies; every session of the user ends).
pub(super) async fn set_password(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    Path(id): Path<String>,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let [new_password] = payload.char_fields(["new_password"])?;
    let ctx = Context::of(&state);
    users::set_password(&ctx, &actor, user_id(&id)?, new_password).await?;
    Ok(Json(json!({ "detail": "New password has been saved." })))
}

/// `POST /api/admin/users/{id}/send_password_reset/`: mails the user a reset link; 204.
pub(super) async fn send_password_reset(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    users::send_password_reset(&Context::of(&state), &actor, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/admin/users/{id}/mfa/reset/`: removes every second factor and ends every session
/// of the account; `{"factors_removed"}`.
pub(super) async fn reset_mfa(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let removed = users::reset_mfa(&Context::of(&state), &actor, user_id(&id)?).await?;
    Ok(Json(json!({ "factors_removed": removed })))
}

/// `POST /api/admin/users/{id}/unlock/`: lifts the lockout and forgets failed logins;
/// `{"was_locked"}`.
pub(super) async fn unlock(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let ctx = Context::of(&state);
    let throttle = Some(state.login_throttle.as_ref());
    let was_locked = users::unlock(&ctx, &actor, user_id(&id)?, throttle).await?;
    Ok(Json(json!({ "was_locked": was_locked })))
}
