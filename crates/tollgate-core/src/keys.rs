//! Signing algorithms and the keys built from the settings, parsed once at start-up.

use std::str::FromStr;

use jsonwebtoken::{DecodingKey, EncodingKey};

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

/// The keys that sign and verify tokens, decoded once from the settings.
#[derive(Clone)]
pub struct Keys {
    pub(crate) algorithm: Algorithm,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Builds the keys from `ALGORITHM`, `SIGNING_KEY` and `VERIFYING_KEY`.
    pub fn from_settings(settings: &Settings) -> Result<Keys, SettingsError> {
        let algorithm = settings.algorithm;
        let signing = settings.signing_key.expose().as_bytes();
        let verifying = settings.verifying_key.as_bytes();
        let bad = |key: &'static str, err: jsonwebtoken::errors::Error| SettingsError::Invalid {
            key,
            message: format!("not a usable {} key: {err}", algorithm.as_str()),
        };
        let (encoding, decoding) = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                if signing.is_empty() {
                    return Err(SettingsError::Invalid {
                        key: "SIGNING_KEY",
                        message: "is empty; set a long random secret".to_owned(),
                    });
                }
                (
                    EncodingKey::from_secret(signing),
                    DecodingKey::from_secret(signing),
                )
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => (
                EncodingKey::from_rsa_pem(signing).map_err(|e| bad("SIGNING_KEY", e))?,
                DecodingKey::from_rsa_pem(verifying).map_err(|e| bad("VERIFYING_KEY", e))?,
            ),
            Algorithm::ES256 | Algorithm::ES384 => (
                EncodingKey::from_ec_pem(signing).map_err(|e| bad("SIGNING_KEY", e))?,
                DecodingKey::from_ec_pem(verifying).map_err(|e| bad("VERIFYING_KEY", e))?,
            ),
            Algorithm::EdDSA => (
                EncodingKey::from_ed_pem(signing).map_err(|e| bad("SIGNING_KEY", e))?,
                DecodingKey::from_ed_pem(verifying).map_err(|e| bad("VERIFYING_KEY", e))?,
            ),
        };
        Ok(Keys {
            algorithm,
            encoding,
            decoding,
        })
    }

    /// The algorithm these keys are for.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
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
