//! Tollgate: a JWT authentication server that speaks djangorestframework-simplejwt's token API.
//!
//! This crate is the server: the HTTP API over axum, the `tollgate` command line, and the
//! loading of settings. Tokens are minted and checked by `tollgate-core`; users and tokens are
//! kept by `tollgate-store`.
//!
//! # Layout
//! - [`config`]: settings from defaults, a TOML file and `TOLLGATE_*` environment variables.
//! - [`state`]: what every handler shares.
//! - [`server`]: the router and [`server::run`]; `connections`: accepting within caps, and
//!   closing idle and stalled connections.
//! - [`error`]: [`error::ApiError`], the one table from errors to statuses and bodies.
//! - [`keyring`]: the stored signing keys, reloaded while the server runs.
//! - [`throttle`]: password checks per account, identifier and address, registrations per address.
//! - [`logging`] and [`metrics`]: the access log, request ids, Prometheus metrics.
//! - `service/`: the operations under the API and the command line (issuing tokens, changing
//!   passwords), without HTTP.
//! - `api/`: one module per resource; `cli/`: one module per subcommand.
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod api;
mod auth;
pub mod cli;
mod client;
pub mod config;
mod connections;
mod error;
mod keyring;
mod logging;
mod mail;
mod metrics;
mod outbox;
pub mod server;
mod service;
mod startup;
pub mod state;
mod throttle;
mod user_cache;
mod webhooks;
