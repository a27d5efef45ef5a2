//! The HTTP API: one module per resource, routed here.

mod admin;
mod api_keys;
mod body;
mod console;
mod cookie;
mod health;
mod index;
mod jwks;
mod mfa;
pub(crate) mod openapi;
mod origin;
mod passkeys;
mod recovery;
mod sessions;
mod token;
pub(crate) mod users;
mod verification;
mod ws;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use tollgate_core::Settings;

use crate::error::ApiError;
use crate::state::AppState;

/// The demonstration WebSocket: greets its user, then echoes.
pub(crate) const WS_ECHO_PATH: &str = "/ws/echo/";

/// Where the public key set is published (RFC 8414's well-known location).
pub(crate) const JWKS_PATH: &str = "/.well-known/jwks.json";

/// An endpoint: its path, the method it answers, and its handler.
pub(crate) struct Endpoint {
    pub(crate) path: String,
    /// Read by [`clashing_route`] and the OpenAPI completeness test; routing uses the
    /// handler's own method filter.
    pub(crate) method: Method,
    handler: MethodRouter<AppState>,
}

/// Every endpoint of the API at the paths the settings give. The OpenAPI test checks that each
/// is described, so a route belongs here, not in an ad-hoc `.route()`.
pub(crate) fn endpoints(s: &Settings) -> Vec<Endpoint> {
    let mut list = vec![
        endpoint(&s.token_obtain_path, Method::POST, token::obtain_pair),
        endpoint(&s.token_refresh_path, Method::POST, token::refresh),
        endpoint(&s.token_verify_path, Method::POST, token::verify),
        endpoint(&s.token_blacklist_path, Method::POST, token::blacklist),
        endpoint(&s.token_sliding_path, Method::POST, token::obtain_sliding),
        endpoint(
            &s.token_sliding_refresh_path,
            Method::POST,
            token::refresh_sliding,
        ),
        endpoint(&s.index_path, Method::GET, index::index),
        endpoint("/healthz", Method::GET, health::healthz),
        endpoint("/readyz", Method::GET, health::readyz),
        endpoint(JWKS_PATH, Method::GET, jwks::jwks),
        endpoint(WS_ECHO_PATH, Method::GET, ws::echo),
        endpoint(&s.user_path, Method::GET, users::me),
        endpoint(&s.user_path, Method::PUT, users::update_me),
        endpoint(&s.user_path, Method::PATCH, users::update_me),
        endpoint(&s.user_password_path, Method::POST, users::change_password),
        endpoint(
            &s.password_reset_path,
            Method::POST,
            recovery::reset_password,
        ),
        endpoint(
            &s.password_reset_confirm_path,
            Method::POST,
            recovery::reset_password_confirm,
        ),
        endpoint(&s.activation_path, Method::POST, verification::activation),
        endpoint(
            &s.email_change_path,
            Method::POST,
            verification::confirm_email,
        ),
        endpoint(
            &s.resend_activation_path,
            Method::POST,
            verification::resend_activation,
        ),
        endpoint(&s.sessions_path, Method::GET, sessions::list),
        endpoint(&s.sessions_path, Method::DELETE, sessions::revoke_all),
        endpoint(&session_path(s), Method::DELETE, sessions::revoke),
        endpoint(
            &s.token_blacklist_all_path,
            Method::POST,
            sessions::blacklist_all,
        ),
        endpoint(&s.token_issue_path, Method::POST, api_keys::issue),
    ];
    let mfa = mfa_paths(s);
    list.extend([
        endpoint(&mfa.login, Method::POST, mfa::complete_login),
        endpoint(&mfa.status, Method::GET, mfa::status),
        endpoint(&mfa.totp, Method::POST, mfa::begin_totp),
        endpoint(&mfa.totp, Method::DELETE, mfa::disable_totp),
        endpoint(&mfa.totp_confirm, Method::POST, mfa::confirm_totp),
        endpoint(&mfa.recovery_codes, Method::POST, mfa::renew_recovery_codes),
        endpoint(&mfa.passkeys, Method::POST, passkeys::begin_registration),
        endpoint(
            &mfa.passkeys_confirm,
            Method::POST,
            passkeys::finish_registration,
        ),
        endpoint(&mfa.passkey, Method::DELETE, passkeys::remove),
        endpoint(
            &mfa.login_passkey,
            Method::POST,
            passkeys::begin_second_factor,
        ),
        endpoint(&mfa.sign_in_begin, Method::POST, passkeys::begin_sign_in),
        endpoint(&mfa.sign_in, Method::POST, passkeys::finish_sign_in),
    ]);
    if s.registration_enabled {
        list.push(endpoint(&s.users_path, Method::POST, users::register));
    }
    list.extend(admin::endpoints());
    list
}

