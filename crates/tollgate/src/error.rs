//! The one error type of the HTTP API and the one table from errors to statuses and bodies.
//!
//! Bodies are simplejwt's and Django REST framework's, word for word, because clients written
//! for a Django backend match on them.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use tollgate_axum::AuthError;
use tollgate_core::body::BodyError;
use tollgate_core::TokenError;
use tollgate_store::{Dependency, StoreError};

use crate::service::{ApiKeyRefusal, ServiceError};

/// The `WWW-Authenticate` challenge of the endpoints authenticated by an API key.
const API_KEY_CHALLENGE: &str = "Api-Key realm=\"api\"";

/// Everything a handler can answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Field validation errors, in the serializer's field order: `{"field": ["message"]}`.
    #[error("invalid fields")]
    Fields(Vec<(String, Vec<String>)>),
    /// Field validation errors of a nested serializer: `{"user": {"email": ["message"]},
    /// "money": ["message"]}`, the object's fields under `nested`.
    #[error("invalid fields")]
    NestedFields {
        /// The field that holds the object.
        nested: &'static str,
        /// The errors of the fields inside it.
        inner: Vec<(String, Vec<String>)>,
        /// The errors of the others.
        outer: Vec<(String, Vec<String>)>,
    },
    /// A validation error that belongs to no field: `{"non_field_errors": ["message"]}`.
    #[error("{0}")]
    NonField(String),
    /// The body is not valid JSON.
    #[error("JSON parse error - {0}")]
    JsonParse(String),
    /// The body's content type is neither JSON nor a form.
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    /// The body is larger than MAX_BODY_BYTES.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Wrong password, unknown user or inactive user: one answer for all.
    #[error("no active account found with the given credentials")]
    NoActiveAccount,
    /// A refresh for a user who was deleted or deactivated.
    #[error("no active account found for the given token")]
    NoActiveAccountForToken,
    /// A token endpoint refused the token.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// A protected endpoint refused the request's credentials, as the `tollgate-axum` extractor
    /// refuses them (the same bodies, codes and WebSocket close reasons).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A request authenticated by the refresh cookie that does not come from an allowed origin.
    #[error("CSRF Failed: {0}")]
    Csrf(String),
    /// HTTP Basic credentials that are malformed or wrong, in DRF's words.
    #[error("basic authentication failed: {0}")]
    BasicAuthFailed(&'static str),
    /// A protected endpoint got a token minted before the user's password changed.
    #[error("the user's password has been changed")]
    PasswordChanged,
    /// A refresh with a token minted before the user's password changed.
    #[error("the user's password has been changed (refresh)")]
    PasswordChangedForToken,
    /// A plain request to an endpoint that speaks only WebSocket.
    #[error("upgrade required")]
    UpgradeRequired,
    /// No route has this path.
    #[error("not found")]
    NotFound,
    /// The route exists but not for this method.
    #[error("method {0} not allowed")]
    MethodNotAllowed(Method),
    /// A dependency of the readiness check is down: each dependency and whether it answered.
    #[error("not ready")]
    NotReady(Vec<(&'static str, bool)>),
    /// Too many failed logins for the account or the address; retry after this long.
    #[error("login throttled")]
    Throttled(std::time::Duration),
    /// Login for an account (or identifier) locked after LOGIN_LOCKOUT_THRESHOLD failures;
    /// `Some(wait)` when the lock ends by itself.
    #[error("account locked")]
    AccountLocked(Option<std::time::Duration>),
    /// A dependency (the database, Redis) is unreachable or overloaded: the request may
    /// succeed if sent again shortly. The cause is logged, never sent.
    #[error("{dependency} unavailable: {cause}")]
    Unavailable {
        /// Which dependency failed.
        dependency: Dependency,
        /// How it failed.
        cause: String,
    },
    /// A correct password of an account whose email address is not confirmed yet.
    #[error("email not verified")]
    EmailNotVerified,
    /// An activation link for an address already confirmed: djoser's 403.
    #[error("stale token")]
    StaleToken,
    /// The request needs a feature that is turned off: `{"detail", "code": "not_configured"}`.
    #[error("{0}")]
    NotConfigured(&'static str),
    /// The password was right and the second factor is due: 401 `mfa_required` with the
    /// `mfa_token` of the second step and the methods the user has.
    #[error("multi-factor authentication required")]
    SecondFactorDue {
        mfa_token: String,
        methods: Vec<&'static str>,
    },
    /// The password was right and MFA_REQUIRED demands a factor the user has yet to enrol:
    /// 401 `mfa_enrollment_required` with the `mfa_token` that enrols one.
    #[error("multi-factor enrolment required")]
    EnrollmentDue { mfa_token: String },
    /// A refusal with its own status, message and code: `{"detail", "code"}`.
    #[error("{detail}")]
    Refused {
        status: StatusCode,
        detail: &'static str,
        code: &'static str,
    },
    /// The claims hook failed (CLAIMS_HOOK_FAILURE = deny): nothing was issued. The cause is
    /// logged, never sent.
    #[error("claims hook failed: {0}")]
    ClaimsHookFailed(String),
    /// The request's API key was missing, malformed, unknown or revoked: 401 with an
    /// `Api-Key` challenge.
    #[error("API key refused: {message}")]
    ApiKey {
        /// The `detail` of the answer.
        message: &'static str,
        /// Its `code`.
        code: &'static str,
    },
    /// The API key lacks the scope the endpoint needs.
    #[error("API key without scope {0}")]
    ApiKeyScope(&'static str),
    /// The user a request names by id or username does not exist.
    #[error("no such user")]
    NoSuchUser,
    /// The user a request names by id or username is inactive.
    #[error("inactive user")]
    InactiveUser,
    /// Another change was committed at the same time: 409 `{"detail", "code": "conflict"}`.
    #[error("{0}")]
    Conflict(&'static str),
    /// A page past the last one, or not a number: DRF's 404 `{"detail": "Invalid page."}`.
    #[error("invalid page")]
    InvalidPage,
    /// Anything that is not the client's fault. The cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How long a client is asked to wait (`Retry-After`) when a dependency is unavailable: long
/// enough not to hammer a database that is coming back, short enough that a restart or a
/// failover goes unnoticed by a client that retries.
pub(crate) const UNAVAILABLE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

impl From<BodyError> for ApiError {
    fn from(err: BodyError) -> ApiError {
        match err {
            BodyError::Fields(fields) => ApiError::Fields(fields),
            BodyError::NonField(message) => ApiError::NonField(message),
            BodyError::JsonParse(message) => ApiError::JsonParse(message),
            BodyError::UnsupportedMediaType(media_type) => {
                ApiError::UnsupportedMediaType(media_type)
            }
            // Every kind is mapped above; a new one is a client error until it is.
            _ => ApiError::NonField(err.to_string()),
        }
    }
}

impl ApiError {
    /// An internal error from any displayable cause.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(cause.to_string())
    }

    /// Why a token was refused, for the `tokens_rejected` metric.
    fn reject_reason(&self) -> Option<&'static str> {
        let of = |err: &TokenError| match err {
            TokenError::Expired | TokenError::ClaimExpired(_) => "expired",
            TokenError::Blacklisted => "blacklisted",
            TokenError::WrongType | TokenError::NoType => "wrong_type",
            TokenError::MissingClaim(_) | TokenError::NoId => "missing_claim",
            _ => "invalid",
        };
        match self {
            ApiError::Token(err) => Some(of(err)),
            ApiError::Auth(AuthError::NoValidTokenType(refusals)) => {
                refusals.first().map(|r| of(&r.error))
            }
            ApiError::Auth(AuthError::NoUserIdentification) => Some("no_user_claim"),
            ApiError::Auth(AuthError::UserNotFound) => Some("user_not_found"),
            ApiError::Auth(AuthError::UserInactive) => Some("user_inactive"),
            ApiError::NoActiveAccountForToken => Some("user_not_active"),
            ApiError::PasswordChanged | ApiError::PasswordChangedForToken => {
                Some("password_changed")
            }
            _ => None,
        }
    }

    /// The close code and reason that end a WebSocket for this error: 4401 (or 4403, 1013 for
    /// an unavailable dependency, 1011 for another server error) and `code: message`, with
    /// simplejwt's code (`not_authenticated` when the body has none) and the first refusal's
    /// message, e.g. `token_not_valid: Token is expired`.
    pub(crate) fn close_frame(&self) -> (u16, String) {
        let (status, body) = self.status_and_body();
        if let ApiError::Auth(err) = self {
            let code = match status {
                StatusCode::FORBIDDEN => tollgate_axum::ws::CLOSE_FORBIDDEN,
                status if status.is_server_error() => 1011,
                _ => tollgate_axum::ws::CLOSE_UNAUTHENTICATED,
            };
            return (code, err.reason());
        }
        let code = match status {
            StatusCode::FORBIDDEN => tollgate_axum::ws::CLOSE_FORBIDDEN,
            // Try Again Later.
            StatusCode::SERVICE_UNAVAILABLE => 1013,
            status if status.is_server_error() => 1011,
            _ => tollgate_axum::ws::CLOSE_UNAUTHENTICATED,
        };
        let name = body
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("not_authenticated");
        let message = body
            .pointer("/messages/0/message")
            .or_else(|| body.get("detail"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        (code, format!("{name}: {message}"))
    }

    /// The status and JSON body of the answer (the console shows the body's words).
    pub(crate) fn status_and_body(&self) -> (StatusCode, Value) {
        let detail = |text: &str| json!({ "detail": text });
        let coded = |text: &str, code: &str| json!({ "detail": text, "code": code });
        match self {
            ApiError::Fields(fields) => {
                let map: Map<String, Value> = fields
                    .iter()
                    .map(|(field, messages)| (field.clone(), json!(messages)))
                    .collect();
                (StatusCode::BAD_REQUEST, Value::Object(map))
            }
            ApiError::NestedFields {
                nested,
                inner,
                outer,
            } => {
                let errors = |fields: &Vec<(String, Vec<String>)>| -> Map<String, Value> {
                    fields
                        .iter()
                        .map(|(field, messages)| (field.clone(), json!(messages)))
                        .collect()
                };
                let mut map = Map::new();
                if !inner.is_empty() {
                    map.insert((*nested).to_owned(), Value::Object(errors(inner)));
                }
                map.extend(errors(outer));
                (StatusCode::BAD_REQUEST, Value::Object(map))
            }
            ApiError::NonField(message) => (
                StatusCode::BAD_REQUEST,
                json!({ "non_field_errors": [message] }),
            ),
            ApiError::JsonParse(_) => (StatusCode::BAD_REQUEST, detail(&self.to_string())),
            ApiError::UnsupportedMediaType(media_type) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                detail(&format!(
                    "Unsupported media type \"{media_type}\" in request."
                )),
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                detail("Request body is too large."),
            ),
            ApiError::NoActiveAccount => (
                StatusCode::UNAUTHORIZED,
                detail("No active account found with the given credentials"),
            ),
            ApiError::NoActiveAccountForToken => (
                StatusCode::UNAUTHORIZED,
                detail("No active account found for the given token."),
            ),
            ApiError::Token(err) => (
                StatusCode::UNAUTHORIZED,
                coded(&err.to_string(), "token_not_valid"),
            ),
            ApiError::Auth(err) => (err.status(), err.body()),
            ApiError::Csrf(_) => (StatusCode::FORBIDDEN, detail(&self.to_string())),
            ApiError::BasicAuthFailed(message) => (StatusCode::UNAUTHORIZED, detail(message)),
            ApiError::PasswordChanged => (
                StatusCode::UNAUTHORIZED,
                coded("The user's password has been changed.", "password_changed"),
            ),
            ApiError::PasswordChangedForToken => (
                StatusCode::UNAUTHORIZED,
                detail("The user's password has been changed."),
            ),
            ApiError::UpgradeRequired => (
                StatusCode::UPGRADE_REQUIRED,
                detail("This endpoint speaks WebSocket: send an upgrade request."),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, detail("Not found.")),
            ApiError::MethodNotAllowed(method) => (
                StatusCode::METHOD_NOT_ALLOWED,
                detail(&format!("Method \"{method}\" not allowed.")),
            ),
            ApiError::NotReady(checks) => {
                let mut body = Map::new();
                body.insert("status".into(), "unavailable".into());
                for (name, up) in checks {
                    body.insert((*name).into(), if *up { "ok" } else { "down" }.into());
                }
                (StatusCode::SERVICE_UNAVAILABLE, Value::Object(body))
            }
            ApiError::Throttled(wait) => {
                // DRF's Throttled message, singular for one second.
                let seconds = retry_after_seconds(*wait);
                let unit = if seconds == 1 { "second" } else { "seconds" };
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    detail(&format!(
                        "Request was throttled. Expected available in {seconds} {unit}."
                    )),
                )
            }
            ApiError::AccountLocked(_) => (
                StatusCode::FORBIDDEN,
                coded(
                    "This account is locked after too many failed logins. Try again later or \
                     ask an administrator to unlock it.",
                    "account_locked",
                ),
            ),
            ApiError::Unavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                coded(
                    "The service is temporarily unavailable. Try again shortly.",
                    "service_unavailable",
                ),
            ),
            ApiError::EmailNotVerified => (
                StatusCode::UNAUTHORIZED,
                coded("E-mail is not verified.", "email_not_verified"),
            ),
            ApiError::StaleToken => (StatusCode::FORBIDDEN, detail("Stale token for given user.")),
            ApiError::NotConfigured(message) => {
                (StatusCode::BAD_REQUEST, coded(message, "not_configured"))
            }
            ApiError::SecondFactorDue { mfa_token, methods } => (
                StatusCode::UNAUTHORIZED,
                json!({
                    "detail": "Multi-factor authentication required.",
                    "code": "mfa_required",
                    "mfa_token": mfa_token,
                    "methods": methods,
                }),
            ),
            ApiError::EnrollmentDue { mfa_token } => (
                StatusCode::UNAUTHORIZED,
                json!({
                    "detail": "This account must set up multi-factor authentication.",
                    "code": "mfa_enrollment_required",
                    "mfa_token": mfa_token,
                }),
            ),
            ApiError::Refused {
                status,
                detail,
                code,
            } => (*status, coded(detail, code)),
            ApiError::ClaimsHookFailed(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                coded(
                    "The claims hook did not answer as expected; no token was issued. Try \
                     again shortly.",
                    "claims_hook_failed",
                ),
            ),
            ApiError::ApiKey { message, code } => (StatusCode::UNAUTHORIZED, coded(message, code)),
            ApiError::ApiKeyScope(scope) => (
                StatusCode::FORBIDDEN,
                coded(
                    &format!("This API key does not have the scope {scope}."),
                    "permission_denied",
                ),
            ),
            ApiError::NoSuchUser => (
                StatusCode::NOT_FOUND,
                coded("No account found for the given user.", "user_not_found"),
            ),
            ApiError::InactiveUser => (
                StatusCode::BAD_REQUEST,
                coded("User is inactive", "user_inactive"),
            ),
            ApiError::Conflict(message) => (StatusCode::CONFLICT, coded(message, "conflict")),
            ApiError::InvalidPage => (StatusCode::NOT_FOUND, detail("Invalid page.")),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                detail("A server error occurred."),
            ),
        }
    }
}

/// A dependency that cannot serve now is a 503; any other store failure is a defect (500).
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::Unavailable { dependency, cause } => {
                ApiError::Unavailable { dependency, cause }
            }
            other => ApiError::internal(other),
        }
    }
}

