//! Django's password hash formats other than argon2, verified so that users moved from a Django
//! database keep their passwords. Tollgate never writes these: a match asks for a rehash.
//!
//! Each format is `algorithm$…` as Django's hashers write it; comparisons run in constant time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

/// Iteration counts above this are refused rather than run: a stored hash should never make a
/// login spend minutes (Django's own default is 1,000,000 in 5.2).
const MAX_PBKDF2_ITERATIONS: u32 = 100_000_000;

/// Whether `password` matches a stored hash in one of Django's non-argon2 formats, and the cost
/// class of the work done (the format and the parameters that decide its time, such as
/// `pbkdf2_sha256$1000000`); `None` when the hash is in no format known here (or malformed) and
/// nothing was computed.
pub(super) fn verify(password: &str, stored: &str) -> Option<(bool, String)> {
    let matched = verify_only(password, stored)?;
    Some((matched, cost_class(stored)?))
}

/// The part of a stored hash that decides how long checking it takes: the algorithm and its
/// work factors, never the salt or the digest.
fn cost_class(stored: &str) -> Option<String> {
    let Some((algorithm, rest)) = stored.split_once('$') else {
        return Some("md5".to_owned());
    };
    let field = |index: usize| rest.split('$').nth(index);
    Some(match algorithm {
        "pbkdf2_sha256" | "pbkdf2_sha1" => format!("{algorithm}${}", field(0)?),
        // `bcrypt$$2b$12$…`: the cost is the third `$` field after the algorithm.
        "bcrypt" | "bcrypt_sha256" => format!("{algorithm}${}", field(2)?),
        "scrypt" => format!("scrypt${}${}${}", field(0)?, field(2)?, field(3)?),
        other => other.to_owned(),
    })
}

fn verify_only(password: &str, stored: &str) -> Option<bool> {
    let (algorithm, rest) = match stored.split_once('$') {
        Some(split) => split,
        // Django's oldest form: a bare MD5 hex digest.
        None if stored.len() == 32 && stored.bytes().all(|b| b.is_ascii_hexdigit()) => {
            ("md5", stored)
        }
        None => return None,
    };
    match algorithm {
        "pbkdf2_sha256" => pbkdf2(password, rest, Pbkdf2::Sha256),
        "pbkdf2_sha1" => pbkdf2(password, rest, Pbkdf2::Sha1),
        "bcrypt_sha256" => {
            // Django hashes first so that bcrypt's 72-byte limit does not truncate passwords.
            let digest = hex(&sha2::Sha256::digest(password.as_bytes()));
            bcrypt_verify(&digest, rest)
        }
        "bcrypt" => bcrypt_verify(password, rest),
        "scrypt" => scrypt(password, rest),
        "md5" => salted_hex::<md5::Md5>(password, rest, stored),
        "sha1" => salted_hex::<sha1::Sha1>(password, rest, stored),
        _ => None,
    }
}

/// `pbkdf2_sha256$<iterations>$<salt>$<base64 of the derived key>`.
fn pbkdf2(password: &str, rest: &str, digest: Pbkdf2) -> Option<bool> {
    let mut parts = rest.splitn(3, '$');
    let (iterations, salt, expected) = (parts.next()?, parts.next()?, parts.next()?);
    let iterations: u32 = iterations.parse().ok()?;
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
        return None;
    }
    let (password, salt) = (password.as_bytes(), salt.as_bytes());
    let key = match digest {
        Pbkdf2::Sha256 => {
            pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(password, salt, iterations).to_vec()
        }
        Pbkdf2::Sha1 => {
            pbkdf2::pbkdf2_hmac_array::<sha1::Sha1, 20>(password, salt, iterations).to_vec()
        }
    };
    Some(equal(STANDARD.encode(key).as_bytes(), expected.as_bytes()))
}

#[derive(Clone, Copy)]
enum Pbkdf2 {
    Sha256,
    Sha1,
}

/// `bcrypt$$2b$12$…`: the rest after the algorithm is `$` and a standard bcrypt string.
fn bcrypt_verify(password: &str, rest: &str) -> Option<bool> {
    let modular = rest.strip_prefix('$').map(|r| format!("${r}"))?;
    // The bcrypt crate compares in constant time.
    bcrypt::verify(password.as_bytes(), &modular).ok()
}

/// `scrypt$<N>$<salt>$<r>$<p>$<base64 of a 64-byte key>`.
fn scrypt(password: &str, rest: &str) -> Option<bool> {
    let parts: Vec<&str> = rest.split('$').collect();
    let [n, salt, r, p, expected] = parts.as_slice() else {
        return None;
    };
    let n: u64 = n.parse().ok()?;
    if !n.is_power_of_two() || n < 2 {
        return None;
    }
    let log_n = u8::try_from(n.trailing_zeros()).ok()?;
    let params = scrypt::Params::new(log_n, r.parse().ok()?, p.parse().ok()?, 64).ok()?;
    let mut key = [0u8; 64];
    scrypt::scrypt(password.as_bytes(), salt.as_bytes(), &params, &mut key).ok()?;
    Some(equal(STANDARD.encode(key).as_bytes(), expected.as_bytes()))
}

/// `md5$<salt>$<hex of md5(salt + password)>`, the same for sha1; an empty salt is Django's
/// unsalted form (`md5$$…`, `sha1$$…`), and a bare 32-digit hex string is unsalted MD5.
fn salted_hex<D: digest::Digest>(password: &str, rest: &str, stored: &str) -> Option<bool> {
    let (salt, expected) = if rest.len() == stored.len() {
        ("", rest)
    } else {
        rest.split_once('$')?
    };
    let mut hasher = D::new();
    hasher.update(salt.as_bytes());
    hasher.update(password.as_bytes());
    Some(equal(
        hex(&hasher.finalize()).as_bytes(),
        expected.to_ascii_lowercase().as_bytes(),
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal contents, in time that depends only on the lengths.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
