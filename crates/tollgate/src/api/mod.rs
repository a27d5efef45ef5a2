//! The HTTP API: one module per resource, routed here.

mod body;
mod health;
mod index;
mod token;

use axum::http::Method;
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route, at the paths the settings give.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let s = &state.settings;
    Router::new()
        .route(&s.token_obtain_path, post(token::obtain_pair))
        .route(&s.token_refresh_path, post(token::refresh))
        .route(&s.token_verify_path, post(token::verify))
        .route(&s.token_blacklist_path, post(token::blacklist))
        .route(&s.token_sliding_path, post(token::obtain_sliding))
        .route(&s.token_sliding_refresh_path, post(token::refresh_sliding))
        .route(&s.index_path, get(index::index))
        .route("/healthz", get(health::healthz))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}
