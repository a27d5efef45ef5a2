//! Verifying keys picked by a token's `kid`: the keys of a JWK Set (RFC 7517), as another
//! issuer or a Tollgate server publishes them, or the verifying half of the local settings.
//!
//! A key set only verifies. Keys from a JWK Set are public keys: a symmetric (`oct`) JWK is
//! ignored, so that a document fetched over the network can never make an HMAC secret of a
//! public key (the algorithm-confusion attack of RFC 8725, section 2.1).

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use crate::codec::{classify, signature_only};
use crate::jose::{header_kid, UniqueObject};
use crate::keys::Algorithm;
use crate::settings::{Settings, SettingsError};
use crate::token::{Claims, TokenError};

/// One verifying key, the algorithms it may verify and its `kid`.
#[derive(Clone)]
struct VerifyingKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    decoding: DecodingKey,
}

/// Verifying keys by `kid`.
///
/// ```
/// use tollgate_core::KeySet;
///
/// let jwks = br#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "use": "sig",
///                           "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let keys = KeySet::from_jwks(jwks).unwrap();
/// assert_eq!(keys.kids().collect::<Vec<_>>(), ["k1"]);
/// ```
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A document that is not a JWK Set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a JWK Set: {0}")]
pub struct JwksError(String);

impl KeySet {
    /// The signature keys of a JWK Set document (`{"keys": [...]}`). Keys meant for
    /// encryption, symmetric keys and keys of unsupported types are skipped; a key without
    /// `alg` verifies the algorithms its type allows (RS*/PS* for RSA, the curve's for EC
    /// and OKP).
    pub fn from_jwks(document: &[u8]) -> Result<KeySet, JwksError> {
        let value: Value =
            serde_json::from_slice(document).map_err(|err| JwksError(err.to_string()))?;
        let members = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| JwksError("no \"keys\" array".to_owned()))?;
        let keys = members
            .iter()
            .filter_map(|member| serde_json::from_value::<Jwk>(member.clone()).ok())
            .filter_map(|jwk| verifying_key(&jwk))
            .collect();
        Ok(KeySet { keys })
    }

    /// The verifying half of ALGORITHM with SIGNING_KEY (HS*) or VERIFYING_KEY (others), with
    /// the `kid` Tollgate writes for that key. Only the public key is needed for RS*, PS*, ES*
    /// and EdDSA: a service that verifies tokens never holds the private key.
    pub fn from_settings(settings: &Settings) -> Result<KeySet, SettingsError> {
        let algorithm = settings.algorithm;
        let invalid = |key: &'static str, message: String| SettingsError::Invalid { key, message };
        let (kid, decoding) = if algorithm.is_hmac() {
            let secret = settings.signing_key.expose().as_bytes();
            if secret.is_empty() {
                return Err(invalid("SIGNING_KEY", "is empty".to_owned()));
            }
            (
                crate::jwk::hmac_kid(secret),
                DecodingKey::from_secret(secret),
            )
        } else {
            let pem = settings.verifying_key.as_bytes();
            let bad = |err: jsonwebtoken::errors::Error| {
                invalid(
                    "VERIFYING_KEY",
                    format!("not a usable {} key: {err}", algorithm.as_str()),
                )
            };
            let decoding = match algorithm {
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
                Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
                _ => DecodingKey::from_rsa_pem(pem),
            }
            .map_err(bad)?;
            let jwk = crate::jwk::public_jwk(algorithm, &settings.verifying_key)
                .map_err(|message| invalid("VERIFYING_KEY", message))?;
            let kid = jwk
                .get("kid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (kid, decoding)
        };
        Ok(KeySet {
            keys: vec![VerifyingKey {
                kid: Some(kid),
                algorithms: vec![algorithm],
                decoding,
            }],
        })
    }

    /// The `kid` of every key that has one.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|key| key.kid.as_deref())
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether the set has a key for this token's `kid`; a token without `kid` is matched by a
    /// set of exactly one key. `false` for a token whose header cannot be read.
    pub fn has_key_for(&self, token: &str) -> bool {
        jsonwebtoken::decode_header(token)
            .map(|header| self.find(header.kid.as_deref()).is_some())
            .unwrap_or(false)
    }

    fn find(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|key| key.kid.as_deref() == Some(kid)),
            None => match self.keys.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        }
    }

    /// Checks the token's header and signature with the key named by its `kid`, and returns
    /// its claims. The claims themselves are not checked here: see
    /// [`ClaimRules`](crate::rules::ClaimRules).
    pub fn verify_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let segment = token.split('.').next().unwrap_or_default();
        header_kid(segment).map_err(TokenError::invalid)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| TokenError::invalid(classify(&err)))?;
        let key = self
            .find(header.kid.as_deref())
            .ok_or(TokenError::invalid("no key with this kid"))?;
        let algorithm = Algorithm::ALL
            .into_iter()
            .find(|alg| alg.to_jsonwebtoken() == header.alg)
            .filter(|alg| key.algorithms.contains(alg))
            .ok_or(TokenError::invalid("algorithm not allowed"))?;
        let data = jsonwebtoken::decode::<UniqueObject>(
            token,
            &key.decoding,
            &signature_only(algorithm.to_jsonwebtoken()),
        )
        .map_err(|err| TokenError::invalid(classify(&err)))?;
        Ok(Claims(data.claims.0))
    }
}

