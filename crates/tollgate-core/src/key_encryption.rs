//! Encryption at rest of the signing keys that rotation stores in the database.
//!
//! A rotated key's private half (or HMAC secret) is sealed with AES-256-GCM under the key from
//! `KEYS_ENCRYPTION_KEY`, which lives only in the configuration: a copy of the database alone
//! cannot mint tokens. The key id and algorithm are authenticated with the ciphertext, so that
//! sealed material moved onto another row fails to open.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::keys::Algorithm;
use crate::settings::Secret;

/// The version tag in front of sealed material, so that a future format can be told apart.
const SEALED_PREFIX: &str = "v1.";

/// The 256-bit key that seals stored signing keys (`KEYS_ENCRYPTION_KEY`).
#[derive(Clone)]
pub struct KeysEncryptionKey([u8; 32]);

impl std::fmt::Debug for KeysEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeysEncryptionKey(<redacted>)")
    }
}

/// Sealed key material that does not open: the wrong `KEYS_ENCRYPTION_KEY`, or altered data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the stored key {kid} does not decrypt: KEYS_ENCRYPTION_KEY is not the one it was sealed \
     with, or the row was altered"
)]
pub struct UnsealError {
    /// The key id of the row.
    pub kid: String,
}

impl KeysEncryptionKey {
    /// Reads the setting's value: 64 hexadecimal characters (`openssl rand -hex 32`).
    ///
    /// ```
    /// use tollgate_core::KeysEncryptionKey;
    ///
    /// assert!(KeysEncryptionKey::parse(&"ab".repeat(32)).is_ok());
    /// assert!(KeysEncryptionKey::parse("too short").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<KeysEncryptionKey, String> {
        let text = text.trim();
        let invalid = || "must be 64 hexadecimal characters (32 bytes): `openssl rand -hex 32`";
        if text.len() != 64 {
            return Err(invalid().to_owned());
        }
        let mut key = [0u8; 32];
        for (byte, pair) in key.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        Ok(KeysEncryptionKey(key))
    }

    fn cipher(&self) -> LessSafeKey {
        // A 32-byte key is always valid for AES-256-GCM.
        match UnboundKey::new(&AES_256_GCM, &self.0) {
            Ok(key) => LessSafeKey::new(key),
            Err(_) => unreachable!("AES-256-GCM takes a 32-byte key"),
        }
    }

    /// Seals `material` (a PEM private key or an HMAC secret) for the row `kid`, `algorithm`:
    /// `v1.` and base64url of a random 96-bit nonce, the ciphertext and the tag.
    pub fn seal(
        &self,
        kid: &str,
        algorithm: Algorithm,
        material: &str,
    ) -> Result<String, &'static str> {
        self.seal_with(&associated_data(kid, algorithm), material)
    }

    /// Opens what [`seal`](Self::seal) made for the same `kid` and `algorithm`.
    pub fn open(
        &self,
        kid: &str,
        algorithm: Algorithm,
        sealed: &str,
    ) -> Result<Secret, UnsealError> {
        self.open_with(&associated_data(kid, algorithm), sealed)
            .ok_or_else(|| UnsealError {
                kid: kid.to_owned(),
            })
    }

    /// Seals a secret that is not a signing key (a user's TOTP secret), bound to `context`
    /// (what it is and whose), so that it opens only where it was sealed.
    pub fn seal_secret(&self, context: &str, material: &str) -> Result<String, &'static str> {
        self.seal_with(&secret_associated_data(context), material)
    }

    /// Opens what [`seal_secret`](Self::seal_secret) made for the same `context`; `None` with
    /// another key, another context, or altered data.
    pub fn open_secret(&self, context: &str, sealed: &str) -> Option<Secret> {
        self.open_with(&secret_associated_data(context), sealed)
    }

    fn seal_with(&self, associated: &[u8], material: &str) -> Result<String, &'static str> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "no randomness")?;
        let mut buffer = material.as_bytes().to_vec();
        self.cipher()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated),
                &mut buffer,
            )
            .map_err(|_| "cannot encrypt")?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&buffer);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)))
    }

    fn open_with(&self, associated: &[u8], sealed: &str) -> Option<Secret> {
        let mut bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|body| URL_SAFE_NO_PAD.decode(body).ok())?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let mut ciphertext = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let plain = self
            .cipher()
            .open_in_place(nonce, Aad::from(associated), &mut ciphertext)
            .ok()?;
        let text = std::str::from_utf8(plain).ok()?;
        Some(Secret(text.to_owned()))
    }
}

