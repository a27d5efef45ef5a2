//! Confirming a registration's email address, in djoser's shapes (see
//! [`crate::service::verification`]).

use axum::extract::State;
use axum::http::StatusCode;

use super::body::Payload;
use crate::client::ClientAddr;
use crate::error::ApiError;
use crate::service::verification;
use crate::state::AppState;

/// `POST /api/users/activation/` `{"uid", "token"}`: 204 once the address is confirmed; 403
/// for a link of an address already confirmed.
pub(crate) async fn activation(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<StatusCode, ApiError> {
    let [uid, token] = payload.char_fields(["uid", "token"])?;
    verification::activate(&state, &uid, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/users/resend_activation/` `{"email"}`: 204, whether or not the address waits for
/// a link.
pub(crate) async fn resend_activation(
    State(state): State<AppState>,
    client: ClientAddr,
    payload: Payload,
) -> Result<StatusCode, ApiError> {
    let [email] = payload.char_fields(["email"])?;
    verification::resend_activation(&state, client.0, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/users/confirm_email/` `{"uid", "token"}`: 204 once the address the link was
/// sent to is the user's.
pub(crate) async fn confirm_email(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<StatusCode, ApiError> {
    let [uid, token] = payload.char_fields(["uid", "token"])?;
    verification::confirm_email_change(&state, &uid, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
