//! Building the application and serving it on a bound listener until shutdown.

use std::future::Future;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::WWW_AUTHENTICATE;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::error::NeedsChallenge;
use crate::state::AppState;

/// The whole application: routes, body limit, `WWW-Authenticate` on 401s, request tracing.
pub fn app(state: AppState) -> Router {
    let challenge = state.challenge.clone();
    crate::api::routes(&state)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(axum::middleware::map_response(
            move |mut response: Response| {
                let challenge = challenge.clone();
                async move {
                    if response
                        .extensions_mut()
                        .remove::<NeedsChallenge>()
                        .is_some()
                    {
                        response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
                    }
                    response
                }
            },
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str);
                tracing::info_span!("request", method = %request.method(), route)
            }),
        )
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` completes; requests in flight finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
