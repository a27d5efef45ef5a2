//! The checks a token's claims must pass once its signature is good: PyJWT's registered-claim
//! checks and simplejwt's per-class checks. They need no key, so a service that only verifies
//! tokens (with keys from a JWKS URL, say) applies exactly the rules Tollgate applies.

use serde_json::Value;

use crate::settings::Settings;
use crate::token::{timestamp, Claims, TokenError, TokenType};

/// The claim checks configured by LEEWAY, AUDIENCE, ISSUER and the claim-name settings.
///
/// ```
/// use tollgate_core::{rules::ClaimRules, Claims, Settings, TokenError, TokenType};
///
/// let rules = ClaimRules::new(&Settings::default());
/// let mut claims = Claims::default();
/// claims.insert("exp", 1_700_000_060);
/// claims.insert("jti", "a1");
/// claims.insert("token_type", "refresh");
/// assert_eq!(rules.check_registered(&claims, 1_700_000_000), Ok(()));
/// assert_eq!(
///     rules.check_type(&claims, Some(TokenType::Access), 1_700_000_000),
///     Err(TokenError::WrongType)
/// );
/// ```
#[derive(Debug, Clone)]
pub struct ClaimRules {
    leeway: i64,
    pub(crate) audience: Option<Value>,
    pub(crate) issuer: Option<String>,
    user_id_claim: String,
    token_type_claim: Option<String>,
    jti_claim: Option<String>,
    refresh_exp_claim: String,
}

impl ClaimRules {
    /// The rules of these settings.
    pub fn new(settings: &Settings) -> ClaimRules {
        let audience = match settings.audience.as_slice() {
            [] => None,
            [one] => Some(Value::String(one.clone())),
            many => Some(Value::Array(
                many.iter().cloned().map(Value::String).collect(),
            )),
        };
        ClaimRules {
            leeway: i64::try_from(settings.leeway.as_secs()).unwrap_or(i64::MAX),
            audience,
            issuer: settings.issuer.clone(),
            user_id_claim: settings.user_id_claim.clone(),
            token_type_claim: settings.token_type_claim.clone(),
            jti_claim: settings.jti_claim.clone(),
            refresh_exp_claim: settings.sliding_token_refresh_exp_claim.clone(),
        }
    }

    /// PyJWT's checks of the registered claims: `exp` not passed, `iat` and `nbf`
    /// not in the future (all within LEEWAY), `aud` one of AUDIENCE and `iss` equal to ISSUER
    /// when set, and `sub` and `jti`, when present, strings.
    pub fn check_registered(&self, claims: &Claims, now: i64) -> Result<(), TokenError> {
        if let Some(exp) = claims.get("exp") {
            let exp = timestamp(exp).ok_or(TokenError::invalid("exp is not a number"))?;
            if exp <= now.saturating_sub(self.leeway) {
                return Err(TokenError::Expired);
            }
        }
        for (name, reason) in [
            ("iat", "iat is in the future"),
            ("nbf", "nbf is in the future"),
        ] {
            if let Some(at) = claims.get(name) {
                let at = timestamp(at).ok_or(TokenError::invalid("iat or nbf is not a number"))?;
                if at > now.saturating_add(self.leeway) {
                    return Err(TokenError::invalid(reason));
                }
            }
        }
        if let Some(expected) = &self.audience {
            let accepted: Vec<&Value> = match expected {
                Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            let matches = match claims.get("aud") {
                Some(Value::String(aud)) => accepted.iter().any(|a| a.as_str() == Some(aud)),
                Some(Value::Array(auds)) => auds.iter().any(|aud| accepted.contains(&aud)),
                _ => false,
            };
            if !matches {
                return Err(TokenError::invalid("audience does not match"));
            }
        }
        if let Some(issuer) = &self.issuer {
            if claims.str("iss") != Some(issuer.as_str()) {
                return Err(TokenError::invalid("issuer does not match"));
            }
        }
        // PyJWT (2.10 and later) refuses a `sub` or `jti` that is present but not a string,
        // whatever JTI_CLAIM names: simplejwt then answers "Token is invalid". A number or
        // null here would also make the token impossible to blacklist by its id.
        if claims.get("sub").is_some_and(|sub| !sub.is_string()) {
            return Err(TokenError::invalid("sub is not a string"));
        }
        if claims.get("jti").is_some_and(|jti| !jti.is_string()) {
            return Err(TokenError::invalid("jti is not a string"));
        }
        Ok(())
    }

    /// simplejwt's `Token.verify` for a token of `expected` type (`None`: any type, as verify
    /// does): `exp` present, a `jti`, and the right `token_type`.
    pub fn check_type(
        &self,
        claims: &Claims,
        expected: Option<TokenType>,
        now: i64,
    ) -> Result<(), TokenError> {
        self.check_time_claim(claims, "exp", now)?;
        if let Some(jti_claim) = &self.jti_claim {
            if claims.get(jti_claim).is_none() {
                return Err(TokenError::NoId);
            }
        }
        if let (Some(expected), Some(type_claim)) = (expected, &self.token_type_claim) {
            match claims.get(type_claim) {
                None => return Err(TokenError::NoType),
                Some(value) if value.as_str() != Some(expected.as_str()) => {
                    return Err(TokenError::WrongType)
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// A sliding token's refresh window: `refresh_exp` present and not passed.
    pub fn check_refresh_window(&self, claims: &Claims, now: i64) -> Result<(), TokenError> {
        self.check_time_claim(claims, &self.refresh_exp_claim, now)
    }

    fn check_time_claim(&self, claims: &Claims, name: &str, now: i64) -> Result<(), TokenError> {
        let at = claims
            .get(name)
            .ok_or_else(|| TokenError::MissingClaim(name.to_owned()))?;
        let at = timestamp(at).ok_or(TokenError::invalid("time claim is not a number"))?;
        if at <= now.saturating_sub(self.leeway) {
            return Err(TokenError::ClaimExpired(name.to_owned()));
        }
        Ok(())
    }

    /// The token's `jti` (JTI_CLAIM), if it has one.
    pub fn jti<'c>(&self, claims: &'c Claims) -> Option<&'c str> {
        claims.str(self.jti_claim.as_deref()?)
    }

    /// The user id claim (USER_ID_CLAIM), read as a string or a number (simplejwt before 5.5
    /// wrote numbers). Absent, null or empty means the token names no user.
    pub fn user_id(&self, claims: &Claims) -> Option<String> {
        match claims.get(&self.user_id_claim)? {
            Value::String(id) if !id.is_empty() => Some(id.clone()),
            Value::Number(id) => Some(id.to_string()),
            _ => None,
        }
    }
}
