//! Minting and checking tokens: what simplejwt's token classes and PyJWT do, in one place.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::Map;

use crate::keyring::KeyRing;
use crate::keys::Keys;
use crate::rules::ClaimRules;
use crate::settings::{Settings, SettingsError};
use crate::token::{new_jti, Claims, Issued, SigningError, TokenError, TokenType};

/// Issues and checks tokens with the configured keys, lifetimes and claim names.
///
/// The keys are a [`KeyRing`] that [`replace_keys`](TokenCodec::replace_keys) swaps while
/// requests run (after a rotation), without locking the requests out.
#[derive(Debug)]
pub struct TokenCodec {
    ring: ArcSwap<KeyRing>,
    access_lifetime: i64,
    refresh_lifetime: i64,
    sliding_lifetime: i64,
    sliding_refresh_lifetime: i64,
    rules: ClaimRules,
    user_id_claim: String,
    token_type_claim: Option<String>,
    jti_claim: Option<String>,
    refresh_exp_claim: String,
}

/// What jsonwebtoken checks: the signature and the algorithm only. The registered claims are
/// checked by [`ClaimRules`], as PyJWT checks them, so that messages and edge cases match
/// simplejwt.
pub(crate) fn signature_only(alg: jsonwebtoken::Algorithm) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = std::collections::HashSet::new();
    validation.leeway = 0;
    validation
}

