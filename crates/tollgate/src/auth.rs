//! Authenticating a request from its token, as simplejwt's `JWTAuthentication` does.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tollgate_core::auth::{parse_header, ClassRefusal, HeaderCredentials};
use tollgate_core::password::revoke_fingerprint;
use tollgate_core::settings::AuthenticationClass;
use tollgate_core::{unix_now, Claims, TokenError, TokenType};
use tollgate_store::{User, UserField};

use crate::client::{ClientAddr, UserAgent};
use crate::error::ApiError;
use crate::logging::RequestUser;
use crate::service::login::{check_password, Channel};
use crate::service::ServiceError;
use crate::state::AppState;
use tollgate_axum::AuthError;

/// The user behind a valid token, loaded from the database. Extracting it answers 401 with
/// simplejwt's body when the request has no valid token.
#[derive(Debug, Clone)]
pub(crate) struct AuthenticatedUser {
    /// The user, as stored (shared with the user cache).
    pub user: Arc<User>,
    /// The token's claims.
    pub claims: Claims,
    /// Which of AUTH_TOKEN_CLASSES the token was accepted as; `None` for HTTP Basic.
    pub token_type: Option<TokenType>,
    /// Whether `user` was made of the token's claims (`jwt_stateless`) rather than read from
    /// the database: only its id, username, email and flags are meaningful. Handlers that need
    /// the stored user call [`AuthenticatedUser::stored`].
    pub stateless: bool,
}

impl AuthenticatedUser {
    /// This user as stored: itself when it was read from the database, else read now, with the
    /// checks `jwt` makes (exists, active, password unchanged).
    pub(crate) async fn stored(self, state: &AppState) -> Result<AuthenticatedUser, ApiError> {
        if !self.stateless {
            return Ok(self);
        }
        let user = stored_user(state, &self.claims).await?;
        Ok(AuthenticatedUser {
            user,
            stateless: false,
            ..self
        })
    }
}

/// The user a token names, read from the database (through the user cache) and checked as
/// simplejwt's JWTAuthentication checks it.
async fn stored_user(state: &AppState, claims: &Claims) -> Result<Arc<User>, ApiError> {
    let user_id = state
        .codec
        .user_id(claims)
        .ok_or(ApiError::Auth(AuthError::NoUserIdentification))?;
    let user = state
        .user_cache
        .find(&state.store, state.user_id_field, &user_id)
        .await?
        .ok_or(ApiError::Auth(AuthError::UserNotFound))?;
    if state.settings.check_user_is_active && !user.is_active {
        return Err(ApiError::Auth(AuthError::UserInactive));
    }
    if !issued_to_holder(state, claims, &user) {
        return Err(ApiError::Auth(AuthError::UserNotFound));
    }
    if !password_unchanged(state, claims, &user) {
        return Err(ApiError::PasswordChanged);
    }
    Ok(user)
}

/// Whether the token was issued while `user` held the identifier it carries. USER_ID_FIELD
/// other than `id` can change hands: a token issued before the user took the value (see
/// `identified_since`) was issued to its previous holder and names someone else. Ids are never
/// reused, and a token without `iat` was not minted here, so both pass.
pub(crate) fn issued_to_holder(state: &AppState, claims: &Claims, user: &User) -> bool {
    state.user_id_field == UserField::Id
        || claims
            .timestamp("iat")
            .is_none_or(|iat| iat >= user.identified_since)
}

/// simplejwt's TokenUser: a user made of the token's claims alone. The id is the user-id claim
/// when it is a number (USER_ID_FIELD = id), else 0; `username` is the `username` claim (or the
/// user-id claim when USER_ID_FIELD is username), else empty; always active.
fn token_user(state: &AppState, claims: &Claims, user_id: String) -> User {
    let flag = |name: &str| claims.get(name).and_then(|v| v.as_bool()).unwrap_or(false);
    let username = match claims.str("username") {
        Some(name) => name.to_owned(),
        None if state.user_id_field == UserField::Username => user_id.clone(),
        None => String::new(),
    };
    User {
        id: user_id.parse().unwrap_or(0),
        username,
        email: claims.str("email").unwrap_or_default().to_owned(),
        phone: None,
        first_name: String::new(),
        last_name: String::new(),
        password: String::new(),
        is_active: true,
        is_staff: flag("is_staff"),
        is_superuser: flag("is_superuser"),
        date_joined: 0,
        last_login: None,
        profile: "{}".to_owned(),
        identified_since: 0,
        email_verified_at: None,
        pending_email: None,
    }
}