/// The service layer's errors in the API's terms: refusals in simplejwt's and DRF's bodies,
/// the rest as the store's and the codec's errors read.
impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> ApiError {
        match err {
            ServiceError::PasswordRefused {
                old_password_wrong,
                problems,
            } => {
                let mut fields = Vec::new();
                if old_password_wrong {
                    let message =
                        "Your old password was entered incorrectly. Please enter it again.";
                    fields.push(("old_password".to_owned(), vec![message.to_owned()]));
                }
                if !problems.is_empty() {
                    fields.push(("new_password".to_owned(), problems));
                }
                ApiError::Fields(fields)
            }
            ServiceError::InvalidFields(fields) => ApiError::Fields(fields),
            ServiceError::InvalidNestedFields {
                nested,
                inner,
                outer,
            } => ApiError::NestedFields {
                nested,
                inner,
                outer,
            },
            ServiceError::Body(err) => err.into(),
            ServiceError::NoActiveAccount => ApiError::NoActiveAccount,
            ServiceError::Throttled(wait) => ApiError::Throttled(wait),
            ServiceError::AccountLocked(wait) => ApiError::AccountLocked(wait),
            ServiceError::Token(err) => ApiError::Token(err),
            ServiceError::BlacklistedOnVerify => {
                ApiError::NonField(TokenError::Blacklisted.to_string())
            }
            ServiceError::NoActiveAccountForToken => ApiError::NoActiveAccountForToken,
            ServiceError::PasswordChangedForToken => ApiError::PasswordChangedForToken,
            ServiceError::UserNotFound => ApiError::Auth(AuthError::UserNotFound),
            // Session ids of other users read as unknown ones.
            ServiceError::SessionNotFound => ApiError::NotFound,
            ServiceError::NotConfigured(message) => ApiError::NotConfigured(message),
            ServiceError::EmailNotVerified => ApiError::EmailNotVerified,
            ServiceError::StaleToken => ApiError::StaleToken,
            ServiceError::ClaimsHookFailed(cause) => ApiError::ClaimsHookFailed(cause),
            ServiceError::ApiKeyRefused(refusal) => {
                let (message, code) = match refusal {
                    ApiKeyRefusal::Missing => (
                        "Authentication credentials were not provided: this endpoint takes \
                         `Authorization: Api-Key <key>`.",
                        "not_authenticated",
                    ),
                    ApiKeyRefusal::Malformed => (
                        "Invalid API key header: `Api-Key` must be followed by one key.",
                        "authentication_failed",
                    ),
                    ApiKeyRefusal::Invalid => ("Invalid API key.", "authentication_failed"),
                };
                ApiError::ApiKey { message, code }
            }
            ServiceError::ApiKeyScope(scope) => ApiError::ApiKeyScope(scope),
            ServiceError::NoSuchUser => ApiError::NoSuchUser,
            ServiceError::InactiveUser => ApiError::InactiveUser,
            ServiceError::PermissionDenied => ApiError::Refused {
                status: StatusCode::FORBIDDEN,
                detail: "You do not have permission to perform this action.",
                code: "permission_denied",
            },
            ServiceError::MfaRequired => ApiError::Refused {
                status: StatusCode::FORBIDDEN,
                detail: "This action needs a login with a second factor.",
                code: "mfa_required",
            },
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::InvalidPage => ApiError::InvalidPage,
            ServiceError::Refused { detail, code } => ApiError::Refused {
                status: StatusCode::BAD_REQUEST,
                detail,
                code,
            },
            ServiceError::Conflict(message) => ApiError::Conflict(message),
            ServiceError::Store(err) => err.into(),
            ServiceError::SecondFactorDue { mfa_token, methods } => {
                ApiError::SecondFactorDue { mfa_token, methods }
            }
            ServiceError::EnrollmentDue { mfa_token } => ApiError::EnrollmentDue { mfa_token },
            ServiceError::SecondFactorRequired => ApiError::Refused {
                status: StatusCode::UNAUTHORIZED,
                detail: "This account uses multi-factor authentication: sign in at the token \
                         endpoint instead of with HTTP Basic.",
                code: "mfa_required",
            },
            ServiceError::MfaTokenInvalid => ApiError::Refused {
                status: StatusCode::UNAUTHORIZED,
                detail: "The mfa_token is invalid or has expired. Sign in again.",
                code: "mfa_token_invalid",
            },
            ServiceError::WrongCode => ApiError::Refused {
                status: StatusCode::UNAUTHORIZED,
                detail: "The code is not valid.",
                code: "mfa_code_invalid",
            },
            ServiceError::MfaAlreadyEnabled => ApiError::Refused {
                status: StatusCode::BAD_REQUEST,
                detail: "TOTP is already enabled: disable it before enrolling a new secret.",
                code: "mfa_already_enabled",
            },
            ServiceError::PasskeyRefused => ApiError::Refused {
                status: StatusCode::UNAUTHORIZED,
                detail: "The passkey was not accepted. Begin again.",
                code: "passkey_invalid",
            },
            ServiceError::FactorNotFound => ApiError::NotFound,
            ServiceError::MfaNotEnabled => ApiError::Refused {
                status: StatusCode::BAD_REQUEST,
                detail: "No second factor is enabled.",
                code: "mfa_not_enabled",
            },
            other => ApiError::internal(other),
        }
    }
}

