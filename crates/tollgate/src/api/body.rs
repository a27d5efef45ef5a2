//! Request bodies: [`Payload`] (parsed by DRF's rules in tollgate-core) read from a request.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
pub(crate) use tollgate_core::body::Payload;

use crate::error::ApiError;
use crate::state::AppState;

impl FromRequest<AppState> for Payload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Payload, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::internal(rejection.body_text())
            }
        })?;
        Ok(Payload::parse(content_type.as_deref(), &body)?)
    }
}
