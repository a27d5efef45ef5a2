//! The server's integration tests, in one binary: each module starts real servers (in
//! process, or the `tollgate` binary) on ephemeral ports and speaks HTTP, WebSocket or the
//! command line to them, against SQLite, PostgreSQL and Redis. One binary links the stack once
//! instead of once per area. Run one area with `cargo test -p tollgate --test api <module>::`.

#[macro_use]
mod common;

mod access_revocation;
mod admin;
mod admin_accounts;
mod admin_cli;
mod admin_console;
mod api_keys;
mod attacks;
mod browser_sessions;
mod chat_service;
mod claims_hook;
mod cli;
mod connections;
mod django_migration;
mod email_verification;
mod guessing;
mod hot_path;
mod identifiers;
mod import_django;
mod instances;
mod jwk_url;
mod key_rotation;
mod keys;
mod login;
mod mfa;
mod observability;
mod operations;
mod outage;
mod outbox;
mod password_reset;
mod protected_service;
mod redis;
mod sessions;
mod simplejwt_transcript;
mod token_settings;
mod user_cache;
mod users;
mod webhooks;
mod websocket;