/// Why a request failed on the server's side: carried by the response to the access log
/// ([`crate::logging::access_log`]), which logs it (a dependency's outage as a warning, a
/// defect as an error); never sent.
#[derive(Debug, Clone)]
pub(crate) struct ServerErrorCause {
    pub(crate) cause: std::sync::Arc<str>,
    /// The dependency that was unavailable; `None` for a defect.
    pub(crate) dependency: Option<&'static str>,
}

/// The answer for an error: status, body and headers, and for the layers around the handler
/// what they need to know (why a token was refused, a cause to log). Writing it does nothing
/// else: logging and metrics are those layers' work.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = match &self {
            // The answer to any bad token, so the cheapest answer to ask for: written straight
            // from the refusals rather than through a JSON value.
            ApiError::Auth(AuthError::NoValidTokenType(refusals)) => {
                let body = Json(NoValidTokenType::of(refusals));
                (StatusCode::UNAUTHORIZED, body).into_response()
            }
            _ => {
                let (status, body) = self.status_and_body();
                (status, Json(body)).into_response()
            }
        };
        let status = response.status();
        if let Some(reason) = self.reject_reason() {
            response
                .extensions_mut()
                .insert(crate::metrics::RejectReason(reason));
        }
        let retry_after = match &self {
            ApiError::Throttled(wait) | ApiError::AccountLocked(Some(wait)) => Some(*wait),
            ApiError::Unavailable { dependency, .. } => {
                response
                    .extensions_mut()
                    .insert(crate::metrics::Unavailable(*dependency));
                Some(UNAVAILABLE_RETRY_AFTER)
            }
            _ => None,
        };
        if let Some(wait) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_seconds(wait)),
            );
        }
        if let ApiError::ApiKey { .. } = &self {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(API_KEY_CHALLENGE),
            );
        } else if status == StatusCode::UNAUTHORIZED {
            // The value depends on settings; the challenge layer fills it in (see server.rs).
            response.extensions_mut().insert(NeedsChallenge);
        }
        let cause = match self {
            ApiError::Internal(cause) => Some(ServerErrorCause {
                cause: cause.into(),
                dependency: None,
            }),
            ApiError::Unavailable { dependency, cause } => Some(ServerErrorCause {
                cause: cause.into(),
                dependency: Some(dependency.as_str()),
            }),
            ApiError::ClaimsHookFailed(cause) => Some(ServerErrorCause {
                cause: cause.into(),
                dependency: Some("claims_hook"),
            }),
            _ => None,
        };
        if let Some(cause) = cause {
            response.extensions_mut().insert(cause);
        }
        response
    }
}

