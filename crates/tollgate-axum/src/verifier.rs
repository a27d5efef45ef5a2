//! The one object a service configures: where the keys come from and what a token must pass.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_core::auth::{header_name, parse_header, HeaderCredentials};
use tollgate_core::rules::ClaimRules;
use tollgate_core::{unix_now, Claims, KeySet, Settings, SettingsError, TokenType};

use crate::error::{AuthError, Rejection};
use crate::jwks::JwksClient;

/// Every token type Tollgate and simplejwt issue: access, refresh and sliding. A token of
/// another type (or none) is still refused.
pub const ANY_TOKEN_TYPE: [TokenType; 3] =
    [TokenType::Access, TokenType::Refresh, TokenType::Sliding];

/// A token that passed every check: its claims and the AUTH_TOKEN_CLASSES type it was
/// accepted as. [`AuthLayer`](crate::AuthLayer) puts it in the request's extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// The token's claims.
    pub claims: Claims,
    /// The type the token was accepted as.
    pub token_type: TokenType,
}

/// Verifies tokens as simplejwt's `JWTAuthentication` does, with keys from the local settings
/// or from a JWKS URL. Cheap to clone; extractors find it in the router's state through
/// [`FromRef`](axum::extract::FromRef).
///
/// ```
/// use tollgate_axum::Verifier;
/// use tollgate_core::{settings::Secret, Settings};
///
/// let settings = Settings {
///     signing_key: Secret("a long random secret of at least 32 bytes!".into()),
///     ..Settings::default()
/// };
/// let verifier = Verifier::from_settings(&settings).unwrap();
/// # let _ = verifier;
/// ```
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    rules: ClaimRules,
    classes: Vec<TokenType>,
    header_name: HeaderName,
    header_types: Vec<String>,
    challenge: HeaderValue,
    check_user_is_active: bool,
    leeway: Duration,
    keys: Keys,
}

#[derive(Debug)]
enum Keys {
    Local(Arc<KeySet>),
    Jwks(JwksClient),
}

impl Verifier {
    /// A verifier with the local keys of the settings: SIGNING_KEY for HS*, VERIFYING_KEY
    /// alone for the other algorithms.
    pub fn from_settings(settings: &Settings) -> Result<Verifier, SettingsError> {
        Verifier::with_key_set(settings, KeySet::from_settings(settings)?)
    }

    /// A verifier with these keys.
    pub fn with_key_set(settings: &Settings, keys: KeySet) -> Result<Verifier, SettingsError> {
        Verifier::build(settings, Keys::Local(Arc::new(keys)))
    }

    /// A verifier with the keys of a JWKS URL, such as a Tollgate server's
    /// `/.well-known/jwks.json`. ALGORITHM and the keys of the settings are not used.
    ///
    /// ```
    /// use tollgate_axum::{JwksClient, Verifier};
    /// use tollgate_core::Settings;
    ///
    /// let jwks = JwksClient::new("http://127.0.0.1:8000/.well-known/jwks.json").unwrap();
    /// let verifier = Verifier::with_jwks(&Settings::default(), jwks).unwrap();
    /// # let _ = verifier;
    /// ```
    pub fn with_jwks(settings: &Settings, jwks: JwksClient) -> Result<Verifier, SettingsError> {
        Verifier::build(settings, Keys::Jwks(jwks))
    }

