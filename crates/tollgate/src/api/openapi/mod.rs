//! The OpenAPI 3.1 description of the API, served at `/api/schema/`, and the interactive docs
//! page at `/api/docs/` (Swagger UI, its assets compiled into the binary: no CDN).
//!
//! Each area's operations are described in a module of their own (`token`, `account`,
//! `operations`, `admin`) beside the schemas of their bodies, at the default paths; [`document`] merges
//! them and moves them to the configured ones. A test checks that every route the server
//! answers is described.

// The schema types exist only to describe bodies; nothing constructs them.
#![allow(dead_code)]

mod account;
mod admin;
mod mfa;
mod operations;
mod token;

use std::collections::BTreeMap;

use serde::Serialize;
use tollgate_core::Settings;
use utoipa::openapi::OpenApi as Document;
use utoipa::{OpenApi, ToSchema};

/// An empty object: the request succeeded.
#[derive(Serialize, ToSchema)]
pub(super) struct Empty {}

/// An error with a message: `{"detail": "..."}`, with a machine-readable `code` on token
/// errors and, on protected endpoints, the reason of each token type tried.
#[derive(Serialize, ToSchema)]
pub(super) struct ErrorDetail {
    detail: String,
    code: Option<String>,
    messages: Option<Vec<TokenClassMessage>>,
}

/// Why one token type refused the token.
#[derive(Serialize, ToSchema)]
pub(super) struct TokenClassMessage {
    token_class: String,
    token_type: String,
    message: String,
}

/// Field errors: each field with its messages, e.g. `{"password": ["This field is required."]}`;
/// errors of no field under `non_field_errors`.
#[derive(Serialize, ToSchema)]
pub(super) struct FieldErrors(BTreeMap<String, Vec<String>>);

/// A 400: field errors, or a body that could not be read (`{"detail": "JSON parse error - …"}`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum BadRequest {
    Fields(FieldErrors),
    Unreadable(ErrorDetail),
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate", description = "JWT authentication with djangorestframework-simplejwt's token API."),
    modifiers(&BearerScheme),
)]
struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        // `Authorization: Api-Key <key>`: the whole header value, scheme included.
        let api_key = utoipa::openapi::security::ApiKeyValue::with_description(
            "Authorization",
            "`Api-Key <key>`, a key made by `tollgate apikey create`",
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(api_key)),
        );
    }
}

/// The description with each path moved to where the settings put it.
pub(crate) fn document(settings: &Settings) -> Document {
    let mut doc = ApiDoc::openapi();
    doc.merge(token::Paths::openapi());
    doc.merge(account::Paths::openapi());
    doc.merge(operations::Paths::openapi());
    doc.merge(mfa::Paths::openapi());
    doc.merge(admin::Paths::openapi());
    let session_path = super::session_path(settings);
    let mfa = super::mfa_paths(settings);
    let moved: Vec<(&str, &str)> = vec![
        ("/api/token/mfa/", &mfa.login),
        ("/api/user/mfa/", &mfa.status),
        ("/api/user/mfa/totp/", &mfa.totp),
        ("/api/user/mfa/totp/confirm/", &mfa.totp_confirm),
        ("/api/user/mfa/recovery_codes/", &mfa.recovery_codes),
        ("/api/user/mfa/passkeys/", &mfa.passkeys),
        ("/api/user/mfa/passkeys/confirm/", &mfa.passkeys_confirm),
        ("/api/user/mfa/passkeys/{id}/", &mfa.passkey),
        ("/api/token/mfa/passkey/", &mfa.login_passkey),
        ("/api/token/passkey/begin/", &mfa.sign_in_begin),
        ("/api/token/passkey/", &mfa.sign_in),
        ("/api/sessions/", &settings.sessions_path),
        ("/api/sessions/{id}/", &session_path),
        (
            "/api/token/blacklist/all/",
            &settings.token_blacklist_all_path,
        ),
        ("/api/token/", &settings.token_obtain_path),
        ("/api/token/refresh/", &settings.token_refresh_path),
        ("/api/token/verify/", &settings.token_verify_path),
        ("/api/token/blacklist/", &settings.token_blacklist_path),
        ("/api/token/sliding/", &settings.token_sliding_path),
        (
            "/api/token/sliding/refresh/",
            &settings.token_sliding_refresh_path,
        ),
        ("/api/token/issue/", &settings.token_issue_path),
        ("/api/index/", &settings.index_path),
        ("/api/users/", &settings.users_path),
        ("/api/user/", &settings.user_path),
        ("/api/user/password/", &settings.user_password_path),
        ("/api/users/reset_password/", &settings.password_reset_path),
        (
            "/api/users/reset_password_confirm/",
            &settings.password_reset_confirm_path,
        ),
        ("/api/users/activation/", &settings.activation_path),
        ("/api/users/confirm_email/", &settings.email_change_path),
        (
            "/api/users/resend_activation/",
            &settings.resend_activation_path,
        ),
    ];
    let mut paths = std::mem::take(&mut doc.paths.paths);
    if !settings.registration_enabled {
        paths.remove("/api/users/");
    }
    // Every item is taken out before any is put back, so that a path configured where another
    // one's default lies is not overwritten.
    let taken: Vec<_> = moved
        .into_iter()
        .filter_map(|(default, configured)| Some((configured, paths.remove(default)?)))
        .collect();
    for (configured, item) in taken {
        paths.insert(configured.to_owned(), item);
    }
    doc.paths.paths = paths;
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}
