//! Signing algorithms and the keys built from the settings, parsed once at start-up.

use std::str::FromStr;

use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Map, Value};

use crate::codec::signature_only;
use crate::settings::{Settings, SettingsError};

/// A JWT signing algorithm that Tollgate can be configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in the order they are documented.
    pub const ALL: [Algorithm; 12] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The name as it appears in a JWT header's `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Whether the algorithm is an HMAC, keyed by a shared secret.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    /// The shortest HMAC secret that gives the algorithm its full strength: its hash's size.
    pub fn min_hmac_key_len(self) -> usize {
        match self {
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            _ => 32,
        }
    }

    fn to_ring_hmac(self) -> Option<ring::hmac::Algorithm> {
        match self {
            Algorithm::HS256 => Some(ring::hmac::HMAC_SHA256),
            Algorithm::HS384 => Some(ring::hmac::HMAC_SHA384),
            Algorithm::HS512 => Some(ring::hmac::HMAC_SHA512),
            _ => None,
        }
    }

    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as J;
        match self {
            Algorithm::HS256 => J::HS256,
            Algorithm::HS384 => J::HS384,
            Algorithm::HS512 => J::HS512,
            Algorithm::RS256 => J::RS256,
            Algorithm::RS384 => J::RS384,
            Algorithm::RS512 => J::RS512,
            Algorithm::PS256 => J::PS256,
            Algorithm::PS384 => J::PS384,
            Algorithm::PS512 => J::PS512,
            Algorithm::ES256 => J::ES256,
            Algorithm::ES384 => J::ES384,
            Algorithm::EdDSA => J::EdDSA,
        }
    }
}

impl FromStr for Algorithm {
    type Err = ();
    fn from_str(name: &str) -> Result<Self, ()> {
        Algorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str() == name)
            .ok_or(())
    }
}

/// One signing key with its verifying half, decoded once, and its public description.
#[derive(Clone)]
pub struct Keys {
    pub(crate) algorithm: Algorithm,
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    pub(crate) jwk: Option<Map<String, Value>>,
    /// An HMAC secret keyed once: keying costs two hash blocks, which checking every token
    /// would otherwise pay again.
    pub(crate) hmac: Option<ring::hmac::Key>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Which half of a key pair is unusable, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The private key or HMAC secret.
    #[error("signing key: {0}")]
    Signing(String),
    /// The public key.
    #[error("verifying key: {0}")]
    Verifying(String),
}

impl Keys {
    /// Builds the keys from `ALGORITHM`, `SIGNING_KEY` and `VERIFYING_KEY`.
    pub fn from_settings(settings: &Settings) -> Result<Keys, SettingsError> {
        Keys::new(
            settings.algorithm,
            settings.signing_key.expose(),
            &settings.verifying_key,
        )
        .map_err(|err| match err {
            KeyError::Signing(message) => SettingsError::Invalid {
                key: "SIGNING_KEY",
                message,
            },
            KeyError::Verifying(message) => SettingsError::Invalid {
                key: "VERIFYING_KEY",
                message,
            },
        })
    }

