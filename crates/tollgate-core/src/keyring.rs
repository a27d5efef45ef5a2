//! The keys that sign and verify tokens: one active signing key and the retired keys that still
//! verify, each chosen by the `kid` in a token's header.
//!
//! Without rotation the ring holds one key, the configured `SIGNING_KEY`. `tollgate keys rotate`
//! stores a new key (sealed, see [`KeysEncryptionKey`]) and retires the previous one until every
//! token it signed has expired; [`KeyRing::assemble`] builds the ring from those stored rows.
//!
//! The header's `kid` only ever selects among keys the ring already holds: an unknown `kid` is
//! refused, and `jku`, `x5u` or an embedded `jwk` are never read. A token without `kid` (as
//! simplejwt writes them) is checked with the configured key, while that key still verifies.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{DecodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::codec::{classify, signature_only};
use crate::jose::UniqueObject;
use crate::key_encryption::{KeysEncryptionKey, UnsealError};
use crate::keys::{Algorithm, KeyError, Keys};
use crate::settings::Secret;

/// A signing key as the database keeps it (table `signing_keys`). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key id written in the tokens it signs.
    pub kid: String,
    /// The key's algorithm.
    pub algorithm: Algorithm,
    /// The PEM public key (asymmetric algorithms); not secret.
    pub public_key: Option<String>,
    /// The private key or HMAC secret, sealed with `KEYS_ENCRYPTION_KEY`. `None` for the key
    /// configured in SIGNING_KEY, whose secret stays in the configuration.
    pub sealed_key: Option<String>,
    /// When the key was stored.
    pub created_at: i64,
    /// When it stopped signing; `None` while it is the active key.
    pub retired_at: Option<i64>,
    /// When a retired key stops verifying.
    pub verify_until: Option<i64>,
    /// When a key published before it signs (pre-published) starts signing; `None` when it
    /// signed from `created_at`. The key it replaces signs until then: its `retired_at`.
    pub signs_from: Option<i64>,
}

/// Where a stored key stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published and verifying, but not signing yet: the next key, which signs from its
    /// `signs_from` (a key-set client that caches the set has fetched it by then).
    Next,
    /// Signs new tokens (and verifies).
    Active,
    /// Verifies the tokens it signed until `verify_until`.
    Retired,
    /// Past `verify_until`: verifies nothing, and `tollgate keys prune` deletes it.
    Expired,
}

impl KeyState {
    /// The state's name, as `tollgate keys list` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Expired => "expired",
        }
    }
}

impl StoredKey {
    /// Where the key stands at `now`.
    pub fn state(&self, now: i64) -> KeyState {
        match (self.retired_at, self.verify_until) {
            (None, _) if self.signs_from.is_some_and(|from| from > now) => KeyState::Next,
            (None, _) => KeyState::Active,
            // It signs until the pre-published key that replaces it takes over.
            (Some(retired), _) if retired > now => KeyState::Active,
            (Some(_), Some(until)) if now < until => KeyState::Retired,
            (Some(_), _) => KeyState::Expired,
        }
    }

    /// A new key for `algorithm`, generated and sealed for storage as the next active key.
    pub fn generate(
        algorithm: Algorithm,
        sealing: &KeysEncryptionKey,
        now: i64,
    ) -> Result<StoredKey, KeyRingError> {
        let generated = crate::keygen::generate(algorithm)
            .map_err(|err| KeyRingError::Generate(err.to_string()))?;
        let public = generated.verifying_key.clone();
        let keys = Keys::new(
            algorithm,
            generated.signing_key.expose(),
            public.as_deref().unwrap_or_default(),
        )
        .map_err(|err| KeyRingError::Generate(err.to_string()))?;
        let sealed = sealing
            .seal(keys.kid(), algorithm, generated.signing_key.expose())
            .map_err(|reason| KeyRingError::Generate(reason.to_owned()))?;
        Ok(StoredKey {
            kid: keys.kid().to_owned(),
            algorithm,
            public_key: public,
            sealed_key: Some(sealed),
            created_at: now,
            retired_at: None,
            verify_until: None,
            signs_from: None,
        })
    }