impl FromRequestParts<AppState> for AuthenticatedUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // AUTHENTICATION_CLASSES in order, as DRF tries them: a class that finds no credentials
        // of its kind passes; one that finds bad credentials answers at once.
        for class in &state.settings.authentication_classes {
            let found = match class {
                AuthenticationClass::Basic => basic(parts, state).await?,
                AuthenticationClass::JwtStateless => jwt(parts, state, true).await?,
                AuthenticationClass::Jwt => jwt(parts, state, false).await?,
            };
            if let Some(user) = found {
                if let Some(slot) = parts.extensions.get::<RequestUser>() {
                    slot.set(user.user.id);
                }
                return Ok(user);
            }
        }
        Err(ApiError::Auth(AuthError::NotAuthenticated))
    }
}

/// HTTP Basic, as DRF's `BasicAuthentication`: `Authorization: Basic base64(user:password)`,
/// the user found through LOGIN_FIELDS. Costs one password hash per request, and counts against
/// the failed-login throttle and lockout as a login does.
async fn basic(parts: &Parts, state: &AppState) -> Result<Option<AuthenticatedUser>, ApiError> {
    use base64::Engine as _;
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    let mut words = header
        .split(u8::is_ascii_whitespace)
        .filter(|word| !word.is_empty());
    if !words
        .next()
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"basic"))
    {
        return Ok(None);
    }
    let encoded = match (words.next(), words.next()) {
        (None, _) => {
            return Err(ApiError::BasicAuthFailed(
                "Invalid basic header. No credentials provided.",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::BasicAuthFailed(
                "Invalid basic header. Credentials string should not contain spaces.",
            ))
        }
        (Some(encoded), None) => encoded,
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .map(|bytes| match String::from_utf8(bytes) {
            Ok(text) => text,
            // DRF falls back to Latin-1, where every byte is the code point of the same value.
            Err(err) => err.into_bytes().into_iter().map(char::from).collect(),
        })
        .ok_or(ApiError::BasicAuthFailed(
            "Invalid basic header. Credentials not correctly base64 encoded.",
        ))?;
    let (username, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
    // The same throttle, lockout and records as a login, so that Basic is no way around them.
    let agent = UserAgent::of(&parts.headers);
    let checked = check_password(
        state,
        ClientAddr::of(parts, state).with(&agent),
        username,
        password.to_owned(),
        Channel::Basic,
    )
    .await;
    match checked {
        Ok(user) => Ok(Some(AuthenticatedUser {
            user: Arc::new(user),
            claims: Claims::default(),
            token_type: None,
            stateless: false,
        })),
        // Django's ModelBackend finds no inactive user, so DRF's answer is the same for both.
        Err(ServiceError::NoActiveAccount) => {
            Err(ApiError::BasicAuthFailed("Invalid username/password."))
        }
        Err(err) => Err(err.into()),
    }
}

/// What the authorization header (AUTH_HEADER_NAME) of `headers` holds, read with
/// AUTH_HEADER_TYPES.
pub(crate) fn header_credentials<'h>(
    headers: &'h axum::http::HeaderMap,
    state: &AppState,
) -> HeaderCredentials<'h> {
    let header = headers
        .get(&state.auth_header)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    parse_header(header, &state.settings.auth_header_types)
}