    /// Builds keys from an HMAC secret (`verifying` ignored) or a PEM private and public key.
    /// A pair whose halves do not belong together is refused.
    ///
    /// ```
    /// use tollgate_core::{Algorithm, Keys};
    ///
    /// let keys = Keys::new(Algorithm::HS256, "a long random secret of at least 32 bytes!", "").unwrap();
    /// assert_eq!(keys.algorithm(), Algorithm::HS256);
    /// assert!(keys.public_jwk().is_none(), "HMAC secrets are never published");
    /// ```
    pub fn new(algorithm: Algorithm, signing: &str, verifying: &str) -> Result<Keys, KeyError> {
        let bad = |err: jsonwebtoken::errors::Error| {
            format!("not a usable {} key: {err}", algorithm.as_str())
        };
        let sign = |err| KeyError::Signing(bad(err));
        let verify = |err| KeyError::Verifying(bad(err));
        let (s, v) = (signing.as_bytes(), verifying.as_bytes());
        let (encoding, decoding) = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                if s.is_empty() {
                    return Err(KeyError::Signing(
                        "is empty; set a long random secret".to_owned(),
                    ));
                }
                (EncodingKey::from_secret(s), DecodingKey::from_secret(s))
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => (
                EncodingKey::from_rsa_pem(s).map_err(sign)?,
                DecodingKey::from_rsa_pem(v).map_err(verify)?,
            ),
            Algorithm::ES256 | Algorithm::ES384 => (
                EncodingKey::from_ec_pem(s).map_err(sign)?,
                DecodingKey::from_ec_pem(v).map_err(verify)?,
            ),
            Algorithm::EdDSA => (
                EncodingKey::from_ed_pem(s).map_err(sign)?,
                DecodingKey::from_ed_pem(v).map_err(verify)?,
            ),
        };
        let (kid, jwk) = if algorithm.is_hmac() {
            (crate::jwk::hmac_kid(s), None)
        } else {
            let jwk = crate::jwk::public_jwk(algorithm, verifying).map_err(KeyError::Verifying)?;
            let kid = jwk
                .get("kid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (kid, Some(jwk))
        };
        let keys = Keys {
            algorithm,
            kid,
            encoding,
            decoding,
            jwk,
            hmac: algorithm
                .to_ring_hmac()
                .map(|hmac| ring::hmac::Key::new(hmac, s)),
        };
        keys.check_pair()?;
        Ok(keys)
    }

