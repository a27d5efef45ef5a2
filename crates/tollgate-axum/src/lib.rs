//! Protect axum services with Tollgate tokens (or djangorestframework-simplejwt's: the same
//! claims, checks and error bodies).
//!
//! A service verifies tokens itself, without calling the auth server: with the keys of its
//! local settings, or with the public keys a Tollgate server publishes at
//! `/.well-known/jwks.json`.
//!
//! # Layout
//! - [`Verifier`]: where keys come from ([`Settings`](tollgate_core::Settings) or a
//!   [`JwksClient`]) and what a token must pass (AUDIENCE, ISSUER, LEEWAY,
//!   AUTH_TOKEN_CLASSES).
//! - [`AuthLayer`]: refuses requests without a valid token, with simplejwt's 401.
//! - Extractors: [`TokenUser`] (the token alone, no database), [`CurrentUser`] (loaded through
//!   the service's [`UserStore`]), [`VerifiedToken`], and the guards [`Staff`] and
//!   [`Superuser`] (403 otherwise). They need only `Verifier: FromRef<S>`.
//! - [`ws`]: WebSocket authentication from `?token=`, the header or the first message; of
//!   any token type if asked, and optionally letting a socket without a token stay anonymous.
//!
//! # Example
//! ```no_run
//! use axum::{extract::FromRef, routing::get, Router};
//! use tollgate_axum::{AuthLayer, JwksClient, TokenUser, Verifier};
//! use tollgate_core::Settings;
//!
//! #[derive(Clone, FromRef)]
//! struct AppState {
//!     verifier: Verifier,
//! }
//!
//! async fn hello(user: TokenUser) -> String {
//!     format!("hello, user {}", user.id)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let jwks = JwksClient::new("https://auth.example.com/.well-known/jwks.json")?;
//! let verifier = Verifier::with_jwks(&Settings::default(), jwks)?;
//! let app = Router::new()
//!     .route("/hello", get(hello))
//!     .layer(AuthLayer::new(verifier.clone()))
//!     .with_state(AppState { verifier });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod extract;
mod jwks;
mod layer;
mod verifier;
#[cfg(feature = "ws")]
pub mod ws;

pub use error::{AuthError, Rejection};
pub use extract::{BoxError, CurrentUser, Permissions, Staff, Superuser, TokenUser, UserStore};
pub use jwks::{JwksClient, JwksError};
pub use layer::{AuthLayer, AuthService};
pub use verifier::{VerifiedToken, Verifier, ANY_TOKEN_TYPE};
