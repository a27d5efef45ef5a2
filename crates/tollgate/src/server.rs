//! Building the application and serving it on a bound listener until shutdown.

use std::future::Future;

use axum::extract::DefaultBodyLimit;
use axum::http::header::WWW_AUTHENTICATE;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;

use crate::error::NeedsChallenge;
use crate::state::AppState;

/// The whole application: routes, body limit, `WWW-Authenticate` on 401s, metrics when
/// enabled, and the access log.
pub fn app(state: AppState) -> Router {
    let challenge = state.challenge.clone();
    let mut router = crate::api::routes(&state);
    if state.metrics.enabled() {
        router = router
            .route("/metrics", axum::routing::get(crate::metrics::expose))
            .layer(axum::middleware::from_fn_with_state(
                state.metrics.clone(),
                crate::metrics::track,
            ));
    }
    router
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
        .layer(axum::middleware::from_fn(crate::logging::access_log))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` completes; requests in flight finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connection info gives handlers the peer address (see `client::ClientAddr`).
    let app = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