/// Where the second-factor endpoints live: under TOKEN_OBTAIN_PATH for the second step of a
/// login, under USER_PATH for the caller's own factors.
pub(crate) struct MfaPaths {
    pub(crate) login: String,
    pub(crate) status: String,
    pub(crate) totp: String,
    pub(crate) totp_confirm: String,
    pub(crate) recovery_codes: String,
    pub(crate) passkeys: String,
    pub(crate) passkeys_confirm: String,
    pub(crate) passkey: String,
    pub(crate) login_passkey: String,
    pub(crate) sign_in_begin: String,
    pub(crate) sign_in: String,
}

pub(crate) fn mfa_paths(s: &Settings) -> MfaPaths {
    let under = |base: &str, rest: &str| format!("{}/{rest}", base.trim_end_matches('/'));
    MfaPaths {
        login: under(&s.token_obtain_path, "mfa/"),
        status: under(&s.user_path, "mfa/"),
        totp: under(&s.user_path, "mfa/totp/"),
        totp_confirm: under(&s.user_path, "mfa/totp/confirm/"),
        recovery_codes: under(&s.user_path, "mfa/recovery_codes/"),
        passkeys: under(&s.user_path, "mfa/passkeys/"),
        passkeys_confirm: under(&s.user_path, "mfa/passkeys/confirm/"),
        passkey: under(&s.user_path, "mfa/passkeys/{id}/"),
        login_passkey: under(&s.token_obtain_path, "mfa/passkey/"),
        sign_in_begin: under(&s.token_obtain_path, "passkey/begin/"),
        sign_in: under(&s.token_obtain_path, "passkey/"),
    }
}

/// A method and path that two routes would both answer (two endpoint path settings with one
/// value, or one set to a path Tollgate serves itself), which the router cannot hold: found
/// before the server starts rather than as a panic when it builds its routes.
pub(crate) fn clashing_route(s: &Settings) -> Option<(Method, String)> {
    let mut routes: Vec<(Method, String)> = endpoints(s)
        .into_iter()
        .map(|endpoint| (endpoint.method, endpoint.path))
        .collect();
    let mut fixed = Vec::new();
    if s.api_docs_enabled {
        fixed.extend(["/api/docs", "/api/docs/", "/api/schema/"]);
    }
    if s.metrics_enabled {
        fixed.push("/metrics");
    }
    routes.extend(fixed.into_iter().map(|path| (Method::GET, path.to_owned())));
    if s.admin_console_enabled {
        routes.extend(console::routes_served());
    }
    routes
        .iter()
        .enumerate()
        .find(|(index, route)| routes[..*index].contains(route))
        .map(|(_, route)| route.clone())
}

/// Where one session lives: `<SESSIONS_PATH>{id}/` (the route's parameter).
pub(crate) fn session_path(s: &Settings) -> String {
    format!("{}{{id}}/", s.sessions_path)
}

fn endpoint<H, T>(path: &str, method: Method, handler: H) -> Endpoint
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = match method {
        Method::GET => MethodFilter::GET,
        Method::PUT => MethodFilter::PUT,
        Method::PATCH => MethodFilter::PATCH,
        Method::DELETE => MethodFilter::DELETE,
        _ => MethodFilter::POST,
    };
    Endpoint {
        path: path.to_owned(),
        method,
        handler: on(filter, handler),
    }
}

