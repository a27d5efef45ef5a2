//! Authenticating a request from its token, as simplejwt's `JWTAuthentication` does.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tollgate_core::auth::{parse_header, ClassRefusal, HeaderCredentials};
use tollgate_core::password::revoke_fingerprint;
use tollgate_core::{unix_now, Claims, TokenError, TokenType};
use tollgate_store::User;

use crate::error::ApiError;
use crate::logging::RequestUser;
use crate::state::AppState;

/// The user behind a valid token, loaded from the database. Extracting it answers 401 with
/// simplejwt's body when the request has no valid token.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    /// The user, as stored (shared with the user cache).
    pub user: Arc<User>,
    /// The token's claims.
    pub claims: Claims,
    /// Which of AUTH_TOKEN_CLASSES the token was accepted as.
    pub token_type: TokenType,
}

impl FromRequestParts<AppState> for AuthenticatedUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(&state.auth_header)
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        let raw = match parse_header(header, &state.settings.auth_header_types) {
            HeaderCredentials::Absent => return Err(ApiError::NotAuthenticated),
            HeaderCredentials::Malformed => return Err(ApiError::BadAuthorizationHeader),
            HeaderCredentials::Token(raw) => raw,
        };
        let now = unix_now();
        let classes = &state.settings.auth_token_classes;
        let (token_type, claims) = state
            .codec
            .authenticate_token(raw, classes, now)
            .map_err(ApiError::NoValidTokenType)?;
        // Sliding tokens are blacklistable, so simplejwt checks them against the blacklist.
        if token_type == TokenType::Sliding {
            if let Some(jti) = state.codec.jti(&claims) {
                if state.store.is_blacklisted(jti).await? {
                    let refusal = ClassRefusal {
                        token_type,
                        error: TokenError::Blacklisted,
                    };
                    return Err(ApiError::NoValidTokenType(vec![refusal]));
                }
            }
        }
        let user_id = state
            .codec
            .user_id(&claims)
            .ok_or(ApiError::NoUserIdentification)?;
        let user = state
            .user_cache
            .find(&state.store, state.user_id_field, &user_id)
            .await?
            .ok_or(ApiError::UserNotFound)?;
        if state.settings.check_user_is_active && !user.is_active {
            return Err(ApiError::UserInactive);
        }
        if !password_unchanged(state, &claims, &user) {
            return Err(ApiError::PasswordChanged);
        }
        if let Some(slot) = parts.extensions.get::<RequestUser>() {
            slot.set(user.id);
        }
        Ok(AuthenticatedUser {
            user,
            claims,
            token_type,
        })
    }
}

/// With CHECK_REVOKE_TOKEN, whether the token's password fingerprint is that of the user's
/// current password hash; always true without it.
pub(crate) fn password_unchanged(state: &AppState, claims: &Claims, user: &User) -> bool {
    !state.settings.check_revoke_token
        || claims.str(&state.settings.revoke_token_claim)
            == Some(revoke_fingerprint(&user.password).as_str())
}
