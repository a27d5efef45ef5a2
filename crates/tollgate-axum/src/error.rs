//! Why a request is refused, and the answer: simplejwt's and Django REST framework's bodies.

use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tollgate_core::auth::ClassRefusal;

/// Why a request was not authenticated or not allowed. The messages are simplejwt's and Django
/// REST framework's, word for word: clients written for a Django backend match on them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No token in a scheme of AUTH_HEADER_TYPES.
    #[error("Authentication credentials were not provided.")]
    NotAuthenticated,
    /// A known scheme followed by other than exactly one token.
    #[error("Authorization header must contain two space-delimited values")]
    BadAuthorizationHeader,
    /// The token failed as every type of AUTH_TOKEN_CLASSES; why, for each.
    #[error("Given token not valid for any token type")]
    NoValidTokenType(Vec<ClassRefusal>),
    /// A valid token without the user id claim.
    #[error("Token contained no recognizable user identification")]
    NoUserIdentification,
    /// A valid token for a user who does not exist.
    #[error("User not found")]
    UserNotFound,
    /// A valid token for a user who is not active.
    #[error("User is inactive")]
    UserInactive,
    /// An authenticated user without the permission (`is_staff`, `is_superuser`).
    #[error("You do not have permission to perform this action.")]
    PermissionDenied,
    /// The user store failed. The cause is logged; the client learns nothing of it.
    #[error("A server error occurred.")]
    Internal,
}

impl AuthError {
    /// The HTTP status: 401, 403 for [`AuthError::PermissionDenied`], 500 for
    /// [`AuthError::Internal`].
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::PermissionDenied => StatusCode::FORBIDDEN,
            AuthError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// simplejwt's machine-readable `code`: `token_not_valid`, `user_inactive`, ...;
    /// `not_authenticated` and `permission_denied` (DRF's codes, absent from its bodies) for the
    /// errors that have none.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::NotAuthenticated => "not_authenticated",
            AuthError::BadAuthorizationHeader => "bad_authorization_header",
            AuthError::NoValidTokenType(_) | AuthError::NoUserIdentification => "token_not_valid",
            AuthError::UserNotFound => "user_not_found",
            AuthError::UserInactive => "user_inactive",
            AuthError::PermissionDenied => "permission_denied",
            AuthError::Internal => "error",
        }
    }

    /// A one-line reason: the first refusal's message for a refused token ("Token is
    /// expired"), the detail otherwise. Used as a WebSocket close reason.
    ///
    /// ```
    /// use tollgate_axum::AuthError;
    /// use tollgate_core::{auth::ClassRefusal, TokenError, TokenType};
    ///
    /// let err = AuthError::NoValidTokenType(vec![ClassRefusal {
    ///     token_type: TokenType::Access,
    ///     error: TokenError::Expired,
    /// }]);
    /// assert_eq!(err.reason(), "token_not_valid: Token is expired");
    /// ```
    pub fn reason(&self) -> String {
        let message = match self {
            AuthError::NoValidTokenType(refusals) => refusals
                .first()
                .map(|refusal| refusal.error.to_string())
                .unwrap_or_else(|| self.to_string()),
            _ => self.to_string(),
        };
        format!("{}: {message}", self.code())
    }

    /// The JSON body, as simplejwt or DRF writes it.
    ///
    /// ```
    /// use tollgate_axum::AuthError;
    ///
    /// assert_eq!(
    ///     AuthError::UserInactive.body().to_string(),
    ///     r#"{"detail":"User is inactive","code":"user_inactive"}"#
    /// );
    /// ```
    pub fn body(&self) -> Value {
        let detail = self.to_string();
        match self {
            AuthError::NotAuthenticated | AuthError::PermissionDenied | AuthError::Internal => {
                json!({ "detail": detail })
            }
            AuthError::NoValidTokenType(refusals) => {
                let messages: Vec<Value> = refusals
                    .iter()
                    .map(|r| {
                        json!({
                            "token_class": r.token_type.class_name(),
                            "token_type": r.token_type.as_str(),
                            "message": r.error.to_string(),
                        })
                    })
                    .collect();
                json!({ "detail": detail, "code": self.code(), "messages": messages })
            }
            _ => json!({ "detail": detail, "code": self.code() }),
        }
    }
}

/// A refused request's response: the status and body of its [`AuthError`], and on a 401 the
/// `WWW-Authenticate` challenge (`Bearer realm="api"`, with the first AUTH_HEADER_TYPES).
#[derive(Debug, Clone)]
pub struct Rejection {
    error: AuthError,
    challenge: HeaderValue,
}

impl Rejection {
    pub(crate) fn new(error: AuthError, challenge: HeaderValue) -> Rejection {
        Rejection { error, challenge }
    }

    /// Why the request was refused.
    pub fn error(&self) -> &AuthError {
        &self.error
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = self.error.status();
        let mut response = (status, Json(self.error.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, self.challenge);
        }
        response
    }
}
