//! `/api/admin/keys/` and `/api/admin/keys/rotate/`: the signing keys, for superusers. Key
//! material is never shown.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::Administrator;
use crate::api::body::Payload;
use crate::api::users::timestamp;
use crate::error::ApiError;
use crate::service::admin;
use crate::service::Context;
use crate::state::AppState;

/// `GET /api/admin/keys/`: the signing keys, the active one first.
pub(super) async fn list(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
) -> Result<Json<Value>, ApiError> {
    let keys = admin::list_keys(&Context::of(&state), &actor).await?;
    let listed = keys
        .iter()
        .map(|key| {
            json!({
                "kid": key.kid,
                "algorithm": key.algorithm.as_str(),
                "state": key.state.as_str(),
                "created": timestamp(key.created_at),
                "signs_from": timestamp(key.signs_from),
                "verify_until": timestamp(key.verify_until),
                "stored": if key.encrypted { "encrypted" } else { "SIGNING_KEY" },
            })
        })
        .collect();
    Ok(Json(Value::Array(listed)))
}

/// `POST /api/admin/keys/rotate/` with an optional `{"algorithm"}`: a new active key (of the
/// algorithm signing now by default); 201 with its id, the retired key's, and until when that
/// one verifies. This instance signs with it at once, the others within KEYS_RELOAD_INTERVAL.
pub(super) async fn rotate(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    payload: Payload,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let algorithm = match payload.text("algorithm") {
        Ok(None) => None,
        Ok(Some(name)) if name.is_empty() => None,
        Ok(Some(name)) => Some(name.parse().map_err(|()| {
            ApiError::Fields(vec![(
                "algorithm".to_owned(),
                vec![format!("\"{name}\" is not a valid choice.")],
            )])
        })?),
        Err(message) => {
            return Err(ApiError::Fields(vec![(
                "algorithm".to_owned(),
                vec![message.to_owned()],
            )]))
        }
    };
    let ctx = Context::of(&state);
    // Pre-publication is for the command line, where the runbook schedules it.
    let rotated =
        admin::rotate_keys(&ctx, &actor, algorithm, Duration::ZERO, Some(&state.codec)).await?;
    let body = json!({
        "kid": rotated.kid,
        "algorithm": rotated.algorithm.as_str(),
        "retired": rotated.retired,
        "retired_verify_until": timestamp(Some(rotated.verify_until)),
    });
    Ok((StatusCode::CREATED, Json(body)))
}
