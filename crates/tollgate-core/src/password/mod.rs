//! Password hashing: argon2id for new hashes, written in Django's `argon2$…` format so that a
//! user table stays readable by Django too; Django's other formats (PBKDF2, bcrypt, scrypt and
//! the legacy digests) are verified and reported as needing a rehash, so that users imported
//! from Django keep their passwords and move to argon2id at their next login.

mod django;
mod floor;
mod policy;

pub use floor::FailureFloor;
pub use policy::{PasswordPolicy, UserAttribute};

use std::cell::RefCell;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use rand_core::OsRng;
use subtle::ConstantTimeEq;

thread_local! {
    /// Each thread's argon2 working memory, kept between hashes. Allocating and freeing
    /// ARGON2_MEMORY_KIB per hash makes the allocator keep that much per thread anyway, and more
    /// under churn; reusing one buffer per hashing thread bounds memory to threads × cost.
    static ARGON2_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs argon2 into `out` with this thread's reusable working memory.
fn argon2_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    ARGON2_MEMORY.with(|memory| {
        let mut blocks = memory.borrow_mut();
        let needed = argon2.params().block_count();
        if blocks.len() < needed {
            blocks.resize(needed, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..needed])
    })
}

/// Django's prefix for argon2 hashes, followed by a PHC string.
const DJANGO_ARGON2_PREFIX: &str = "argon2";

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password matches and the hash is in the current format and cost.
    Match,
    /// The password matches, but the hash should be replaced by a fresh one.
    MatchNeedsRehash,
    /// The password does not match, or the hash is unusable.
    Mismatch,
}

impl PasswordCheck {
    /// Whether the password matched.
    pub fn matched(self) -> bool {
        !matches!(self, PasswordCheck::Mismatch)
    }
}

/// The fingerprint of a stored password hash that tokens carry when CHECK_REVOKE_TOKEN is on:
/// simplejwt's, the upper-case hex MD5 of the hash string. It changes whenever the password
/// (or its hash) does.
///
/// ```
/// let fingerprint = tollgate_core::password::revoke_fingerprint("pbkdf2_sha256$1$a$b");
/// // Python: hashlib.md5(b"pbkdf2_sha256$1$a$b").hexdigest().upper()
/// assert_eq!(fingerprint, "D189514B36275B5C49334DB961F35162");
/// ```
pub fn revoke_fingerprint(stored_hash: &str) -> String {
    use md5::Digest as _;
    md5::Md5::digest(stored_hash.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Hashes and verifies passwords at the configured argon2id cost.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    dummy_hash: String,
    /// The cost class of the dummy hash: argon2id at the configured cost.
    dummy_cost: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", self.argon2.params())
            .finish()
    }
}

/// The argon2 cost could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid argon2 parameters: {0}")]
pub struct PasswordParamsError(String);