/// simplejwt's body for a token that no class of AUTH_TOKEN_CLASSES accepts: why each refused
/// it.
#[derive(serde::Serialize)]
struct NoValidTokenType {
    detail: &'static str,
    code: &'static str,
    messages: Vec<Refusal>,
}

#[derive(serde::Serialize)]
struct Refusal {
    token_class: &'static str,
    token_type: &'static str,
    message: String,
}

impl NoValidTokenType {
    fn of(refusals: &[tollgate_core::auth::ClassRefusal]) -> NoValidTokenType {
        NoValidTokenType {
            detail: "Given token not valid for any token type",
            code: "token_not_valid",
            messages: refusals
                .iter()
                .map(|r| Refusal {
                    token_class: r.token_type.class_name(),
                    token_type: r.token_type.as_str(),
                    message: r.error.to_string(),
                })
                .collect(),
        }
    }
}

/// Whole seconds to wait, rounded up and at least 1, as DRF rounds its wait.
fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// Marks a 401 response that still needs its `WWW-Authenticate` header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NeedsChallenge;

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::auth::ClassRefusal;
    use tollgate_core::TokenType;

    #[test]
    fn bodies_are_simplejwts() {
        let refused = AuthError::NoValidTokenType(vec![ClassRefusal {
            token_type: TokenType::Access,
            error: TokenError::Expired,
        }]);
        let (status, body) = ApiError::Auth(refused.clone()).status_and_body();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body.to_string(),
            r#"{"detail":"Given token not valid for any token type","code":"token_not_valid","messages":[{"token_class":"AccessToken","token_type":"access","message":"Token is expired"}]}"#
        );
        // The answer written without a JSON value (the cheap path) is the same body.
        let AuthError::NoValidTokenType(refusals) = &refused else {
            unreachable!()
        };
        let written = serde_json::to_value(NoValidTokenType::of(refusals)).unwrap();
        assert_eq!(written, refused.body());
        let (status, body) = ApiError::MethodNotAllowed(Method::GET).status_and_body();
        assert_eq!(
            (status, body),
            (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"detail": "Method \"GET\" not allowed."})
            )
        );
        let (_, body) = ApiError::Internal("secret detail".into()).status_and_body();
        assert!(!body.to_string().contains("secret"));
    }

    #[test]
    fn an_unavailable_database_is_503_with_retry_after_through_the_service_too() {
        let unavailable = || StoreError::from(sqlx::Error::PoolTimedOut);
        for error in [
            ApiError::from(unavailable()),
            ApiError::from(ServiceError::Store(unavailable())),
        ] {
            let response = error.into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "5");
        }
        let (_, body) = ApiError::from(unavailable()).status_and_body();
        assert_eq!(
            body,
            json!({
                "detail": "The service is temporarily unavailable. Try again shortly.",
                "code": "service_unavailable"
            })
        );
        // A defect stays a 500.
        let defect = ApiError::from(StoreError::from(sqlx::Error::RowNotFound));
        assert_eq!(
            defect.status_and_body().0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