fn seconds(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// A clone holds the keys the original holds now; later replacements are not shared.
impl Clone for TokenCodec {
    fn clone(&self) -> TokenCodec {
        TokenCodec {
            ring: ArcSwap::new(self.ring.load_full()),
            access_lifetime: self.access_lifetime,
            refresh_lifetime: self.refresh_lifetime,
            sliding_lifetime: self.sliding_lifetime,
            sliding_refresh_lifetime: self.sliding_refresh_lifetime,
            rules: self.rules.clone(),
            user_id_claim: self.user_id_claim.clone(),
            token_type_claim: self.token_type_claim.clone(),
            jti_claim: self.jti_claim.clone(),
            refresh_exp_claim: self.refresh_exp_claim.clone(),
        }
    }
}

impl TokenCodec {
    /// Builds the codec with the configured key alone; fails if the keys in the settings are
    /// unusable. Rotated keys come in with [`replace_keys`](TokenCodec::replace_keys).
    pub fn new(settings: &Settings) -> Result<TokenCodec, SettingsError> {
        let keys = Keys::from_settings(settings)?;
        Ok(TokenCodec {
            ring: ArcSwap::from_pointee(KeyRing::single(keys)),
            access_lifetime: seconds(settings.access_token_lifetime),
            refresh_lifetime: seconds(settings.refresh_token_lifetime),
            sliding_lifetime: seconds(settings.sliding_token_lifetime),
            sliding_refresh_lifetime: seconds(settings.sliding_token_refresh_lifetime),
            rules: ClaimRules::new(settings),
            user_id_claim: settings.user_id_claim.clone(),
            token_type_claim: settings.token_type_claim.clone(),
            jti_claim: settings.jti_claim.clone(),
            refresh_exp_claim: settings.sliding_token_refresh_exp_claim.clone(),
        })
    }

    fn lifetime(&self, kind: TokenType) -> i64 {
        match kind {
            TokenType::Access => self.access_lifetime,
            TokenType::Refresh => self.refresh_lifetime,
            TokenType::Sliding => self.sliding_lifetime,
        }
    }

    /// Claims for a new token of `kind` for the user whose id (USER_ID_FIELD) is `user_id`,
    /// in simplejwt's order: type, exp, iat, jti, (refresh_exp,) user id.
    pub fn claims_for_user(&self, kind: TokenType, user_id: &str, now: i64) -> Claims {
        let mut claims = self.fresh(kind, now);
        if kind == TokenType::Sliding {
            claims.insert(
                &self.refresh_exp_claim,
                now.saturating_add(self.sliding_refresh_lifetime),
            );
        }
        claims.insert(&self.user_id_claim, user_id);
        claims
    }

    fn fresh(&self, kind: TokenType, now: i64) -> Claims {
        let mut claims = Claims(Map::new());
        if let Some(type_claim) = &self.token_type_claim {
            claims.insert(type_claim, kind.as_str());
        }
        claims.insert("exp", now.saturating_add(self.lifetime(kind)));
        claims.insert("iat", now);
        if let Some(jti_claim) = &self.jti_claim {
            claims.insert(jti_claim, new_jti());
        }
        claims
    }

    /// An access token's claims derived from a refresh token's: fresh type, exp, iat and jti;
    /// every other claim (user id, custom claims) copied, as simplejwt's `access_token` does.
    pub fn access_claims_from(&self, refresh: &Claims, now: i64) -> Claims {
        let mut claims = self.fresh(TokenType::Access, now);
        for (name, value) in &refresh.0 {
            let regenerated = name == "exp"
                || name == "iat"
                || self.token_type_claim.as_deref() == Some(name)
                || self.jti_claim.as_deref() == Some(name);
            if !regenerated {
                claims.0.insert(name.clone(), value.clone());
            }
        }
        claims
    }

    /// The claims of a rotated refresh token: the same payload with a new jti, exp and iat.
    pub fn rotated_claims(&self, refresh: &Claims, now: i64) -> Claims {
        let mut claims = refresh.clone();
        if let Some(jti_claim) = &self.jti_claim {
            claims.insert(jti_claim, new_jti());
        }
        claims.insert("exp", now.saturating_add(self.refresh_lifetime));
        claims.insert("iat", now);
        claims
    }

    /// A refreshed sliding token's claims: new exp and iat; jti and refresh_exp unchanged.
    pub fn slid_claims(&self, sliding: &Claims, now: i64) -> Claims {
        let mut claims = sliding.clone();
        claims.insert("exp", now.saturating_add(self.sliding_lifetime));
        claims.insert("iat", now);
        claims
    }

    /// Signs claims, adding `aud` and `iss` when configured.
    pub fn sign(&self, mut claims: Claims) -> Result<Issued, SigningError> {
        if let Some(audience) = &self.rules.audience {
            claims.insert("aud", audience.clone());
        }
        if let Some(issuer) = &self.rules.issuer {
            claims.insert("iss", issuer.as_str());
        }
        let token = self.ring.load().sign(&claims.0).map_err(SigningError)?;
        Ok(Issued {
            jti: self.jti(&claims).unwrap_or_default().to_owned(),
            issued_at: claims.timestamp("iat").unwrap_or_default(),
            expires_at: claims.timestamp("exp").unwrap_or_default(),
            token,
            claims,
        })
    }

    /// Checks the signature, the algorithm and the registered claims (`exp`, `nbf`, `iat`, `aud`,
    /// `iss`) as PyJWT does, and returns the payload. No token-type checks yet.
    /// A header with `crit`, or a header or payload with a repeated member, is refused. The key
    /// is the one the header's `kid` names (none: the configured key); an unknown `kid`, or a
    /// retired key past its `verify_until`, is refused.
    pub fn decode(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let ring = self.ring.load();
        let key = ring.verifier_for(token).map_err(TokenError::invalid)?;
        if !key.verifies_at(now) {
            return Err(TokenError::invalid("key no longer verifies"));
        }
        let claims = Claims(key.verify(token).map_err(TokenError::invalid)?);
        self.check_registered(&claims, now)?;
        Ok(claims)
    }

    fn check_registered(&self, claims: &Claims, now: i64) -> Result<(), TokenError> {
        self.rules.check_registered(claims, now)
    }

    /// simplejwt's `Token.verify` for a token of `expected` type (`None`: any type, as verify
    /// does): `exp` present, a `jti`, and the right `token_type`.
    pub fn check_type(
        &self,
        claims: &Claims,
        expected: Option<TokenType>,
        now: i64,
    ) -> Result<(), TokenError> {
        self.rules.check_type(claims, expected, now)
    }

    /// A sliding token's refresh window: `refresh_exp` present and not passed.
    pub fn check_refresh_window(&self, claims: &Claims, now: i64) -> Result<(), TokenError> {
        self.rules.check_refresh_window(claims, now)
    }

    /// Decodes and checks a token of `expected` type; the full check of a token endpoint.
    pub fn decode_as(
        &self,
        token: &str,
        expected: Option<TokenType>,
        now: i64,
    ) -> Result<Claims, TokenError> {
        let claims = self.decode(token, now)?;
        self.check_type(&claims, expected, now)?;
        Ok(claims)
    }

    /// The token's `jti`, if it has one.
    pub fn jti<'c>(&self, claims: &'c Claims) -> Option<&'c str> {
        self.rules.jti(claims)
    }

    /// The user id claim, read as a string or a number (simplejwt before 5.5 wrote numbers).
    /// Absent, null or empty means the token names no user.
    pub fn user_id(&self, claims: &Claims) -> Option<String> {
        self.rules.user_id(claims)
    }

    /// The claim checks, without the keys: what a service that only verifies tokens needs.
    pub fn rules(&self) -> &ClaimRules {
        &self.rules
    }

    /// The keys in use now: the active signing key and those that verify.
    pub fn keys(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    /// Signs and verifies with `ring` from now on; requests in flight finish with the old one.
    pub fn replace_keys(&self, ring: KeyRing) {
        self.ring.store(Arc::new(ring));
    }
}