/// A bearer token: simplejwt's `JWTAuthentication`, or with `stateless` its
/// `JWTStatelessUserAuthentication` (no database read for an access token).
async fn jwt(
    parts: &Parts,
    state: &AppState,
    stateless: bool,
) -> Result<Option<AuthenticatedUser>, ApiError> {
    let raw = match header_credentials(&parts.headers, state) {
        HeaderCredentials::Absent => return Ok(None),
        HeaderCredentials::Malformed => {
            return Err(ApiError::Auth(AuthError::BadAuthorizationHeader))
        }
        HeaderCredentials::Token(raw) => raw,
    };
    authenticate_token(raw, state, stateless).await.map(Some)
}

/// The user of a raw token, checked as a bearer token of the authorization header is (the
/// WebSocket endpoint reads tokens from elsewhere too).
pub(crate) async fn authenticate_token(
    raw: &[u8],
    state: &AppState,
    stateless: bool,
) -> Result<AuthenticatedUser, ApiError> {
    let now = unix_now();
    let classes = &state.settings.auth_token_classes;
    let (token_type, claims) = match &state.foreign_tokens {
        // JWK_URL: another issuer's tokens, verified with its published keys.
        Some(verifier) => {
            let verified = verifier.verify(raw).await.map_err(|err| match err {
                AuthError::NoValidTokenType(_) => ApiError::Auth(err),
                other => ApiError::internal(other),
            })?;
            (verified.token_type, verified.claims)
        }
        None => state
            .codec
            .authenticate_token(raw, classes, now)
            .map_err(|refusals| ApiError::Auth(AuthError::NoValidTokenType(refusals)))?,
    };
    not_revoked(state, token_type, &claims, true).await?;
    let user = if stateless {
        let user_id = state
            .codec
            .user_id(&claims)
            .ok_or(ApiError::Auth(AuthError::NoUserIdentification))?;
        Arc::new(token_user(state, &claims, user_id))
    } else {
        stored_user(state, &claims).await?
    };
    Ok(AuthenticatedUser {
        user,
        claims,
        token_type: Some(token_type),
        stateless,
    })
}

/// Refuses a token that was revoked: ACCESS_TOKEN_REVOCATION's in-memory check, then, with
/// `read_store`, the blacklist for a sliding token (which simplejwt checks, as sliding tokens
/// are blacklistable).
async fn not_revoked(
    state: &AppState,
    token_type: TokenType,
    claims: &Claims,
    read_store: bool,
) -> Result<(), ApiError> {
    let refused = |error| {
        ApiError::Auth(AuthError::NoValidTokenType(vec![ClassRefusal {
            token_type,
            error,
        }]))
    };
    if state.access_revoked(claims) {
        return Err(refused(TokenError::Blacklisted));
    }
    if read_store && token_type == TokenType::Sliding {
        if let Some(jti) = state.codec.jti(claims) {
            if state.store.is_blacklisted(jti).await? {
                return Err(refused(TokenError::Blacklisted));
            }
        }
    }
    Ok(())
}

/// Checks again a user authenticated earlier by [`authenticate_token`] (not stateless), for
/// connections that outlive a request: the token must not have been revoked since, and, with
/// `read_store`, not blacklisted and its user must still exist, be active and have the same
/// password (CHECK_REVOKE_TOKEN). Without `read_store` it is a lookup in memory.
pub(crate) async fn recheck(
    state: &AppState,
    authenticated: &AuthenticatedUser,
    read_store: bool,
) -> Result<(), ApiError> {
    let token_type = authenticated.token_type.unwrap_or(TokenType::Access);
    not_revoked(state, token_type, &authenticated.claims, read_store).await?;
    if read_store {
        stored_user(state, &authenticated.claims).await?;
    }
    Ok(())
}

/// With CHECK_REVOKE_TOKEN, whether the token's password fingerprint is that of the user's
/// current password hash; always true without it.
pub(crate) fn password_unchanged(state: &AppState, claims: &Claims, user: &User) -> bool {
    !state.settings.check_revoke_token
        || claims.str(&state.settings.revoke_token_claim)
            == Some(revoke_fingerprint(&user.password).as_str())
}
