//! The protected index: who am I.

use axum::Json;
use serde_json::{json, Value};

use crate::auth::AuthenticatedUser;

/// `GET /api/index/`: the authenticated user's id and username.
pub(crate) async fn index(auth: AuthenticatedUser) -> Json<Value> {
    Json(json!({ "id": auth.user.id, "username": auth.user.username }))
}
