//! New signing keys: a random secret for HS*, a PEM key pair for the asymmetric algorithms.
//!
//! EC and Ed25519 pairs come from `ring` (already Tollgate's signing backend); RSA pairs from the
//! `rsa` crate, since `ring` cannot generate RSA keys. Private keys are PKCS#8, public keys
//! SubjectPublicKeyInfo: the `PRIVATE KEY` / `PUBLIC KEY` PEMs that `openssl` writes.

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

use crate::keys::Algorithm;
use crate::settings::Secret;

/// Size of generated RSA moduli, in bits.
pub const RSA_BITS: usize = 2048;

/// A key could not be generated (the system's random source failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot generate a {algorithm} key: {reason}")]
pub struct KeygenError {
    algorithm: &'static str,
    reason: String,
}

/// A freshly generated key: what goes into `SIGNING_KEY` and `VERIFYING_KEY`.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// The algorithm the key is for.
    pub algorithm: Algorithm,
    /// For HS*, the random secret (base64url text); otherwise the PKCS#8 private key PEM.
    pub signing_key: Secret,
    /// The SubjectPublicKeyInfo public key PEM; `None` for HS*.
    pub verifying_key: Option<String>,
}

/// Generates a new key for `algorithm`.
///
/// ```
/// use tollgate_core::{keygen, Algorithm};
///
/// let key = keygen::generate(Algorithm::ES256).unwrap();
/// assert!(key.signing_key.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
/// assert!(key.verifying_key.unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
/// ```
pub fn generate(algorithm: Algorithm) -> Result<GeneratedKey, KeygenError> {
    let fail = |reason: String| KeygenError {
        algorithm: algorithm.as_str(),
        reason,
    };
    let rng = SystemRandom::new();
    let (private_der, public_der) = match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            let mut secret = vec![0u8; algorithm.min_hmac_key_len()];
            rng.fill(&mut secret)
                .map_err(|_| fail("no randomness".into()))?;
            let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&secret);
            return Ok(GeneratedKey {
                algorithm,
                signing_key: Secret(text),
                verifying_key: None,
            });
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            let (curve, spki_prefix): (_, &[u8]) = if algorithm == Algorithm::ES256 {
                (
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &crate::jwk::P256_SPKI_PREFIX,
                )
            } else {
                (
                    &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                    &crate::jwk::P384_SPKI_PREFIX,
                )
            };
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(curve, &rng)
                .map_err(|_| fail("no randomness".into()))?;
            let pair = EcdsaKeyPair::from_pkcs8(curve, pkcs8.as_ref(), &rng)
                .map_err(|err| fail(err.to_string()))?;
            let public = [spki_prefix, pair.public_key().as_ref()].concat();
            (pkcs8.as_ref().to_vec(), public)
        }
        Algorithm::EdDSA => {
            let pkcs8 =
                Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| fail("no randomness".into()))?;
            let pair =
                Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|err| fail(err.to_string()))?;
            let public = [
                &crate::jwk::ED25519_SPKI_PREFIX[..],
                pair.public_key().as_ref(),
            ]
            .concat();
            (pkcs8.as_ref().to_vec(), public)
        }
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
            let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS)
                .map_err(|err| fail(err.to_string()))?;
            let private_der = private
                .to_pkcs8_der()
                .map_err(|err| fail(err.to_string()))?;
            let public_der = private
                .to_public_key()
                .to_public_key_der()
                .map_err(|err| fail(err.to_string()))?;
            (
                private_der.as_bytes().to_vec(),
                public_der.as_bytes().to_vec(),
            )
        }
    };
    Ok(GeneratedKey {
        algorithm,
        signing_key: Secret(pem("PRIVATE KEY", &private_der)),
        verifying_key: Some(pem("PUBLIC KEY", &public_der)),
    })
}

/// DER wrapped as PEM, in 64-character lines.
fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
