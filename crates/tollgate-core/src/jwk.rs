//! Public keys as JWKs (RFC 7517) and key ids as JWK thumbprints (RFC 7638).
//!
//! A verifying key's `kid` is its thumbprint, so every instance that holds the same key derives
//! the same `kid` without coordinating. HMAC secrets are never published; their `kid` is a
//! domain-separated SHA-256 of the secret, which names the key without revealing it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::keys::Algorithm;

/// SubjectPublicKeyInfo DER before the 65-byte uncompressed point of a P-256 key.
pub(crate) const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// SubjectPublicKeyInfo DER before the 97-byte uncompressed point of a P-384 key.
pub(crate) const P384_SPKI_PREFIX: [u8; 23] = [
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];
/// SubjectPublicKeyInfo DER before the 32-byte Ed25519 public key.
pub(crate) const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn b64(bytes: &[u8]) -> Value {
    Value::String(URL_SAFE_NO_PAD.encode(bytes))
}

/// The public JWK of a PEM public key for `algorithm`, with `kid`, `alg` and `use` set.
/// HMAC algorithms have no public key: `Err`.
pub(crate) fn public_jwk(
    algorithm: Algorithm,
    public_pem: &str,
) -> Result<Map<String, Value>, String> {
    let parsed = pem::parse(public_pem.trim()).map_err(|err| format!("not a PEM: {err}"))?;
    let der = parsed.contents();
    // The members that RFC 7638 hashes, in its lexicographic order.
    let required: Vec<(&str, Value)> = match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            return Err("HMAC keys are secret and have no public form".to_owned())
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            let (prefix, crv, size): (&[u8], _, _) = if algorithm == Algorithm::ES256 {
                (&P256_SPKI_PREFIX, "P-256", 32)
            } else {
                (&P384_SPKI_PREFIX, "P-384", 48)
            };
            let point = der
                .strip_prefix(prefix)
                .filter(|p| p.len() == 1 + 2 * size && p[0] == 0x04)
                .ok_or_else(|| format!("not an uncompressed {crv} public key"))?;
            vec![
                ("crv", Value::String(crv.into())),
                ("kty", Value::String("EC".into())),
                ("x", b64(&point[1..=size])),
                ("y", b64(&point[1 + size..])),
            ]
        }
        Algorithm::EdDSA => {
            let x = der
                .strip_prefix(&ED25519_SPKI_PREFIX[..])
                .filter(|x| x.len() == 32)
                .ok_or("not an Ed25519 public key")?;
            vec![
                ("crv", Value::String("Ed25519".into())),
                ("kty", Value::String("OKP".into())),
                ("x", b64(x)),
            ]
        }
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            use rsa::pkcs8::DecodePublicKey;
            use rsa::traits::PublicKeyParts;
            let key = rsa::RsaPublicKey::from_public_key_der(der)
                .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(der))
                .map_err(|_| "not an RSA public key".to_owned())?;
            vec![
                ("e", b64(&key.e().to_bytes_be())),
                ("kty", Value::String("RSA".into())),
                ("n", b64(&key.n().to_bytes_be())),
            ]
        }
    };
    let canonical: Map<String, Value> = required
        .iter()
        .cloned()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let thumbprint = Sha256::digest(Value::Object(canonical).to_string().as_bytes());
    let mut jwk = Map::new();
    jwk.insert("kid".into(), b64(&thumbprint));
    jwk.insert("alg".into(), Value::String(algorithm.as_str().into()));
    jwk.insert("use".into(), Value::String("sig".into()));
    for (name, value) in required {
        jwk.insert(name.to_owned(), value);
    }
    Ok(jwk)
}

/// The `kid` of an HMAC secret: never the secret itself, nor a plain hash of it.
pub(crate) fn hmac_kid(secret: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tollgate hmac key id\0");
    hasher.update(secret);
    URL_SAFE_NO_PAD.encode(&hasher.finalize()[..16])
}
