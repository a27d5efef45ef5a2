//! Password reset by mail, in djoser's shapes (see [`crate::service::recovery`]).

use axum::extract::State;
use axum::http::StatusCode;

use super::body::Payload;
use crate::client::{ClientAddr, UserAgent};
use crate::error::ApiError;
use crate::service::recovery;
use crate::state::AppState;

/// `POST /api/users/reset_password/` `{"email"}`: 204, whether or not the address has an
/// account.
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    client: ClientAddr,
    payload: Payload,
) -> Result<StatusCode, ApiError> {
    let [email] = payload.char_fields(["email"])?;
    recovery::request_reset(&state, client.0, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/users/reset_password_confirm/` `{"uid", "token", "new_password"}`: 204 once the
/// password is set (and recorded in the user's login history, with the client's address and
/// user agent).
pub(crate) async fn reset_password_confirm(
    State(state): State<AppState>,
    client: ClientAddr,
    agent: UserAgent,
    payload: Payload,
) -> Result<StatusCode, ApiError> {
    let [uid, token, new_password] = payload.char_fields(["uid", "token", "new_password"])?;
    recovery::confirm_reset(&state, client.with(&agent), &uid, &token, new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}