/// Every route, at the paths the settings give, and the API description and the web console
/// when enabled.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    // Endpoints sharing a path (GET and PUT of one resource) are merged into one route.
    let mut by_path: Vec<(String, MethodRouter<AppState>)> = Vec::new();
    for Endpoint { path, handler, .. } in endpoints(&state.settings) {
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(handler),
            None => by_path.push((path, handler)),
        }
    }
    for (path, handler) in by_path {
        router = router.route(&path, handler);
    }
    if state.settings.admin_console_enabled {
        router = router.merge(console::routes(state));
    }
    if state.settings.api_docs_enabled {
        // No validator: Swagger UI would otherwise send the schema's address to
        // validator.swagger.io from every visitor's browser, and show a badge from there.
        let config = utoipa_swagger_ui::Config::default().validator_url("none");
        let docs = utoipa_swagger_ui::SwaggerUi::new("/api/docs/")
            .url("/api/schema/", openapi::document(&state.settings))
            .config(config);
        router = router.merge(docs);
    }
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_endpoints_on_one_method_and_path_are_found() {
        assert_eq!(clashing_route(&Settings::default()), None);
        let same = Settings {
            token_refresh_path: "/api/token/".into(),
            ..Settings::default()
        };
        assert_eq!(
            clashing_route(&same),
            Some((Method::POST, "/api/token/".to_owned()))
        );
        // Different methods on one path share a route.
        let shared = Settings {
            user_path: "/api/token/".into(),
            ..Settings::default()
        };
        assert_eq!(clashing_route(&shared), None);
        // Tollgate's own paths count, when they are served.
        let docs = Settings {
            index_path: "/api/schema/".into(),
            ..Settings::default()
        };
        assert_eq!(
            clashing_route(&docs),
            Some((Method::GET, "/api/schema/".to_owned()))
        );
        let no_docs = Settings {
            api_docs_enabled: false,
            ..docs
        };
        assert_eq!(clashing_route(&no_docs), None);
        let health = Settings {
            index_path: "/healthz".into(),
            ..Settings::default()
        };
        assert!(clashing_route(&health).is_some());
        // The console's pages count while it is served.
        let console = Settings {
            index_path: "/admin/users/".into(),
            ..Settings::default()
        };
        assert_eq!(
            clashing_route(&console),
            Some((Method::GET, "/admin/users/".to_owned()))
        );
        let no_console = Settings {
            admin_console_enabled: false,
            ..console
        };
        assert_eq!(clashing_route(&no_console), None);
    }

    /// Every endpoint the server routes is in the OpenAPI description, with its method.
    #[test]
    fn every_endpoint_is_described() {
        for settings in [
            Settings::default(),
            Settings {
                index_path: "/me/".into(),
                ..Settings::default()
            },
        ] {
            let doc = openapi::document(&settings);
            for endpoint in endpoints(&settings) {
                let item = doc.paths.paths.get(&endpoint.path).unwrap_or_else(|| {
                    panic!("{} is not in the OpenAPI description", endpoint.path)
                });
                let described = match endpoint.method {
                    Method::GET => item.get.is_some(),
                    Method::POST => item.post.is_some(),
                    Method::PUT => item.put.is_some(),
                    Method::PATCH => item.patch.is_some(),
                    Method::DELETE => item.delete.is_some(),
                    _ => false,
                };
                assert!(
                    described,
                    "{} {} is not described",
                    endpoint.method, endpoint.path
                );
            }
            assert_eq!(
                doc.paths.paths.len(),
                endpoints(&settings)
                    .iter()
                    .map(|e| &e.path)
                    .collect::<std::collections::HashSet<_>>()
                    .len(),
                "the description lists a path the server does not route"
            );
        }
    }
}