    /// Signs a probe and verifies it, so that a public key from another pair fails at start-up
    /// rather than on every request.
    fn check_pair(&self) -> Result<(), KeyError> {
        let alg = self.algorithm.to_jsonwebtoken();
        let probe =
            jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &Map::new(), &self.encoding)
                .map_err(|err| KeyError::Signing(format!("cannot sign: {err}")))?;
        jsonwebtoken::decode::<Map<String, Value>>(&probe, &self.decoding, &signature_only(alg))
            .map(|_| ())
            .map_err(|_| KeyError::Verifying("does not belong to the signing key".to_owned()))
    }

    /// The algorithm these keys are for.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key id written in the `kid` header of every token these keys sign: the public key's
    /// JWK thumbprint (RFC 7638), or for HMAC a hash that does not reveal the secret.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK with `kid`, `alg` and `use`; `None` for HMAC secrets.
    pub fn public_jwk(&self) -> Option<&Map<String, Value>> {
        self.jwk.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_its_name() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
        }
        assert!("none".parse::<Algorithm>().is_err());
        assert!("hs256".parse::<Algorithm>().is_err());
    }

    use crate::settings::Secret;
    use crate::{TokenCodec, TokenError, TokenType};

    const NOW: i64 = 1_700_000_000;

    /// The fixture pair (`a` or `b`) for an algorithm; see fixtures/keys/README.md.
    fn fixture(alg: Algorithm, pair: char) -> (String, String) {
        macro_rules! pem {
            ($name:literal) => {
                match pair {
                    'a' => (
                        include_str!(concat!("../fixtures/keys/", $name, "_a.pem")),
                        include_str!(concat!("../fixtures/keys/", $name, "_a.pub.pem")),
                    ),
                    _ => (
                        include_str!(concat!("../fixtures/keys/", $name, "_b.pem")),
                        include_str!(concat!("../fixtures/keys/", $name, "_b.pub.pem")),
                    ),
                }
            };
        }
        let (private, public) = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let secret = format!("hmac-secret-{pair}-").repeat(8);
                return (secret, String::new());
            }
            Algorithm::ES256 => pem!("p256"),
            Algorithm::ES384 => pem!("p384"),
            Algorithm::EdDSA => pem!("ed25519"),
            _ => pem!("rsa"),
        };
        (private.to_owned(), public.to_owned())
    }

    fn codec(alg: Algorithm, (signing, verifying): (String, String)) -> TokenCodec {
        let settings = Settings {
            algorithm: alg,
            signing_key: Secret(signing),
            verifying_key: verifying,
            ..Settings::default()
        };
        TokenCodec::new(&settings).expect("usable keys")
    }

    fn flip(token: &str, at: usize) -> String {
        let mut bytes = token.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).expect("ascii")
    }

    #[test]
    fn every_algorithm_mints_verifies_and_refuses_wrong_keys_and_tampering() {
        for alg in Algorithm::ALL {
            let codec_a = codec(alg, fixture(alg, 'a'));
            let codec_b = codec(alg, fixture(alg, 'b'));
            let issued = codec_a
                .sign(codec_a.claims_for_user(TokenType::Access, "42", NOW))
                .expect("signs");
            let claims = codec_a
                .decode_as(&issued.token, Some(TokenType::Access), NOW)
                .unwrap_or_else(|err| panic!("{alg:?}: {err:?}"));
            assert_eq!(codec_a.user_id(&claims).as_deref(), Some("42"), "{alg:?}");

            let header = jsonwebtoken::decode_header(&issued.token).expect("header");
            assert_eq!(header.alg, alg.to_jsonwebtoken(), "{alg:?}");
            assert_eq!(
                header.kid.as_deref(),
                Some(codec_a.keys().signing_keys().kid()),
                "{alg:?}"
            );

            assert_eq!(
                codec_b.decode(&issued.token, NOW),
                Err(TokenError::invalid("unknown key id")),
                "{alg:?} verified with another key"
            );
            // Another key's signature under this key's header (and kid).
            let forged = jsonwebtoken::encode(
                codec_a.keys().header(),
                &issued.claims.0,
                &codec_b.keys().signing_keys().encoding,
            )
            .expect("signs");
            assert_eq!(
                codec_a.decode(&forged, NOW),
                Err(TokenError::invalid("bad signature")),
                "{alg:?} verified another key's signature"
            );
            let payload_at = issued.token.find('.').expect("dot") + 5;
            let signature_at = issued.token.rfind('.').expect("dot") + 5;
            for at in [payload_at, signature_at] {
                assert!(
                    matches!(
                        codec_a.decode(&flip(&issued.token, at), NOW),
                        Err(TokenError::Invalid { .. })
                    ),
                    "{alg:?} accepted a token altered at byte {at}"
                );
            }
        }
    }

    #[test]
    fn a_token_of_one_algorithm_is_refused_by_a_codec_of_another() {
        let rs = codec(Algorithm::RS256, fixture(Algorithm::RS256, 'a'));
        let ps = codec(Algorithm::PS256, fixture(Algorithm::PS256, 'a'));
        let token = rs
            .sign(rs.claims_for_user(TokenType::Access, "1", NOW))
            .expect("signs");
        assert_eq!(
            ps.decode(&token.token, NOW),
            Err(TokenError::invalid("algorithm not allowed"))
        );
    }

    #[test]
    fn generated_keys_work_for_every_algorithm() {
        for alg in Algorithm::ALL {
            let key = crate::keygen::generate(alg).expect("generates");
            assert_eq!(key.verifying_key.is_none(), alg.is_hmac(), "{alg:?}");
            if alg.is_hmac() {
                assert!(key.signing_key.expose().len() >= alg.min_hmac_key_len());
            }
            let codec = codec(
                alg,
                (
                    key.signing_key.expose().to_owned(),
                    key.verifying_key.unwrap_or_default(),
                ),
            );
            let issued = codec
                .sign(codec.claims_for_user(TokenType::Access, "1", NOW))
                .expect("signs");
            assert!(codec.decode(&issued.token, NOW).is_ok(), "{alg:?}");
        }
        let one = crate::keygen::generate(Algorithm::HS256).expect("generates");
        let two = crate::keygen::generate(Algorithm::HS256).expect("generates");
        assert_ne!(one.signing_key.expose(), two.signing_key.expose());
    }

    #[test]
    fn published_jwks_verify_tokens_with_an_independent_decoder() {
        for alg in Algorithm::ALL.into_iter().filter(|a| !a.is_hmac()) {
            let codec = codec(alg, fixture(alg, 'a'));
            let ring = codec.keys();
            let jwk = ring
                .signing_keys()
                .public_jwk()
                .expect("asymmetric keys have a JWK");
            assert_eq!(jwk.get("use"), Some(&Value::String("sig".into())));
            assert_eq!(jwk.get("alg"), Some(&Value::String(alg.as_str().into())));
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(jwk.get(private).is_none(), "{alg:?} publishes {private}");
            }
            let parsed: jsonwebtoken::jwk::Jwk =
                serde_json::from_value(Value::Object(jwk.clone())).expect("a valid JWK");
            let key = DecodingKey::from_jwk(&parsed).expect("usable JWK");
            let issued = codec
                .sign(codec.claims_for_user(TokenType::Access, "1", NOW))
                .expect("signs");
            let mut validation = jsonwebtoken::Validation::new(alg.to_jsonwebtoken());
            validation.validate_exp = false;
            jsonwebtoken::decode::<Map<String, Value>>(&issued.token, &key, &validation)
                .unwrap_or_else(|err| panic!("{alg:?}: {err}"));
        }
    }

    #[test]
    fn kid_is_the_rfc_7638_thumbprint() {
        // The example key of RFC 7638 section 3.1 and its thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let der = {
            use base64::Engine as _;
            use rsa::pkcs8::EncodePublicKey;
            let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(n)
                .expect("b64");
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&n),
                rsa::BigUint::from(65_537u32),
            )
            .expect("key");
            key.to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .expect("pem")
        };
        let jwk = crate::jwk::public_jwk(Algorithm::RS256, &der).expect("jwk");
        assert_eq!(
            jwk.get("kid").and_then(Value::as_str),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn a_public_key_from_another_pair_is_refused() {
        let (signing, _) = fixture(Algorithm::ES256, 'a');
        let (_, verifying) = fixture(Algorithm::ES256, 'b');
        assert_eq!(
            Keys::new(Algorithm::ES256, &signing, &verifying).unwrap_err(),
            KeyError::Verifying("does not belong to the signing key".into())
        );
        let (_, rsa_public) = fixture(Algorithm::RS256, 'a');
        assert!(matches!(
            Keys::new(Algorithm::ES256, &signing, &rsa_public),
            Err(KeyError::Verifying(_))
        ));
    }

    #[test]
    fn hmac_kids_differ_per_secret_and_do_not_contain_it() {
        let a = Keys::new(
            Algorithm::HS256,
            "first secret first secret first secret",
            "",
        )
        .expect("keys");
        let b = Keys::new(
            Algorithm::HS256,
            "other secret other secret other secret",
            "",
        )
        .expect("keys");
        assert_ne!(a.kid(), b.kid());
        assert!(!a.kid().contains("secret"));
    }

    #[test]
    fn an_empty_hmac_secret_is_refused() {
        let err = Keys::from_settings(&Settings::default()).unwrap_err();
        assert!(err.to_string().contains("SIGNING_KEY"), "{err}");
    }

    #[test]
    fn a_bad_pem_names_the_setting() {
        let settings = Settings {
            algorithm: Algorithm::ES256,
            signing_key: crate::settings::Secret("not a pem".into()),
            verifying_key: "not a pem".into(),
            ..Settings::default()
        };
        let err = Keys::from_settings(&settings).unwrap_err();
        assert!(err.to_string().starts_with("setting SIGNING_KEY"), "{err}");
    }
}
