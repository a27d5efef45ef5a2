//! `POST /api/token/issue/`: tokens for a user whom a trusted backend, holding an API key of
//! scope `tokens:issue`, names by `user_id` or `username`. The answer is a login's, in the body
//! (the refresh cookie is for browsers, and the caller is none).

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use super::body::Payload;
use crate::client::ClientAddr;
use crate::error::ApiError;
use crate::service::api_keys::{self, IssuedWithKey, LoginTokens};
use crate::service::tokens::{Pair, Single};
use crate::state::AppState;

/// `POST /api/token/issue/`, authenticated by `Authorization: Api-Key <key>`.
pub(crate) async fn issue(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let authorization = headers.get(AUTHORIZATION).map(|value| value.as_bytes());
    let IssuedWithKey { user, tokens } =
        api_keys::issue_request(&state, authorization, &payload, client.0).await?;
    let (mut body, hook) = match tokens {
        LoginTokens::Pair(Pair {
            refresh,
            access,
            hook,
        }) => (
            json!({ "refresh": refresh.token, "access": access.token }),
            hook,
        ),
        LoginTokens::Token(Single { token, hook }) => (json!({ "token": token.token }), hook),
    };
    if let Value::Object(map) = &mut body {
        if state.settings.login_response_user {
            map.insert("user".to_owned(), super::users::user_json(&state, &user));
        }
        hook.add_fields_to(map);
    }
    Ok(Json(body))
}