    /// The sealed secret, opened with the first of `sealing` that opens it; `None` for the
    /// configured key's row.
    pub fn open(&self, sealing: &[KeysEncryptionKey]) -> Result<Option<Secret>, KeyRingError> {
        let Some(sealed) = &self.sealed_key else {
            return Ok(None);
        };
        let mut failure = KeyRingError::NoEncryptionKey;
        for key in sealing {
            match key.open(&self.kid, self.algorithm, sealed) {
                Ok(secret) => return Ok(Some(secret)),
                Err(err) => failure = err.into(),
            }
        }
        Err(failure)
    }

    /// The secret sealed again under `to`, when it opens only with another of `from`; `None`
    /// when it is already sealed under `to` or is the configured key's row.
    pub fn reseal(
        &self,
        from: &[KeysEncryptionKey],
        to: &KeysEncryptionKey,
    ) -> Result<Option<String>, KeyRingError> {
        if self.open(std::slice::from_ref(to)).is_ok() {
            return Ok(None);
        }
        let Some(secret) = self.open(from)? else {
            return Ok(None);
        };
        to.seal(&self.kid, self.algorithm, secret.expose())
            .map(Some)
            .map_err(|reason| KeyRingError::Generate(reason.to_owned()))
    }

    /// The row that stands for the configured key (SIGNING_KEY) once it is retired: its public
    /// key, never its secret.
    pub fn configured(keys: &Keys, verifying_pem: &str, now: i64, verify_until: i64) -> StoredKey {
        StoredKey {
            kid: keys.kid().to_owned(),
            algorithm: keys.algorithm(),
            public_key: (!keys.algorithm().is_hmac()).then(|| verifying_pem.to_owned()),
            sealed_key: None,
            created_at: now,
            retired_at: Some(now),
            verify_until: Some(verify_until),
            signs_from: None,
        }
    }
}

/// The stored keys cannot be turned into a ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRingError {
    /// Stored keys need `KEYS_ENCRYPTION_KEY` and it is not set.
    #[error(
        "the database holds rotated signing keys: set KEYS_ENCRYPTION_KEY to the key they were \
         encrypted with"
    )]
    NoEncryptionKey,
    /// A sealed key does not decrypt.
    #[error(transparent)]
    Unseal(#[from] UnsealError),
    /// The active row has no sealed key, so nothing can sign.
    #[error("the active stored key {kid} has no private key")]
    ActiveWithoutSecret {
        /// Its key id.
        kid: String,
    },
    /// A stored key decrypts but is not usable, or is not the key its row names.
    #[error("the stored key {kid} is unusable: {reason}")]
    Unusable {
        /// Its key id.
        kid: String,
        /// What is wrong.
        reason: String,
    },
    /// A new key could not be made.
    #[error("cannot make a new key: {0}")]
    Generate(String),
}

/// A key that verifies tokens.
#[derive(Clone)]
pub(crate) struct Verifier {
    kid: String,
    decoding: DecodingKey,
    /// Accepts this key's algorithm only; registered claims are checked by the codec.
    validation: Validation,
    /// The header segment Tollgate writes with this key, recognised without parsing.
    header_segment: String,
    /// The keyed HMAC secret, for tokens with the header above.
    hmac: Option<ring::hmac::Key>,
    jwk: Option<Map<String, Value>>,
    /// The end of a retired key's life; `None` for the active and the unrotated key.
    verify_until: Option<i64>,
}

impl Verifier {
    fn new(keys: &Keys, verify_until: Option<i64>) -> Verifier {
        let validation = signature_only(keys.algorithm.to_jsonwebtoken());
        let header_json = serde_json::to_vec(&header_for(keys)).unwrap_or_default();
        Verifier {
            kid: keys.kid.clone(),
            decoding: keys.decoding.clone(),
            validation,
            header_segment: URL_SAFE_NO_PAD.encode(header_json),
            hmac: keys.hmac.clone(),
            jwk: keys.jwk.clone(),
            verify_until,
        }
    }