/// A short reason for the logs; the client only ever sees "Token is invalid".
pub(crate) fn classify(err: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "algorithm not allowed",
        ErrorKind::InvalidToken => "malformed token",
        ErrorKind::Base64(_) => "bad base64",
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => "bad JSON",
        _ => "not decodable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;
    use serde_json::{json, Value};

    const NOW: i64 = 1_700_000_000;

    fn codec_with(edit: impl FnOnce(&mut Settings)) -> TokenCodec {
        let mut settings = Settings {
            signing_key: Secret("a-test-secret-that-is-long-enough-0123456789".into()),
            ..Settings::default()
        };
        edit(&mut settings);
        TokenCodec::new(&settings).expect("valid settings")
    }

    fn codec() -> TokenCodec {
        codec_with(|_| {})
    }

    fn sign(codec: &TokenCodec, payload: Value) -> String {
        let claims = Claims(payload.as_object().cloned().unwrap_or_default());
        let ring = codec.keys();
        jsonwebtoken::encode(ring.header(), &claims.0, &ring.signing_keys().encoding)
            .expect("signs")
    }

    #[test]
    fn pair_claims_are_written_like_simplejwt() {
        let codec = codec();
        let claims = codec.claims_for_user(TokenType::Refresh, "1", NOW);
        let names: Vec<&str> = claims.0.keys().map(String::as_str).collect();
        assert_eq!(names, ["token_type", "exp", "iat", "jti", "user_id"]);
        assert_eq!(claims.get("user_id"), Some(&json!("1")));
        assert_eq!(claims.timestamp("exp"), Some(NOW + 86_400));
        let sliding = codec.claims_for_user(TokenType::Sliding, "1", NOW);
        assert_eq!(sliding.timestamp("refresh_exp"), Some(NOW + 86_400));
        assert_eq!(sliding.timestamp("exp"), Some(NOW + 300));
    }

    #[test]
    fn signed_tokens_decode_and_keep_their_claims() {
        let codec = codec();
        let issued = codec
            .sign(codec.claims_for_user(TokenType::Access, "7", NOW))
            .expect("signs");
        let claims = codec
            .decode_as(&issued.token, Some(TokenType::Access), NOW)
            .expect("valid");
        assert_eq!(claims, issued.claims);
        assert_eq!(codec.user_id(&claims).as_deref(), Some("7"));
        assert_eq!(issued.expires_at, NOW + 300);
    }

    #[test]
    fn access_from_refresh_copies_custom_claims_and_renews_the_rest() {
        let codec = codec();
        let mut refresh = codec.claims_for_user(TokenType::Refresh, "1", NOW - 100);
        refresh.insert("nickname", "ann");
        let access = codec.access_claims_from(&refresh, NOW);
        assert_eq!(access.get("token_type"), Some(&json!("access")));
        assert_eq!(access.get("nickname"), Some(&json!("ann")));
        assert_eq!(access.timestamp("iat"), Some(NOW));
        assert_ne!(access.get("jti"), refresh.get("jti"));
        let rotated = codec.rotated_claims(&refresh, NOW);
        assert_eq!(rotated.get("token_type"), Some(&json!("refresh")));
        assert_ne!(rotated.get("jti"), refresh.get("jti"));
        assert_eq!(rotated.timestamp("exp"), Some(NOW + 86_400));
    }

    #[test]
    fn headers_other_than_ours_are_read_for_their_kid() {
        let codec = codec();
        let ring = codec.keys();
        let issued = codec
            .sign(codec.claims_for_user(TokenType::Access, "1", NOW))
            .expect("signs");
        let encode = |header: &jsonwebtoken::Header| {
            jsonwebtoken::encode(header, &issued.claims.0, &ring.signing_keys().encoding)
                .expect("signs")
        };
        // Our kid in another header layout, and no kid at all: the configured key.
        let mut reordered = ring.header().clone();
        reordered.typ = None;
        assert!(codec.decode(&encode(&reordered), NOW).is_ok());
        reordered.kid = None;
        assert!(codec.decode(&encode(&reordered), NOW).is_ok());
        // A kid the ring does not hold, even on a token signed with the right key.
        reordered.kid = Some("k".into());
        assert_eq!(
            codec.decode(&encode(&reordered), NOW),
            Err(TokenError::invalid("unknown key id"))
        );
    }

    #[test]
    fn duplicate_claims_are_refused() {
        use base64::Engine;
        let codec = codec();
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let signing_input = format!(
            "{}.{}",
            b64(r#"{"typ":"JWT","alg":"HS256"}"#),
            b64(r#"{"exp":1800000000,"user_id":"1","user_id":"2"}"#)
        );
        let signature = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &codec.keys().signing_keys().encoding,
            jsonwebtoken::Algorithm::HS256,
        )
        .expect("signs");
        let token = format!("{signing_input}.{signature}");
        assert!(matches!(
            codec.decode(&token, NOW),
            Err(TokenError::Invalid { .. })
        ));
    }

    #[test]
    fn expiry_follows_pyjwt_with_leeway() {
        let codec = codec_with(|s| s.leeway = std::time::Duration::from_secs(10));
        let token = sign(
            &codec,
            json!({"exp": NOW - 10, "jti": "a", "token_type": "access"}),
        );
        assert_eq!(codec.decode(&token, NOW), Err(TokenError::Expired));
        let token = sign(
            &codec,
            json!({"exp": NOW - 9, "jti": "a", "token_type": "access"}),
        );
        assert!(codec.decode(&token, NOW).is_ok());
    }

    #[test]
    fn future_iat_and_nbf_are_invalid() {
        let codec = codec();
        for claim in ["iat", "nbf"] {
            let token = sign(&codec, json!({"exp": NOW + 60, claim: NOW + 30}));
            assert!(
                matches!(codec.decode(&token, NOW), Err(TokenError::Invalid { .. })),
                "{claim}"
            );
        }
    }

    #[test]
    fn non_string_sub_and_jti_are_invalid_and_checked_after_expiry() {
        let codec = codec();
        for (claim, value) in [("sub", json!(1)), ("jti", json!(7)), ("jti", json!(null))] {
            let token = sign(&codec, json!({"exp": NOW + 60, claim: value}));
            assert!(
                matches!(codec.decode(&token, NOW), Err(TokenError::Invalid { .. })),
                "{claim}"
            );
            let expired = sign(&codec, json!({"exp": NOW - 60, claim: value}));
            assert_eq!(codec.decode(&expired, NOW), Err(TokenError::Expired));
        }
        let token = sign(&codec, json!({"exp": NOW + 60, "sub": "1", "jti": "a"}));
        assert!(codec.decode(&token, NOW).is_ok());
    }

    #[test]
    fn type_checks_come_in_simplejwts_order() {
        let codec = codec();
        let check = |payload: Value| {
            let claims = Claims(payload.as_object().cloned().unwrap_or_default());
            codec.check_type(&claims, Some(TokenType::Refresh), NOW)
        };
        assert_eq!(
            check(json!({})),
            Err(TokenError::MissingClaim("exp".into()))
        );
        assert_eq!(check(json!({"exp": NOW + 1})), Err(TokenError::NoId));
        assert_eq!(
            check(json!({"exp": NOW + 1, "jti": "x"})),
            Err(TokenError::NoType)
        );
        assert_eq!(
            check(json!({"exp": NOW + 1, "jti": "x", "token_type": "access"})),
            Err(TokenError::WrongType)
        );
        assert_eq!(
            check(json!({"exp": NOW + 1, "jti": "x", "token_type": "refresh"})),
            Ok(())
        );
    }

    #[test]
    fn audience_and_issuer_are_enforced_when_configured() {
        let codec = codec_with(|s| {
            s.audience = vec!["api".into()];
            s.issuer = Some("tollgate".into());
        });
        let good = codec
            .sign(codec.claims_for_user(TokenType::Access, "1", NOW))
            .expect("signs");
        assert!(codec.decode(&good.token, NOW).is_ok());
        let wrong_aud = sign(
            &codec,
            json!({"exp": NOW + 60, "aud": "other", "iss": "tollgate"}),
        );
        assert!(codec.decode(&wrong_aud, NOW).is_err());
        let no_iss = sign(&codec, json!({"exp": NOW + 60, "aud": ["x", "api"]}));
        assert!(codec.decode(&no_iss, NOW).is_err());
    }

    #[test]
    fn other_keys_and_algorithms_are_refused() {
        let codec = codec();
        let other = codec_with(|s| {
            s.signing_key = Secret("another-secret-of-enough-length-0123456789".into())
        });
        let token = sign(&other, json!({"exp": NOW + 60}));
        assert_eq!(
            codec.decode(&token, NOW),
            Err(TokenError::invalid("unknown key id"))
        );
        let claims = Claims(
            json!({"exp": NOW + 60})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let forged = jsonwebtoken::encode(
            codec.keys().header(),
            &claims.0,
            &other.keys().signing_keys().encoding,
        )
        .expect("signs");
        assert_eq!(
            codec.decode(&forged, NOW),
            Err(TokenError::invalid("bad signature"))
        );
        let hs512 = codec_with(|s| s.algorithm = crate::keys::Algorithm::HS512);
        let token = hs512
            .sign(hs512.claims_for_user(TokenType::Access, "1", NOW))
            .expect("signs");
        assert!(matches!(
            codec.decode(&token.token, NOW),
            Err(TokenError::Invalid { .. })
        ));
    }

    #[test]
    fn user_id_is_read_as_string_or_number() {
        let codec = codec();
        let read = |v: Value| {
            codec.user_id(&Claims(
                json!({ "user_id": v })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ))
        };
        assert_eq!(read(json!("5")).as_deref(), Some("5"));
        assert_eq!(read(json!(5)).as_deref(), Some("5"));
        assert_eq!(read(json!("")), None);
        assert_eq!(read(json!(null)), None);
    }
}