impl PasswordHasher {
    /// A hasher with argon2id at `memory_kib`, `iterations` and `parallelism`.
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
    ) -> Result<PasswordHasher, PasswordParamsError> {
        let params = Params::new(memory_kib, iterations, parallelism, Some(32))
            .map_err(|err| PasswordParamsError(err.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = PasswordHasher {
            argon2,
            dummy_hash: String::new(),
            dummy_cost: String::new(),
        };
        // Unknown users are checked against this, so that they cost as much time as known ones.
        // Made with memory of its own, not the calling thread's kept buffer: the caller is
        // usually not a hashing thread.
        let salt = SaltString::generate(&mut OsRng);
        let phc = hasher
            .argon2
            .hash_password(b"tollgate-dummy-password", &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| PasswordParamsError(err.to_string()))?;
        hasher.dummy_hash = format!("{DJANGO_ARGON2_PREFIX}{phc}");
        let params = hasher.argon2.params();
        hasher.dummy_cost = argon2_cost("argon2id", params);
        Ok(hasher)
    }

    /// A new hash of `password`, as `argon2$argon2id$v=19$m=…,t=…,p=…$salt$hash`.
    pub fn hash(&self, password: &str) -> String {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let mut out = [0u8; 32];
        // A generated salt always decodes and valid parameters always hash; should either fail,
        // the result is an unusable hash, which never matches.
        let computed = salt
            .decode_b64(&mut salt_bytes)
            .ok()
            .and_then(|salt_bytes| {
                argon2_into(&self.argon2, password.as_bytes(), salt_bytes, &mut out).ok()
            });
        let phc = computed.map(|()| {
            let params = self.argon2.params();
            format!(
                "$argon2id$v=19$m={},t={},p={}${}${}",
                params.m_cost(),
                params.t_cost(),
                params.p_cost(),
                salt.as_str(),
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
            )
        });
        match phc {
            Some(phc) => format!("{DJANGO_ARGON2_PREFIX}{phc}"),
            None => "!".to_owned(),
        }
    }

    /// Checks `password` against a stored hash in any format Django writes, in constant time
    /// for a given hash. Unusable hashes (Django's `!…`, empty, unknown formats) never match and
    /// cost a check of the dummy hash, as an unknown user does; a match in any format but
    /// argon2id at the configured cost asks for a rehash.
    pub fn verify(&self, password: &str, stored: &str) -> PasswordCheck {
        self.verify_costed(password, stored).0
    }

    /// [`verify`](Self::verify), and the cost class of the hash it computed: its format and the
    /// parameters that decide how long it takes (`pbkdf2_sha256$1000000`,
    /// `argon2id$m=19456,t=2,p=1`), never its salt or digest. An unusable hash reports the dummy
    /// hash's class, which is what it cost. [`FailureFloor`] keeps the time of each class.
    ///
    /// ```
    /// use tollgate_core::password::{PasswordCheck, PasswordHasher};
    ///
    /// let hasher = PasswordHasher::new(64, 1, 1).unwrap();
    /// let (check, cost) = hasher.verify_costed("guess", "pbkdf2_sha256$1000$salt$AAAA");
    /// assert_eq!((check, cost.as_str()), (PasswordCheck::Mismatch, "pbkdf2_sha256$1000"));
    /// let (_, unusable) = hasher.verify_costed("guess", "!unusable");
    /// assert_eq!(unusable, "argon2id$m=64,t=1,p=1");
    /// ```
    pub fn verify_costed(&self, password: &str, stored: &str) -> (PasswordCheck, String) {
        let checked = if stored.is_empty() || stored.starts_with('!') {
            None
        } else if let Some(phc) = stored.strip_prefix(DJANGO_ARGON2_PREFIX) {
            self.verify_argon2(password, phc)
        } else {
            django::verify(password, stored).map(|(matched, cost)| {
                let check = if matched {
                    PasswordCheck::MatchNeedsRehash
                } else {
                    PasswordCheck::Mismatch
                };
                (check, cost)
            })
        };
        // Nothing was computed: spend what a check of a current hash costs, so that an account
        // with an unusable password cannot be told from one with a real one.
        checked.unwrap_or_else(|| self.verify_dummy(password))
    }

    /// Checks an argon2 PHC string; `None` when it cannot be computed (malformed).
    fn verify_argon2(&self, password: &str, phc: &str) -> Option<(PasswordCheck, String)> {
        let parsed = PasswordHash::new(phc).ok()?;
        // The stored hash names its own variant (argon2id, or argon2i from Django before 3.2),
        // version and cost; they are read from it.
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed
            .version
            .map_or(Ok(Version::V0x13), Version::try_from)
            .ok()?;
        let params = Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let mut out = vec![0u8; expected.len()];
        argon2_into(
            &Argon2::new(algorithm, version, params.clone()),
            password.as_bytes(),
            salt,
            &mut out,
        )
        .ok()?;
        let cost = argon2_cost(parsed.algorithm.as_str(), &params);
        if !bool::from(out.as_slice().ct_eq(expected.as_bytes())) {
            return Some((PasswordCheck::Mismatch, cost));
        }
        let ours = self.argon2.params();
        let current = parsed.algorithm.as_str() == "argon2id"
            && params.m_cost() == ours.m_cost()
            && params.t_cost() == ours.t_cost()
            && params.p_cost() == ours.p_cost();
        let check = if current {
            PasswordCheck::Match
        } else {
            PasswordCheck::MatchNeedsRehash
        };
        Some((check, cost))
    }

    /// Spends the time of one verification of a current hash, for a login whose user does not
    /// exist or whose hash is unusable. Never matches; returns the cost class it spent.
    pub fn verify_dummy(&self, password: &str) -> (PasswordCheck, String) {
        let _ = self
            .dummy_hash
            .strip_prefix(DJANGO_ARGON2_PREFIX)
            .and_then(|phc| self.verify_argon2(password, phc));
        (PasswordCheck::Mismatch, self.dummy_cost.clone())
    }
}

/// The cost class of an argon2 hash: variant and the three work factors.
fn argon2_cost(algorithm: &str, params: &Params) -> String {
    format!(
        "{algorithm}$m={},t={},p={}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(64, 1, 1).expect("valid params")
    }

    #[test]
    fn hashes_verify_and_look_like_django() {
        let hasher = cheap();
        let hash = hasher.hash("s3cret pass");
        assert!(
            hash.starts_with("argon2$argon2id$v=19$m=64,t=1,p=1$"),
            "{hash}"
        );
        assert_eq!(hasher.verify("s3cret pass", &hash), PasswordCheck::Match);
        assert_eq!(hasher.verify("s3cret pas", &hash), PasswordCheck::Mismatch);
        assert_ne!(hash, hasher.hash("s3cret pass"), "salted");
    }

    #[test]
    fn new_hashes_verify_with_the_reference_argon2_verifier() {
        use argon2::PasswordVerifier as _;
        let hash = cheap().hash("s3cret pass");
        let phc = hash.strip_prefix("argon2").expect("Django prefix");
        let parsed = PasswordHash::new(phc).expect("a PHC string");
        assert!(Argon2::default()
            .verify_password(b"s3cret pass", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"s3cret pas", &parsed)
            .is_err());
    }

    #[test]
    fn a_hash_at_another_cost_asks_for_a_rehash() {
        let hash = cheap().hash("pw");
        let stronger = PasswordHasher::new(128, 2, 1).expect("valid params");
        assert_eq!(
            stronger.verify("pw", &hash),
            PasswordCheck::MatchNeedsRehash
        );
    }

    #[test]
    fn unusable_hashes_never_match() {
        let hasher = cheap();
        for stored in [
            "",
            "!",
            "!abcdef",
            "argon2$garbage",
            "pbkdf2_sha256$1$salt$hash",
            "pbkdf2_sha256$x$salt$hash",
            "pbkdf2_sha256$0$salt$",
            "scrypt$1000$salt$8$1$hash",
            "scrypt$1024$salt$8$1",
            "bcrypt$notbcrypt",
            "md5$",
            "crypt$$ab1234",
            "sha1$salt",
        ] {
            assert_eq!(
                hasher.verify("", stored),
                PasswordCheck::Mismatch,
                "{stored}"
            );
        }
    }

    #[derive(serde::Deserialize)]
    struct Fixtures {
        hashes: Vec<Fixture>,
    }

    #[derive(serde::Deserialize)]
    struct Fixture {
        format: String,
        password: String,
        encoded: String,
    }

    /// Hashes written by Django's own hashers (see fixtures/README.md for how they were made).
    #[test]
    fn every_django_format_verifies_and_asks_for_a_rehash() {
        let fixtures: Fixtures =
            serde_json::from_str(include_str!("fixtures/django_hashes.json")).expect("fixtures");
        let hasher = cheap();
        let mut formats = std::collections::BTreeSet::new();
        for fixture in &fixtures.hashes {
            let Fixture {
                format,
                password,
                encoded,
            } = fixture;
            formats.insert(format.as_str());
            if format == "unusable" {
                assert_eq!(hasher.verify(password, encoded), PasswordCheck::Mismatch);
                continue;
            }
            assert_eq!(
                hasher.verify(password, encoded),
                PasswordCheck::MatchNeedsRehash,
                "{format}: {encoded}"
            );
            assert_eq!(
                hasher.verify(&format!("{password}x"), encoded),
                PasswordCheck::Mismatch,
                "{format}: {encoded} with a wrong password"
            );
        }
        let expected = [
            "argon2i",
            "argon2id",
            "bcrypt",
            "bcrypt_sha256",
            "md5",
            "pbkdf2_sha1",
            "pbkdf2_sha256",
            "scrypt",
            "sha1",
            "unsalted_md5",
            "unsalted_md5_bare",
            "unsalted_sha1",
            "unusable",
        ];
        assert_eq!(formats.into_iter().collect::<Vec<_>>(), expected);
    }

    /// A cost class names the format and its work factors, never the salt or digest; what
    /// cannot be computed costs, and reports, the dummy check.
    #[test]
    fn cost_classes_name_the_work_done() {
        let hasher = cheap();
        let dummy = "argon2id$m=64,t=1,p=1";
        let fixtures: Fixtures =
            serde_json::from_str(include_str!("fixtures/django_hashes.json")).expect("fixtures");
        let class_of = |stored: &str| hasher.verify_costed("wrong", stored).1;
        for stored in [
            "",
            "!",
            "!abcdef",
            "argon2$garbage",
            "pbkdf2_sha256$x$salt$hash",
            "pbkdf2_sha256$0$salt$",
            "scrypt$1000$salt$8$1$hash",
            "bcrypt$notbcrypt",
            "unknown$format",
        ] {
            assert_eq!(class_of(stored), dummy, "{stored}");
        }
        assert_eq!(
            hasher.verify_dummy("x"),
            (PasswordCheck::Mismatch, dummy.to_owned())
        );
        for fixture in fixtures.hashes.iter().filter(|f| f.format != "unusable") {
            let class = class_of(&fixture.encoded);
            let secret_parts = fixture.encoded.rsplit('$').take(2);
            for part in secret_parts.filter(|p| p.len() > 6) {
                assert!(
                    !class.contains(part),
                    "{class} holds part of {}",
                    fixture.encoded
                );
            }
        }
        for (stored, class) in [
            (fixtures.hashes[3].encoded.as_str(), "pbkdf2_sha256$600000"),
            (&fixtures.hashes[6].encoded, "pbkdf2_sha1$1000"),
            (&fixtures.hashes[12].encoded, "argon2i$m=128,t=2,p=1"),
            (&fixtures.hashes[15].encoded, "bcrypt_sha256$04"),
            (&fixtures.hashes[18].encoded, "bcrypt$04"),
            (&fixtures.hashes[21].encoded, "scrypt$1024$8$1"),
            (&fixtures.hashes[24].encoded, "md5"),
            (&fixtures.hashes[30].encoded, "md5"),
        ] {
            assert_eq!(class_of(stored), class, "{stored}");
        }
    }

    #[test]
    fn unsalted_md5_in_django_dollar_form_verifies() {
        // Django accepts `md5$$<hex>` as well as the bare hex digest.
        let hasher = cheap();
        let bare = "9cc2ae8a1ba7a93da39b46fc1019c481";
        let check = hasher.verify("correct horse battery staple", &format!("md5$${bare}"));
        assert_eq!(check, PasswordCheck::MatchNeedsRehash);
    }
}
