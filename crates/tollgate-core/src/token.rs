//! Token types, their claims, and the errors simplejwt reports about a token.

use serde_json::{Map, Value};

/// The kinds of token Tollgate issues, named by their `token_type` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// A short-lived token that authenticates requests.
    Access,
    /// A long-lived token that obtains new access tokens.
    Refresh,
    /// A token that both authenticates and can be refreshed within its refresh window.
    Sliding,
}

impl TokenType {
    /// The value of the `token_type` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
            TokenType::Sliding => "sliding",
        }
    }

    /// simplejwt's class name, reported in authentication error messages.
    pub fn class_name(self) -> &'static str {
        match self {
            TokenType::Access => "AccessToken",
            TokenType::Refresh => "RefreshToken",
            TokenType::Sliding => "SlidingToken",
        }
    }

    /// Whether tokens of this type are recorded as outstanding and can be blacklisted.
    pub fn is_blacklistable(self) -> bool {
        matches!(self, TokenType::Refresh | TokenType::Sliding)
    }
}

/// A token's payload, with its claims in the order they were written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// A claim's value.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// Sets a claim, keeping its place if it was already present.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.0.insert(name.into(), value.into());
    }

    /// A numeric claim as whole epoch seconds, as PyJWT reads it (`int(value)`).
    pub fn timestamp(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(timestamp)
    }

    /// A string claim.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }
}

/// A claim's value as whole epoch seconds, as PyJWT reads it (`int(value)`).
pub(crate) fn timestamp(value: &Value) -> Option<i64> {
    if let Some(i) = value.as_i64() {
        return Some(i);
    }
    // Fractions are truncated; absurd magnitudes saturate, which keeps them comparable.
    value
        .as_f64()
        .filter(|f| f.is_finite())
        .map(|f| f.trunc() as i64)
}

/// Why a token was refused. The messages are simplejwt's, word for word: clients match on them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Bad signature, malformed token, other algorithm, wrong audience or issuer, bad times.
    #[error("Token is invalid")]
    Invalid {
        /// What exactly was wrong, for the logs; never sent to the client.
        reason: &'static str,
    },
    /// `exp` has passed (after the leeway).
    #[error("Token is expired")]
    Expired,
    /// The token's `jti` is on the blacklist.
    #[error("Token is blacklisted")]
    Blacklisted,
    /// A claim the token type needs is absent.
    #[error("Token has no '{0}' claim")]
    MissingClaim(String),
    /// A time claim other than `exp` (a sliding token's `refresh_exp`) has passed.
    #[error("Token '{0}' claim has expired")]
    ClaimExpired(String),
    /// No `jti` claim.
    #[error("Token has no id")]
    NoId,
    /// No `token_type` claim.
    #[error("Token has no type")]
    NoType,
    /// A `token_type` other than the one expected.
    #[error("Token has wrong type")]
    WrongType,
}

impl TokenError {
    pub(crate) fn invalid(reason: &'static str) -> TokenError {
        TokenError::Invalid { reason }
    }
}

/// A token could not be signed (an unusable private key). Not the client's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token could not be signed: {0}")]
pub struct SigningError(pub(crate) String);

/// A freshly signed token with the claims it carries.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The encoded JWT.
    pub token: String,
    /// Its claims.
    pub claims: Claims,
    /// Its `jti`.
    pub jti: String,
    /// Its `iat`, epoch seconds.
    pub issued_at: i64,
    /// Its `exp`, epoch seconds.
    pub expires_at: i64,
}

/// A 32-character lowercase hex id, the shape simplejwt writes (`uuid4().hex`), but of a
/// version-7 UUID: 48 bits of milliseconds, then 74 random bits. Ids minted later sort later,
/// so recording and blacklisting tokens appends to the end of the `jti` indexes instead of
/// landing on a random page of each: a rotation then writes a few pages, not a dozen.
pub fn new_jti() -> String {
    let mut text = [0; uuid::fmt::Simple::LENGTH];
    uuid::Uuid::now_v7()
        .simple()
        .encode_lower(&mut text)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_simplejwts() {
        assert_eq!(TokenError::invalid("x").to_string(), "Token is invalid");
        assert_eq!(TokenError::Expired.to_string(), "Token is expired");
        assert_eq!(TokenError::Blacklisted.to_string(), "Token is blacklisted");
        assert_eq!(
            TokenError::MissingClaim("exp".into()).to_string(),
            "Token has no 'exp' claim"
        );
        assert_eq!(
            TokenError::ClaimExpired("refresh_exp".into()).to_string(),
            "Token 'refresh_exp' claim has expired"
        );
        assert_eq!(TokenError::NoId.to_string(), "Token has no id");
        assert_eq!(TokenError::WrongType.to_string(), "Token has wrong type");
    }

    #[test]
    fn timestamps_are_read_like_pyjwt() {
        let claims = Claims(
            json!({"a": 10, "b": 10.9, "c": "10", "d": -5, "e": 1e300})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert_eq!(claims.timestamp("a"), Some(10));
        assert_eq!(claims.timestamp("b"), Some(10));
        assert_eq!(claims.timestamp("c"), None);
        assert_eq!(claims.timestamp("d"), Some(-5));
        assert_eq!(claims.timestamp("e"), Some(i64::MAX));
        assert_eq!(claims.timestamp("missing"), None);
    }

    #[test]
    fn jtis_are_32_lowercase_hex_and_unique() {
        let (a, b) = (new_jti(), new_jti());
        assert_eq!(a.len(), 32);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        // Minted in order, they sort in order (within one millisecond too).
        let minted: Vec<String> = (0..1000).map(|_| new_jti()).collect();
        assert!(minted.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
