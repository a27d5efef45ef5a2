//! A tower layer that refuses requests without a valid token before they reach a handler.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::AuthError;
use crate::verifier::Verifier;

/// Verifies the token of every request, puts the [`VerifiedToken`](crate::VerifiedToken) in
/// the request's extensions, and answers 401 itself (simplejwt's body and
/// `WWW-Authenticate: Bearer realm="api"`) when the token is missing or refused.
///
/// ```
/// use axum::{routing::get, Extension, Router};
/// use tollgate_axum::{AuthLayer, Verifier, VerifiedToken};
/// use tollgate_core::{settings::Secret, Settings};
///
/// async fn me(Extension(token): Extension<VerifiedToken>) -> String {
///     format!("{:?}", token.claims.get("user_id"))
/// }
///
/// let settings = Settings {
///     signing_key: Secret("a long random secret of at least 32 bytes!".into()),
///     ..Settings::default()
/// };
/// let verifier = Verifier::from_settings(&settings).unwrap();
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .layer(AuthLayer::new(verifier));
/// ```
#[derive(Debug, Clone)]
pub struct AuthLayer {
    verifier: Verifier,
    optional: bool,
}

impl AuthLayer {
    /// Requests without a valid token are refused.
    pub fn new(verifier: Verifier) -> AuthLayer {
        AuthLayer {
            verifier,
            optional: false,
        }
    }

    /// Requests without credentials pass (with no [`VerifiedToken`](crate::VerifiedToken));
    /// requests with a bad token are still refused, as Django REST framework refuses them.
    pub fn optional(verifier: Verifier) -> AuthLayer {
        AuthLayer {
            verifier,
            optional: true,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            verifier: self.verifier.clone(),
            optional: self.optional,
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    verifier: Verifier,
    optional: bool,
}

impl<S> Service<Request> for AuthService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The inner service that was polled ready handles this request; a fresh clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let optional = self.optional;
        Box::pin(async move {
            match verifier.authenticate(request.headers()).await {
                Ok(Some(token)) => {
                    request.extensions_mut().insert(token);
                }
                Ok(None) if optional => {}
                Ok(None) => {
                    return Ok(verifier.reject(AuthError::NotAuthenticated).into_response())
                }
                Err(error) => return Ok(verifier.reject(error).into_response()),
            }
            inner.call(request).await
        })
    }
}
