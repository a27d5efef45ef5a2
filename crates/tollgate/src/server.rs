//! Building the application and serving it on a bound listener until shutdown.

use std::future::Future;

use axum::extract::DefaultBodyLimit;
use axum::http::header::{CACHE_CONTROL, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tollgate_core::Settings;
use tower_http::cors::{AllowHeaders, AllowOrigin, Any, CorsLayer};

use crate::error::NeedsChallenge;
use crate::state::AppState;

/// The whole application: routes, body limit, `WWW-Authenticate` on 401s, security headers,
/// metrics when enabled, the access log, and CORS when configured.
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
    // One layer of three: each `Router::layer` wraps every route once more, and every wrapping
    // costs a boxed service clone and a boxed future per request. The access log is outermost.
    router = router.layer(
        tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn(crate::logging::access_log))
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
                        security_headers(response.headers_mut());
                        response
                    }
                },
            ))
            .layer(DefaultBodyLimit::max(state.settings.max_body_bytes)),
    );
    // Outermost, so that preflight requests are answered before routing.
    if let Some(cors) = cors(&state.settings) {
        router = router.layer(cors);
    }
    router.with_state(state)
}

/// Headers on every response: no content sniffing, and no caching unless the handler chose a
/// policy (responses carry tokens or a user's data).
fn security_headers(headers: &mut HeaderMap) {
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// CORS for CORS_ALLOWED_ORIGINS; none when empty, so browsers refuse cross-origin calls.
/// Credentials (the refresh cookie) only with CORS_ALLOW_CREDENTIALS, which settings validation
/// allows only with a list of origins, never `*`.
fn cors(settings: &Settings) -> Option<CorsLayer> {
    let origins = &settings.cors_allowed_origins;
    if origins.is_empty() {
        return None;
    }
    let allowed = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin.trim_end_matches('/')).ok()),
        )
    };
    // Browsers refuse `Access-Control-Allow-Headers: *` on a request with credentials: the
    // headers a preflight asks for are named back instead.
    let (credentials, headers) = if settings.cors_allow_credentials {
        (true, AllowHeaders::mirror_request())
    } else {
        (false, AllowHeaders::from(Any))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allowed)
            .allow_credentials(credentials)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(headers)
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Serves the application on `listener` until `shutdown` completes; requests in flight finish.
/// Connections are held to the timeouts and caps of the settings (see `connections`).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = crate::connections::Limits::of(&state.settings);
    // Delivers the outbox while the server runs; stops with it.
    let _sender = crate::outbox::start(state.clone());
    crate::connections::serve(listener, app(state), limits, shutdown).await
}
