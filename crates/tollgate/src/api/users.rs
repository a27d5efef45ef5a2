//! The accounts API: registration, the current user, and password change.
//!
//! Bodies and validation errors have Django REST framework's shapes: a user is a flat JSON
//! object (profile fields beside the built-in ones, never the password), and a refusal is
//! `{"field": ["message", …]}` with status 400. The rules are in [`crate::service::accounts`].

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use tollgate_core::settings::EmailVerification;
use tollgate_store::User;

use super::body::Payload;
use crate::auth::AuthenticatedUser;
use crate::client::{ClientAddr, UserAgent};
use crate::error::ApiError;
use crate::service::accounts::{self, profile_of, ChangedBy};
use crate::service::user_fields::Mode;
use crate::service::{login, Context};
use crate::state::AppState;

/// `POST /api/users/`: creates an account; 201 with the user.
///
/// Counts against REGISTRATIONS_PER_ADDRESS before anything is looked up, successful or not:
/// the "already exists" answers would otherwise tell which names are taken at any rate.
pub(crate) async fn register(
    State(state): State<AppState>,
    client: ClientAddr,
    payload: Payload,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state
        .registration_throttle
        .reserve(client.0)
        .await
        .map_err(ApiError::Throttled)?;
    let user = accounts::register(&Context::of(&state), &payload).await?;
    Ok((StatusCode::CREATED, Json(user_json(&state, &user))))
}

/// `GET /api/user/`: the authenticated user.
pub(crate) async fn me(
    State(state): State<AppState>,
    auth: AuthenticatedUser,
) -> Result<Json<Value>, ApiError> {
    let auth = auth.stored(&state).await?;
    Ok(Json(user_json(&state, &auth.user)))
}

/// `PUT` and `PATCH /api/user/`: changes the authenticated user's own fields. `PUT` requires
/// the fields registration requires; `PATCH` changes only what is sent.
pub(crate) async fn update_me(
    State(state): State<AppState>,
    method: Method,
    auth: AuthenticatedUser,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let auth = auth.stored(&state).await?;
    let mode = if method == Method::PATCH {
        Mode::Patch
    } else {
        Mode::Put
    };
    let updated = accounts::update(&Context::of(&state), &auth.user, &payload, mode).await?;
    Ok(Json(user_json(&state, &updated)))
}

/// `POST /api/user/password/`: changes the password given the old one (see
/// [`accounts::change_password`]).
pub(crate) async fn change_password(
    State(state): State<AppState>,
    client: ClientAddr,
    agent: UserAgent,
    auth: AuthenticatedUser,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let auth = auth.stored(&state).await?;
    let [old_password, new_password] = payload.char_fields(["old_password", "new_password"])?;
    let user = &auth.user;
    // Behind the login's throttle and lockout: a stolen access token is no free password oracle.
    let matched =
        login::check_own_password(&state, client.with(&agent), user, old_password).await?;
    let by = ChangedBy::User {
        old_password_matched: matched,
    };
    accounts::change_password(&Context::of(&state), user, new_password, by).await?;
    Ok(Json(json!({ "detail": "New password has been saved." })))
}

/// The user as clients see it: built-in fields, then the configured profile fields.
pub(crate) fn user_json(state: &AppState, user: &User) -> Value {
    let mut body = json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "phone": user.phone,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "date_joined": timestamp(Some(user.date_joined)),
        "last_login": timestamp(user.last_login),
    });
    let profile = profile_of(user);
    if let Value::Object(map) = &mut body {
        if state.settings.email_verification != EmailVerification::None {
            // An address waiting for its confirmation link to be followed.
            map.insert("pending_email".to_owned(), json!(user.pending_email));
        }
        for field in &state.settings.user_profile_fields {
            map.insert(
                field.clone(),
                profile.get(field).cloned().unwrap_or(Value::Null),
            );
        }
    }
    body
}

/// Epoch seconds as DRF writes a `DateTimeField` in UTC.
pub(super) fn timestamp(at: Option<i64>) -> Value {
    let Some(at) = at.and_then(|at| u64::try_from(at).ok()) else {
        return Value::Null;
    };
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(at);
    Value::String(humantime::format_rfc3339_seconds(time).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_drf_does() {
        assert_eq!(
            timestamp(Some(1_700_000_000)),
            json!("2023-11-14T22:13:20Z")
        );
        assert_eq!(timestamp(None), Value::Null);
    }
}