/// Whether stored text is sealed material (rather than a secret stored in the clear, before
/// an encryption key was set).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// What a secret other than a signing key is bound to: its context.
fn secret_associated_data(context: &str) -> Vec<u8> {
    let mut aad = b"tollgate secret\0".to_vec();
    aad.extend_from_slice(context.as_bytes());
    aad
}

/// What the ciphertext is bound to: the row's key id and algorithm.
fn associated_data(kid: &str, algorithm: Algorithm) -> Vec<u8> {
    let mut aad = b"tollgate signing key\0".to_vec();
    aad.extend_from_slice(kid.as_bytes());
    aad.push(0);
    aad.extend_from_slice(algorithm.as_str().as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: &str) -> KeysEncryptionKey {
        KeysEncryptionKey::parse(&byte.repeat(32)).expect("valid")
    }

    #[test]
    fn a_sealed_secret_opens_only_in_its_context_and_with_its_key() {
        let key = kek("5a");
        let sealed = key
            .seal_secret("totp 7", "JBSWY3DPEHPK3PXP")
            .expect("sealed");
        assert!(is_sealed(&sealed) && !sealed.contains("JBSWY3DPEHPK3PXP"));
        let opened = key.open_secret("totp 7", &sealed).expect("opens");
        assert_eq!(opened.expose(), "JBSWY3DPEHPK3PXP");
        assert!(
            key.open_secret("totp 8", &sealed).is_none(),
            "another user's row"
        );
        let other = KeysEncryptionKey::parse(&"cd".repeat(32)).expect("key");
        assert!(
            other.open_secret("totp 7", &sealed).is_none(),
            "another key"
        );
        assert!(!is_sealed("JBSWY3DPEHPK3PXP"));
    }

    #[test]
    fn sealed_material_opens_only_with_its_key_kid_and_algorithm() {
        let material = "-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n";
        let sealed = kek("11")
            .seal("kid-a", Algorithm::ES256, material)
            .expect("seals");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("PRIVATE"), "{sealed}");
        assert_eq!(
            kek("11")
                .open("kid-a", Algorithm::ES256, &sealed)
                .expect("opens")
                .expose(),
            material
        );
        for (key, kid, alg) in [
            (kek("22"), "kid-a", Algorithm::ES256),
            (kek("11"), "kid-b", Algorithm::ES256),
            (kek("11"), "kid-a", Algorithm::ES384),
        ] {
            assert_eq!(
                key.open(kid, alg, &sealed).unwrap_err(),
                UnsealError { kid: kid.into() }
            );
        }
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts_and_altered_ones_fail() {
        let key = kek("ab");
        let one = key.seal("k", Algorithm::HS256, "s3cret").expect("seals");
        let two = key.seal("k", Algorithm::HS256, "s3cret").expect("seals");
        assert_ne!(one, two, "a fresh nonce each time");
        let mut altered = one.into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("ascii");
        assert!(key.open("k", Algorithm::HS256, &altered).is_err());
        for garbage in ["", "v1.", "v1.AAAA", "v2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            assert!(
                key.open("k", Algorithm::HS256, garbage).is_err(),
                "{garbage}"
            );
        }
    }

    #[test]
    fn the_setting_must_be_32_hex_bytes() {
        assert!(KeysEncryptionKey::parse(&"0f".repeat(32)).is_ok());
        assert!(KeysEncryptionKey::parse(&"0F".repeat(32)).is_ok());
        for bad in ["", "00", &"zz".repeat(32), &"0".repeat(63), &"é".repeat(32)] {
            assert!(KeysEncryptionKey::parse(bad).is_err(), "{bad}");
        }
        assert!(!format!("{:?}", kek("42")).contains("42"));
    }
}