    fn build(settings: &Settings, keys: Keys) -> Result<Verifier, SettingsError> {
        let invalid = |key: &'static str, message: &str| SettingsError::Invalid {
            key,
            message: message.to_owned(),
        };
        let header_name = header_name(&settings.auth_header_name)
            .and_then(|name| HeaderName::try_from(name).ok())
            .ok_or_else(|| invalid("AUTH_HEADER_NAME", "is not a valid header name"))?;
        let scheme = settings
            .auth_header_types
            .first()
            .ok_or_else(|| invalid("AUTH_HEADER_TYPES", "is empty"))?;
        let challenge = HeaderValue::try_from(format!("{scheme} realm=\"api\""))
            .map_err(|_| invalid("AUTH_HEADER_TYPES", "is not a valid header value"))?;
        Ok(Verifier {
            inner: Arc::new(Inner {
                rules: ClaimRules::new(settings),
                classes: settings.auth_token_classes.clone(),
                header_name,
                header_types: settings.auth_header_types.clone(),
                challenge,
                check_user_is_active: settings.check_user_is_active,
                leeway: settings.leeway,
                keys,
            }),
        })
    }

    /// The request's token, verified: `Ok(None)` when the header (AUTH_HEADER_NAME) holds
    /// no token in a scheme of AUTH_HEADER_TYPES.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<VerifiedToken>, AuthError> {
        let header = headers
            .get(&self.inner.header_name)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        match parse_header(header, &self.inner.header_types) {
            HeaderCredentials::Absent => Ok(None),
            HeaderCredentials::Malformed => Err(AuthError::BadAuthorizationHeader),
            HeaderCredentials::Token(raw) => self.verify(raw).await.map(Some),
        }
    }

    /// Verifies a raw token: signature, registered claims, then each of AUTH_TOKEN_CLASSES in
    /// order, as simplejwt's `get_validated_token`.
    pub async fn verify(&self, raw: &[u8]) -> Result<VerifiedToken, AuthError> {
        self.verify_as(raw, &self.inner.classes).await
    }

    /// [`Verifier::verify`] with these token types instead of AUTH_TOKEN_CLASSES, tried in
    /// order: e.g. [`ANY_TOKEN_TYPE`] to take an access, refresh or sliding token alike, as
    /// simplejwt's `UntypedToken` does.
    ///
    /// ```
    /// # async fn check(verifier: tollgate_axum::Verifier, raw: &[u8]) {
    /// use tollgate_axum::ANY_TOKEN_TYPE;
    ///
    /// let token = verifier.verify_as(raw, &ANY_TOKEN_TYPE).await;
    /// # let _ = token;
    /// # }
    /// ```
    pub async fn verify_as(
        &self,
        raw: &[u8],
        classes: &[TokenType],
    ) -> Result<VerifiedToken, AuthError> {
        let keys = match &self.inner.keys {
            Keys::Local(keys) => Arc::clone(keys),
            Keys::Jwks(client) => {
                client
                    .keys_for(std::str::from_utf8(raw).unwrap_or(""))
                    .await
            }
        };
        let now = unix_now();
        let rules = &self.inner.rules;
        let (token_type, claims) = rules
            .authenticate_token(raw, classes, now, |token| {
                let claims = keys.verify_signature(token)?;
                rules.check_registered(&claims, now)?;
                Ok(claims)
            })
            .map_err(AuthError::NoValidTokenType)?;
        Ok(VerifiedToken { claims, token_type })
    }

    /// The claim rules (USER_ID_CLAIM, JTI_CLAIM, ...) this verifier applies.
    pub fn rules(&self) -> &ClaimRules {
        &self.inner.rules
    }

    /// The user id of a verified token (USER_ID_CLAIM), or the error simplejwt gives.
    pub fn user_id(&self, token: &VerifiedToken) -> Result<String, AuthError> {
        self.inner
            .rules
            .user_id(&token.claims)
            .ok_or(AuthError::NoUserIdentification)
    }

    /// LEEWAY: how long past its `exp` a token is still accepted.
    pub fn leeway(&self) -> Duration {
        self.inner.leeway
    }

    /// AUTH_HEADER_NAME and AUTH_HEADER_TYPES.
    #[cfg(feature = "ws")]
    pub(crate) fn header(&self) -> (&HeaderName, &[String]) {
        (&self.inner.header_name, &self.inner.header_types)
    }

    /// Whether CHECK_USER_IS_ACTIVE is on.
    pub(crate) fn check_user_is_active(&self) -> bool {
        self.inner.check_user_is_active
    }

    /// The response for a refused request, with this verifier's `WWW-Authenticate` challenge.
    pub fn reject(&self, error: AuthError) -> Rejection {
        Rejection::new(error, self.inner.challenge.clone())
    }
}
