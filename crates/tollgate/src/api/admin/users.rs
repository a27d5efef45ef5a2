//! `/api/admin/users/` and `/api/admin/users/{id}/`: listing, creating, reading, changing and
//! deleting accounts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use tollgate_store::{User, UserFilter};

use super::page::ListQuery;
use super::{user_id, Administrator};
use crate::api::body::Payload;
use crate::api::users::user_json;
use crate::error::ApiError;
use crate::service::accounts::PasswordRule;
use crate::service::admin::users;
use crate::service::Context;
use crate::state::AppState;

/// An account as administrators see it: as the user sees themself, with the flags.
pub(super) fn admin_user_json(state: &AppState, user: &User) -> Value {
    let mut body = user_json(state, user);
    if let Value::Object(map) = &mut body {
        map.insert("is_active".to_owned(), json!(user.is_active));
        map.insert("is_staff".to_owned(), json!(user.is_staff));
        map.insert("is_superuser".to_owned(), json!(user.is_superuser));
    }
    body
}

/// `GET /api/admin/users/?search=&is_active=&page=&page_size=`: a page of accounts, by id.
pub(super) async fn list(
    State(state): State<AppState>,
    _: Administrator,
    query: ListQuery,
) -> Result<Json<Value>, ApiError> {
    let is_active = match query.get("is_active") {
        None => None,
        Some(value) => Some(match value.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                let message = "Must be a valid boolean.".to_owned();
                return Err(ApiError::Fields(vec![(
                    "is_active".to_owned(),
                    vec![message],
                )]));
            }
        }),
    };
    let filter = UserFilter {
        search: query.get("search").unwrap_or_default().to_owned(),
        is_active,
    };
    let page = users::list(&Context::of(&state), &filter, query.page()).await?;
    Ok(Json(
        query.answer(page.map(|user| admin_user_json(&state, &user))),
    ))
}

/// `POST /api/admin/users/`: creates an account; 201 with it.
pub(super) async fn create(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    payload: Payload,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ctx = Context::of(&state);
    let user = users::create(&ctx, &actor, &payload, PasswordRule::Policy).await?;
    Ok((StatusCode::CREATED, Json(admin_user_json(&state, &user))))
}

/// `GET /api/admin/users/{id}/`: one account.
pub(super) async fn get(
    State(state): State<AppState>,
    _: Administrator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = users::get(&Context::of(&state), user_id(&id)?).await?;
    Ok(Json(admin_user_json(&state, &user)))
}

/// `PATCH /api/admin/users/{id}/`: changes an account's fields and flags.
pub(super) async fn update(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    Path(id): Path<String>,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let ctx = Context::of(&state);
    let user = users::update(&ctx, &actor, user_id(&id)?, &payload).await?;
    Ok(Json(admin_user_json(&state, &user)))
}

/// `DELETE /api/admin/users/{id}/`: deletes an account; 204.
pub(super) async fn delete(
    State(state): State<AppState>,
    Administrator(actor): Administrator,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    users::delete(&Context::of(&state), &actor, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