    /// Checks the token's signature, and its algorithm against this key's, and returns its
    /// payload. An HMAC token with the header Tollgate writes is checked here, without parsing
    /// the header again and with the secret keyed once; any other goes through jsonwebtoken.
    pub(crate) fn verify(&self, token: &str) -> Result<Map<String, Value>, &'static str> {
        let own_header = token
            .strip_prefix(self.header_segment.as_str())
            .is_some_and(|rest| rest.starts_with('.'));
        match &self.hmac {
            Some(key) if own_header => crate::jose::verify_hmac(key, token),
            _ => jsonwebtoken::decode::<UniqueObject>(token, &self.decoding, &self.validation)
                .map(|data| data.claims.0)
                .map_err(|err| classify(&err)),
        }
    }

    /// Whether the key still verifies at `now`.
    pub(crate) fn verifies_at(&self, now: i64) -> bool {
        self.verify_until.is_none_or(|until| now < until)
    }
}

/// The header of every token signed with `keys`.
fn header_for(keys: &Keys) -> Header {
    Header {
        kid: Some(keys.kid.clone()),
        ..Header::new(keys.algorithm.to_jsonwebtoken())
    }
}

/// One active signing key and the keys that verify, looked up by `kid`.
#[derive(Clone)]
pub struct KeyRing {
    signer: Keys,
    header: Header,
    /// The active key first, then retired keys, newest first.
    verifiers: Vec<Verifier>,
    /// The configured key's place in `verifiers`: it checks tokens without `kid`.
    configured: Option<usize>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.signer.kid)
            .field("verifying", &self.kids())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// A ring of one key, which signs and verifies for ever: Tollgate without rotation.
    ///
    /// ```
    /// use tollgate_core::{Algorithm, KeyRing, Keys};
    ///
    /// let keys = Keys::new(Algorithm::HS256, "a long random secret of at least 32 bytes!", "").unwrap();
    /// let ring = KeyRing::single(keys.clone());
    /// assert_eq!(ring.signing_keys().kid(), keys.kid());
    /// assert!(ring.public_jwks(0).is_empty(), "HMAC secrets are never published");
    /// ```
    pub fn single(configured: Keys) -> KeyRing {
        KeyRing {
            header: header_for(&configured),
            verifiers: vec![Verifier::new(&configured, None)],
            configured: Some(0),
            signer: configured,
        }
    }

    /// The ring for the keys the database holds, at `now`.
    ///
    /// - The active row (sealed) signs. Without one, the configured key signs, as if nothing
    ///   had been rotated. An active row whose `signs_from` is still to come (pre-published)
    ///   only verifies, and is published, second in the ring; until then the key it replaces
    ///   (whose `retired_at` is that time) signs.
    /// - A retired row verifies until its `verify_until`. Only keys this process can
    ///   authenticate are used: sealed rows that decrypt under one of `sealing` (the current
    ///   KEYS_ENCRYPTION_KEY, then a previous one; and whose public key
    ///   belongs to the private one), and the configured key's own row. A row written by a
    ///   database user alone, without the encryption key, verifies nothing.
    /// - The configured key checks tokens without `kid` while it is the signing key or a
    ///   retired key that still verifies.
    pub fn assemble(
        configured: Keys,
        stored: &[StoredKey],
        sealing: &[KeysEncryptionKey],
        now: i64,
    ) -> Result<KeyRing, KeyRingError> {
        let open = |row: &StoredKey| -> Result<Option<Keys>, KeyRingError> {
            let Some(secret) = row.open(sealing)? else {
                return Ok(None);
            };
            let unusable = |reason: String| KeyRingError::Unusable {
                kid: row.kid.clone(),
                reason,
            };
            let keys = Keys::new(
                row.algorithm,
                secret.expose(),
                row.public_key.as_deref().unwrap_or_default(),
            )
            .map_err(|err: KeyError| unusable(err.to_string()))?;
            if keys.kid != row.kid {
                return Err(unusable("its key id does not match the key".to_owned()));
            }
            Ok(Some(keys))
        };
        let newest = stored.iter().find(|row| row.retired_at.is_none());
        let next = newest.filter(|row| row.state(now) == KeyState::Next);
        let active = match next {
            // The key being replaced signs until the next one takes over.
            Some(_) => stored
                .iter()
                .find(|row| row.retired_at.is_some_and(|retired| retired > now)),
            None => newest,
        };
        let (signer, mut verifiers, mut configured_at) = match active {
            // The configured key, retiring in favour of a pre-published key: its row holds no
            // secret, the configuration does.
            Some(row) if row.sealed_key.is_none() && row.kid == configured.kid => (
                configured.clone(),
                vec![Verifier::new(&configured, None)],
                Some(0),
            ),
            Some(row) => {
                let keys = open(row)?.ok_or_else(|| KeyRingError::ActiveWithoutSecret {
                    kid: row.kid.clone(),
                })?;
                // SIGNING_KEY may have been set to the stored active key itself.
                let configured_at = (keys.kid == configured.kid).then_some(0);
                (
                    keys.clone(),
                    vec![Verifier::new(&keys, None)],
                    configured_at,
                )
            }
            None => (
                configured.clone(),
                vec![Verifier::new(&configured, None)],
                Some(0),
            ),
        };
        if let Some(row) = next {
            let keys = open(row)?.ok_or_else(|| KeyRingError::ActiveWithoutSecret {
                kid: row.kid.clone(),
            })?;
            if keys.kid == configured.kid && configured_at.is_none() {
                configured_at = Some(verifiers.len());
            }
            verifiers.push(Verifier::new(&keys, None));
        }
        let mut retired: Vec<&StoredKey> = stored
            .iter()
            .filter(|row| row.state(now) == KeyState::Retired && row.kid != signer.kid)
            .collect();
        retired.sort_by_key(|row| std::cmp::Reverse(row.retired_at));
        for row in retired {
            if verifiers.iter().any(|v| v.kid == row.kid) {
                continue;
            }
            if row.kid == configured.kid && row.algorithm == configured.algorithm {
                configured_at = Some(verifiers.len());
                verifiers.push(Verifier::new(&configured, row.verify_until));
            } else if let Some(keys) = open(row)? {
                verifiers.push(Verifier::new(&keys, row.verify_until));
            }
            // Otherwise: the configured key of another configuration, whose secret this
            // process does not hold; its stored public key alone is not trusted.
        }
        Ok(KeyRing {
            header: header_for(&signer),
            signer,
            verifiers,
            configured: configured_at,
        })
    }

    /// A compact token of `claims`, signed with the active key. An HMAC key signs here, keyed
    /// once and with the header segment written once; other algorithms through jsonwebtoken.
    /// Both write the same bytes.
    pub(crate) fn sign(&self, claims: &Map<String, Value>) -> Result<String, String> {
        let active = &self.verifiers[0];
        let Some(key) = &active.hmac else {
            return jsonwebtoken::encode(&self.header, claims, &self.signer.encoding)
                .map_err(|err| err.to_string());
        };
        let payload = serde_json::to_vec(claims).map_err(|err| err.to_string())?;
        // Header, payload and the longest tag (HS512's 64 bytes), in base64 with two dots.
        let mut token = String::with_capacity(
            active.header_segment.len() + (payload.len() + 64).div_ceil(3) * 4 + 2,
        );
        token.push_str(&active.header_segment);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let tag = ring::hmac::sign(key, token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
        Ok(token)
    }

    /// The active key, which signs new tokens.
    pub fn signing_keys(&self) -> &Keys {
        &self.signer
    }

    #[cfg(test)]
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// The ids of every key that verifies, the active one first.
    pub fn kids(&self) -> Vec<&str> {
        self.verifiers.iter().map(|v| v.kid.as_str()).collect()
    }

    /// The public keys that verify at `now`, as JWKs, the active one first. HMAC secrets are
    /// never among them.
    pub fn public_jwks(&self, now: i64) -> Vec<&Map<String, Value>> {
        self.verifiers
            .iter()
            .filter(|v| v.verifies_at(now))
            .filter_map(|v| v.jwk.as_ref())
            .collect()
    }

    /// The key that checks `token`: the one whose header Tollgate writes when the header is
    /// exactly that (no parsing), else the one its `kid` names, else (no `kid`) the configured
    /// key. A header with `crit` or repeated members is refused.
    pub(crate) fn verifier_for(&self, token: &str) -> Result<&Verifier, &'static str> {
        let Some((segment, _)) = token.split_once('.') else {
            return Err("malformed token");
        };
        if let Some(known) = self.verifiers.iter().find(|v| v.header_segment == segment) {
            return Ok(known);
        }
        match crate::jose::header_kid(segment)? {
            None => self
                .configured
                .and_then(|at| self.verifiers.get(at))
                .ok_or("no key id, and the configured key no longer verifies"),
            Some(kid) => self
                .verifiers
                .iter()
                .find(|v| v.kid == kid)
                .ok_or("unknown key id"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Secret, Settings};
    use crate::{TokenCodec, TokenError, TokenType};

    const NOW: i64 = 1_700_000_000;
    const HOUR: i64 = 3600;

    fn sealing() -> KeysEncryptionKey {
        KeysEncryptionKey::parse(&"5a".repeat(32)).expect("valid")
    }

    /// Access tokens outlive the retired key's verify_until here, so that the test sees the
    /// key's end rather than the token's.
    fn configured_settings() -> Settings {
        Settings {
            signing_key: Secret("the-configured-hmac-secret-0123456789-abcdef".into()),
            access_token_lifetime: std::time::Duration::from_secs(2 * HOUR as u64),
            ..Settings::default()
        }
    }

    fn configured() -> Keys {
        Keys::from_settings(&configured_settings()).expect("keys")
    }

    /// The rows after one rotation from the configured HS256 key to a new `alg` key.
    fn rotated(alg: Algorithm) -> Vec<StoredKey> {
        let old = StoredKey::configured(&configured(), "", NOW, NOW + HOUR);
        let new = StoredKey::generate(alg, &sealing(), NOW).expect("generates");
        vec![new, old]
    }

    fn codec_with(ring: KeyRing) -> TokenCodec {
        let codec = TokenCodec::new(&configured_settings()).expect("codec");
        codec.replace_keys(ring);
        codec
    }

    fn mint(codec: &TokenCodec) -> String {
        codec
            .sign(codec.claims_for_user(TokenType::Access, "1", NOW))
            .expect("signs")
            .token
    }

    #[test]
    fn tokens_are_signed_byte_for_byte_as_jsonwebtoken_signs_them() {
        let codec = TokenCodec::new(&configured_settings()).expect("codec");
        let mut payload = codec.claims_for_user(TokenType::Refresh, "42", NOW).0;
        payload.insert("name".into(), "Zoë \"quoted\" </script>".into());
        for alg in [
            Algorithm::HS256,
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            let rows = rotated(alg);
            let ring = KeyRing::assemble(configured(), &rows, &[sealing()], NOW).expect("ring");
            let ours = ring.sign(&payload).expect("signs");
            let theirs =
                jsonwebtoken::encode(&ring.header, &payload, &ring.signer.encoding).expect("signs");
            if alg.is_hmac() {
                assert_eq!(ours, theirs, "{alg:?}");
            } else {
                // ECDSA signatures are randomised: the signed part is the same, and each verifies.
                let signed = |t: &str| t.rsplit_once('.').map(|(s, _)| s.to_owned());
                assert_eq!(signed(&ours), signed(&theirs), "{alg:?}");
            }
            let codec = codec_with(ring);
            assert_eq!(
                codec.decode(&ours, NOW).expect("verifies").0,
                payload,
                "{alg:?}"
            );
        }
    }

    fn hmac_token(header: &str, key: &[u8]) -> String {
        let body = format!(
            r#"{{"token_type":"access","exp":{},"jti":"j","user_id":"1"}}"#,
            NOW + 60
        );
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(body)
        );
        let signature = jsonwebtoken::crypto::sign(
            input.as_bytes(),
            &jsonwebtoken::EncodingKey::from_secret(key),
            jsonwebtoken::Algorithm::HS256,
        )
        .expect("signs");
        format!("{input}.{signature}")
    }

    #[test]
    fn without_stored_keys_the_configured_key_signs_and_verifies() {
        let ring = KeyRing::assemble(configured(), &[], &[], NOW).expect("ring");
        assert_eq!(ring.signing_keys().kid(), configured().kid());
        assert_eq!(ring.kids(), [configured().kid()]);
        let codec = codec_with(ring);
        assert!(codec.decode(&mint(&codec), NOW).is_ok());
    }

    #[test]
    fn after_rotation_old_tokens_verify_and_new_ones_carry_the_new_kid() {
        let before = TokenCodec::new(&configured_settings()).expect("codec");
        let old_token = mint(&before);
        let rows = rotated(Algorithm::ES256);
        let ring = KeyRing::assemble(configured(), &rows, &[sealing()], NOW).expect("ring");
        assert_eq!(ring.signing_keys().kid(), rows[0].kid);
        assert_eq!(ring.kids(), [rows[0].kid.as_str(), configured().kid()]);
        let codec = codec_with(ring);
        let new_token = mint(&codec);
        let header = jsonwebtoken::decode_header(&new_token).expect("header");
        assert_eq!(header.kid.as_deref(), Some(rows[0].kid.as_str()));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        assert!(codec.decode(&new_token, NOW).is_ok());
        assert!(codec.decode(&old_token, NOW).is_ok());
        // simplejwt writes no kid: such tokens are checked with the configured key.
        let no_kid = hmac_token(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            configured_settings().signing_key.expose().as_bytes(),
        );
        assert!(codec.decode(&no_kid, NOW).is_ok());
        // Until the retired key's verify_until, and not after.
        assert!(codec.decode(&old_token, NOW + HOUR - 1).is_ok());
        let past = NOW + HOUR;
        assert_eq!(
            codec.decode(&old_token, past),
            Err(TokenError::invalid("key no longer verifies"))
        );
        assert_eq!(
            codec.decode(&no_kid, past),
            Err(TokenError::invalid("key no longer verifies"))
        );
        // Rebuilt after verify_until, the ring no longer holds the old key at all.
        let later = KeyRing::assemble(configured(), &rows, &[sealing()], past).expect("ring");
        assert_eq!(later.kids(), [rows[0].kid.as_str()]);
        let codec = codec_with(later);
        assert_eq!(
            codec.decode(&old_token, NOW),
            Err(TokenError::invalid("unknown key id"))
        );
        assert_eq!(
            codec.decode(&no_kid, NOW),
            Err(TokenError::invalid(
                "no key id, and the configured key no longer verifies"
            ))
        );
    }

    #[test]
    fn a_kid_selects_only_known_keys_and_only_with_their_algorithm() {
        let rows = rotated(Algorithm::ES256);
        let ring = KeyRing::assemble(configured(), &rows, &[sealing()], NOW).expect("ring");
        let codec = codec_with(ring);
        let attacker = b"attacker-chosen-secret-0123456789-abcdefghij";
        let public_pem = rows[0].public_key.clone().expect("public key");
        for (header, key) in [
            (
                r#"{"alg":"HS256","kid":"unknown"}"#.to_owned(),
                &attacker[..],
            ),
            (r#"{"alg":"HS256","kid":""}"#.to_owned(), &attacker[..]),
            (r#"{"alg":"HS256","kid":7}"#.to_owned(), &attacker[..]),
            (
                format!(r#"{{"alg":"HS256","kid":"{}"}}"#, configured().kid()),
                &attacker[..],
            ),
            // The ES256 key's id with HS256 and its public key as the HMAC secret.
            (
                format!(r#"{{"alg":"HS256","kid":"{}"}}"#, rows[0].kid),
                public_pem.as_bytes(),
            ),
        ] {
            assert!(
                matches!(
                    codec.decode(&hmac_token(&header, key), NOW),
                    Err(TokenError::Invalid { .. })
                ),
                "{header}"
            );
        }
    }

    #[test]
    fn stored_keys_need_the_encryption_key_they_were_sealed_with() {
        let rows = rotated(Algorithm::EdDSA);
        assert_eq!(
            KeyRing::assemble(configured(), &rows, &[], NOW).unwrap_err(),
            KeyRingError::NoEncryptionKey
        );
        let other = KeysEncryptionKey::parse(&"77".repeat(32)).expect("valid");
        assert!(matches!(
            KeyRing::assemble(configured(), &rows, &[other], NOW),
            Err(KeyRingError::Unseal(_))
        ));
        let sealed = rows[0].sealed_key.as_deref().expect("sealed");
        assert!(!sealed.contains("PRIVATE KEY"));
    }

    #[test]
    fn a_previous_encryption_key_opens_rows_until_they_are_resealed() {
        let rows = rotated(Algorithm::ES256);
        let next = KeysEncryptionKey::parse(&"c3".repeat(32)).expect("valid");
        assert!(KeyRing::assemble(configured(), &rows, std::slice::from_ref(&next), NOW).is_err());
        let both = [next.clone(), sealing()];
        assert!(KeyRing::assemble(configured(), &rows, &both, NOW).is_ok());
        let resealed = rows[0]
            .reseal(&both, &next)
            .expect("reseals")
            .expect("changed");
        let moved = StoredKey {
            sealed_key: Some(resealed),
            ..rows[0].clone()
        };
        assert_eq!(
            moved.reseal(&both, &next),
            Ok(None),
            "already under the new key"
        );
        assert_eq!(
            rows[1].reseal(&both, &next),
            Ok(None),
            "the configured key's row"
        );
        let after = [moved, rows[1].clone()];
        assert!(KeyRing::assemble(configured(), &after, &[next], NOW).is_ok());
        assert!(matches!(
            KeyRing::assemble(configured(), &after, &[sealing()], NOW),
            Err(KeyRingError::Unseal(_))
        ));
    }

    #[test]
    fn rows_a_database_user_could_write_verify_nothing() {
        let mut rows = rotated(Algorithm::ES256);
        // A retired row with only a public key, as a database writer without the encryption
        // key could add: never trusted.
        let foreign = crate::keygen::generate(Algorithm::ES256).expect("generates");
        let foreign_keys = Keys::new(
            Algorithm::ES256,
            foreign.signing_key.expose(),
            foreign.verifying_key.as_deref().unwrap_or_default(),
        )
        .expect("keys");
        rows.push(StoredKey {
            kid: foreign_keys.kid().to_owned(),
            algorithm: Algorithm::ES256,
            public_key: foreign.verifying_key.clone(),
            sealed_key: None,
            created_at: NOW,
            retired_at: Some(NOW),
            verify_until: Some(NOW + HOUR),
            signs_from: None,
        });
        let ring = KeyRing::assemble(configured(), &rows, &[sealing()], NOW).expect("ring");
        assert!(!ring.kids().contains(&foreign_keys.kid()));
        // The active row's public key replaced by another: the pair check refuses it.
        let mut swapped = rotated(Algorithm::ES256);
        swapped[0].public_key = foreign.verifying_key.clone();
        assert!(matches!(
            KeyRing::assemble(configured(), &swapped, &[sealing()], NOW),
            Err(KeyRingError::Unusable { .. })
        ));
        // Sealed material moved onto another row's id does not open.
        let mut moved = rotated(Algorithm::ES256);
        moved[0].kid = foreign_keys.kid().to_owned();
        assert!(matches!(
            KeyRing::assemble(configured(), &moved, &[sealing()], NOW),
            Err(KeyRingError::Unseal(_))
        ));
    }

    #[test]
    fn rotating_again_keeps_every_key_that_still_verifies() {
        let mut rows = rotated(Algorithm::ES256);
        rows[0].retired_at = Some(NOW + 10);
        rows[0].verify_until = Some(NOW + 2 * HOUR);
        let third = StoredKey::generate(Algorithm::HS512, &sealing(), NOW + 10).expect("key");
        rows.push(third.clone());
        let ring = KeyRing::assemble(configured(), &rows, &[sealing()], NOW + 20).expect("ring");
        assert_eq!(
            ring.kids(),
            [third.kid.as_str(), rows[0].kid.as_str(), configured().kid()]
        );
        // Only the ES256 key is public; the HMAC keys are not published.
        let jwks = ring.public_jwks(NOW + 20);
        assert_eq!(jwks.len(), 1);
        assert_eq!(
            jwks[0].get("kid").and_then(Value::as_str),
            Some(rows[0].kid.as_str())
        );
        assert!(ring.public_jwks(NOW + 2 * HOUR).is_empty());
    }

    #[test]
    fn a_configured_key_that_is_the_active_stored_key_checks_tokens_without_kid() {
        let rows = rotated(Algorithm::HS256);
        let secret = sealing()
            .open(
                &rows[0].kid,
                Algorithm::HS256,
                rows[0].sealed_key.as_deref().unwrap_or(""),
            )
            .expect("opens");
        let settings = Settings {
            signing_key: secret.clone(),
            ..configured_settings()
        };
        let same = Keys::from_settings(&settings).expect("keys");
        let ring = KeyRing::assemble(same, &rows, &[sealing()], NOW).expect("ring");
        let codec = codec_with(ring);
        let no_kid = hmac_token(r#"{"alg":"HS256"}"#, secret.expose().as_bytes());
        assert!(codec.decode(&no_kid, NOW).is_ok());
    }

    #[test]
    fn a_pre_published_key_is_published_before_it_signs() {
        // The configured key signs until NOW + 60, when the new key takes over.
        let switch = NOW + 60;
        let old = StoredKey::configured(&configured(), "", NOW, switch + HOUR);
        let old = StoredKey {
            retired_at: Some(switch),
            ..old
        };
        let new = StoredKey {
            signs_from: Some(switch),
            ..StoredKey::generate(Algorithm::ES256, &sealing(), NOW).expect("generates")
        };
        let rows = [new.clone(), old];
        assert_eq!(
            (rows[0].state(NOW), rows[1].state(NOW)),
            (KeyState::Next, KeyState::Active)
        );
        let before = KeyRing::assemble(configured(), &rows, &[sealing()], NOW).expect("ring");
        assert_eq!(before.signing_keys().kid(), configured().kid());
        assert_eq!(before.kids(), [configured().kid(), new.kid.as_str()]);
        let published = before.public_jwks(NOW);
        assert_eq!(published.len(), 1, "the HMAC key is never published");
        assert_eq!(
            published[0].get("kid").and_then(Value::as_str),
            Some(new.kid.as_str())
        );
        let codec = codec_with(before);
        let signed_before = mint(&codec);
        assert!(codec.decode(&signed_before, NOW).is_ok());

        assert_eq!(
            (rows[0].state(switch), rows[1].state(switch)),
            (KeyState::Active, KeyState::Retired)
        );
        let after = KeyRing::assemble(configured(), &rows, &[sealing()], switch).expect("ring");
        assert_eq!(after.signing_keys().kid(), new.kid);
        assert_eq!(after.kids(), [new.kid.as_str(), configured().kid()]);
        let codec = codec_with(after);
        assert!(
            codec.decode(&signed_before, NOW).is_ok(),
            "the old key still verifies"
        );
    }

    #[test]
    fn stored_key_states_follow_retirement_and_verify_until() {
        let rows = rotated(Algorithm::ES256);
        assert_eq!(rows[0].state(NOW), KeyState::Active);
        assert_eq!(rows[1].state(NOW), KeyState::Retired);
        assert_eq!(rows[1].state(NOW + HOUR), KeyState::Expired);
        assert!(
            rows[1].sealed_key.is_none(),
            "the configured secret is not stored"
        );
        assert!(
            rows[1].public_key.is_none(),
            "an HMAC key has no public half"
        );
    }
}