/// The key of a JWK that verifies signatures with a supported asymmetric algorithm.
fn verifying_key(jwk: &Jwk) -> Option<VerifyingKey> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let allowed: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        // Symmetric keys never come from a key set; other types are not supported.
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::OctetKeyPair(_) => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        None => allowed,
        Some(named) => {
            let named = key_algorithm(named)?;
            allowed.contains(&named).then(|| vec![named])?
        }
    };
    Some(VerifyingKey {
        kid: jwk.common.key_id.clone(),
        algorithms,
        decoding: DecodingKey::from_jwk(jwk).ok()?,
    })
}

fn key_algorithm(named: KeyAlgorithm) -> Option<Algorithm> {
    Some(match named {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;
    use crate::{Keys, TokenCodec, TokenType};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn codec(alg: Algorithm, pair: &str) -> TokenCodec {
        let (private, public) = match (alg, pair) {
            (Algorithm::ES256, "a") => (
                include_str!("../fixtures/keys/p256_a.pem"),
                include_str!("../fixtures/keys/p256_a.pub.pem"),
            ),
            (Algorithm::ES256, _) => (
                include_str!("../fixtures/keys/p256_b.pem"),
                include_str!("../fixtures/keys/p256_b.pub.pem"),
            ),
            (Algorithm::EdDSA, _) => (
                include_str!("../fixtures/keys/ed25519_a.pem"),
                include_str!("../fixtures/keys/ed25519_a.pub.pem"),
            ),
            _ => (
                include_str!("../fixtures/keys/rsa_a.pem"),
                include_str!("../fixtures/keys/rsa_a.pub.pem"),
            ),
        };
        TokenCodec::new(&Settings {
            algorithm: alg,
            signing_key: Secret(private.to_owned()),
            verifying_key: public.to_owned(),
            ..Settings::default()
        })
        .expect("keys")
    }

    fn jwks(keys: &[&Keys]) -> Vec<u8> {
        let keys: Vec<Value> = keys
            .iter()
            .filter_map(|k| k.public_jwk().cloned().map(Value::Object))
            .collect();
        json!({ "keys": keys }).to_string().into_bytes()
    }

    fn token(codec: &TokenCodec) -> String {
        codec
            .sign(codec.claims_for_user(TokenType::Access, "7", NOW))
            .expect("signs")
            .token
    }

    #[test]
    fn tokens_verify_with_the_key_named_by_their_kid() {
        let (a, b, ed) = (
            codec(Algorithm::ES256, "a"),
            codec(Algorithm::ES256, "b"),
            codec(Algorithm::EdDSA, "a"),
        );
        let set = KeySet::from_jwks(&jwks(&[a.keys().signing_keys(), ed.keys().signing_keys()]))
            .expect("jwks");
        assert_eq!(set.kids().count(), 2);
        for codec in [&a, &ed] {
            let claims = set.verify_signature(&token(codec)).expect("verifies");
            assert_eq!(claims.str("user_id"), Some("7"));
        }
        let unknown = token(&b);
        assert!(!set.has_key_for(&unknown));
        assert_eq!(
            set.verify_signature(&unknown),
            Err(TokenError::invalid("no key with this kid"))
        );
    }

    #[test]
    fn a_token_naming_a_known_kid_but_signed_by_another_key_is_refused() {
        let (a, b) = (codec(Algorithm::ES256, "a"), codec(Algorithm::ES256, "b"));
        let set = KeySet::from_jwks(&jwks(&[a.keys().signing_keys()])).expect("jwks");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(a.keys().signing_keys().kid().to_owned());
        let forged = jsonwebtoken::encode(
            &header,
            &json!({"exp": NOW + 60}),
            &b.keys().signing_keys().encoding,
        )
        .expect("signs");
        assert!(set.has_key_for(&forged));
        assert_eq!(
            set.verify_signature(&forged),
            Err(TokenError::invalid("bad signature"))
        );
    }

    #[test]
    fn symmetric_and_encryption_keys_are_ignored() {
        let document = json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "wrong-alg", "alg": "ES256",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "unknown"},
        ]});
        let set = KeySet::from_jwks(document.to_string().as_bytes()).expect("a JWK Set");
        assert!(set.is_empty(), "{set:?}");
        // An HS256 token naming the symmetric key is refused: there is no such key.
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("h".into());
        let token = jsonwebtoken::encode(
            &header,
            &json!({"exp": NOW + 60}),
            &jsonwebtoken::EncodingKey::from_secret(b"secret-secret-secret-secret"),
        )
        .expect("signs");
        assert!(set.verify_signature(&token).is_err());
    }

    #[test]
    fn an_algorithm_other_than_the_keys_is_refused() {
        let rsa = codec(Algorithm::RS256, "a");
        let mut jwk = rsa
            .keys()
            .signing_keys()
            .public_jwk()
            .cloned()
            .expect("jwk");
        jwk.remove("alg");
        let set = KeySet::from_jwks(json!({"keys": [jwk]}).to_string().as_bytes()).expect("set");
        assert!(set.verify_signature(&token(&rsa)).is_ok(), "RS256 allowed");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(rsa.keys().signing_keys().kid().to_owned());
        let confused = jsonwebtoken::encode(
            &header,
            &json!({"exp": NOW + 60}),
            &jsonwebtoken::EncodingKey::from_secret(b"anything"),
        )
        .expect("signs");
        assert_eq!(
            set.verify_signature(&confused),
            Err(TokenError::invalid("algorithm not allowed"))
        );
    }

    #[test]
    fn documents_that_are_not_key_sets_are_errors() {
        assert!(KeySet::from_jwks(b"not json").is_err());
        assert!(KeySet::from_jwks(b"{\"keys\": 1}").is_err());
        assert!(KeySet::from_jwks(b"{\"keys\": []}").is_ok_and(|s| s.is_empty()));
    }

    #[test]
    fn local_settings_need_only_the_public_key() {
        let signer = codec(Algorithm::ES256, "a");
        let settings = Settings {
            algorithm: Algorithm::ES256,
            verifying_key: include_str!("../fixtures/keys/p256_a.pub.pem").to_owned(),
            ..Settings::default()
        };
        let set = KeySet::from_settings(&settings).expect("public key is enough");
        assert_eq!(
            set.kids().collect::<Vec<_>>(),
            [signer.keys().signing_keys().kid()]
        );
        assert!(set.verify_signature(&token(&signer)).is_ok());
        let hmac = Settings {
            signing_key: Secret("a-test-secret-that-is-long-enough-0123456789".into()),
            ..Settings::default()
        };
        let hs = TokenCodec::new(&hmac).expect("codec");
        let set = KeySet::from_settings(&hmac).expect("secret");
        assert!(set.verify_signature(&token(&hs)).is_ok());
        assert!(KeySet::from_settings(&Settings::default()).is_err());
    }
}
