//! TOTP (RFC 6238) as authenticator apps compute it: SHA-1, 6 digits, 30-second steps, a code
//! of the step before or after the current one accepted for clocks that drift.
//!
//! Secrets are stored sealed with KEYS_ENCRYPTION_KEY when it is set (bound to their user, so
//! that a sealed secret copied onto another user's row does not open), else as given.

use rand_core::{OsRng, RngCore};
use tollgate_core::{is_sealed, KeysEncryptionKey};
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per code.
const STEP_SECONDS: u64 = 30;
/// Digits per code.
const DIGITS: usize = 6;
/// Steps accepted on each side of the current one.
const SKEW: u64 = 1;
/// Secret length: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;

/// A new secret, as enrolment shows it.
#[derive(Debug)]
pub(crate) struct NewSecret {
    /// The secret in base32, for typing into an app.
    pub(crate) base32: String,
    /// The `otpauth://totp/...` URL that apps read from the QR code.
    pub(crate) otpauth_url: String,
    /// The QR code of that URL, as an SVG image.
    pub(crate) qr_svg: String,
}

/// A random secret for `account` (what apps show under `issuer`).
pub(crate) fn new_secret(issuer: &str, account: &str) -> NewSecret {
    let mut bytes = vec![0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    let totp = totp_for(bytes, issuer, account);
    let otpauth_url = totp.get_url();
    let qr_svg = qrcode::QrCode::new(otpauth_url.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build()
        })
        .unwrap_or_default();
    NewSecret {
        base32: totp.get_secret_base32(),
        otpauth_url,
        qr_svg,
    }
}

fn totp_for(secret: Vec<u8>, issuer: &str, account: &str) -> TOTP {
    // Unchecked: the length is ours, and a `:` in an account name (an email address may hold
    // one) is escaped in the URL rather than refused.
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        u8::try_from(SKEW).unwrap_or(1),
        STEP_SECONDS,
        secret,
        Some(issuer.to_owned()),
        account.to_owned(),
    )
}

/// The time step whose code `code` is, within the skew around `now` (epoch seconds), latest
/// first; `None` for a wrong code, anything but 6 digits, or a secret that does not decode.
/// Spaces are ignored (apps show `123 456`).
pub(crate) fn matching_step(base32: &str, code: &str, now: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secret = Secret::Encoded(base32.to_owned()).to_bytes().ok()?;
    let totp = totp_for(secret, "", "");
    let current = now / STEP_SECONDS;
    let mut found = None;
    // Every candidate is computed and compared, so that the time taken tells nothing.
    for step in current.saturating_sub(SKEW)..=current + SKEW {
        if equal_in_constant_time(&totp.generate(step * STEP_SECONDS), &code) {
            found = Some(step);
        }
    }
    found
}

fn equal_in_constant_time(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// What binds a user's sealed secret to them.
fn seal_context(user_id: i64) -> String {
    format!("totp secret of user {user_id}")
}

/// The secret as stored: sealed with `key` when there is one.
pub(crate) fn seal(
    key: Option<&KeysEncryptionKey>,
    user_id: i64,
    base32: &str,
) -> Result<String, &'static str> {
    match key {
        Some(key) => key.seal_secret(&seal_context(user_id), base32),
        None => Ok(base32.to_owned()),
    }
}

/// The secret a stored one holds, opened with the first of `keys` that opens it; `None` if it
/// is sealed and none does.
pub(crate) fn open(keys: &[KeysEncryptionKey], user_id: i64, stored: &str) -> Option<String> {
    if !is_sealed(stored) {
        return Some(stored.to_owned());
    }
    let context = seal_context(user_id);
    keys.iter()
        .find_map(|key| key.open_secret(&context, stored))
        .map(|secret| secret.expose().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238, appendix B: the SHA-1 secret "12345678901234567890", 8-digit codes; the last 6
    // digits are what a 6-digit authenticator shows.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn codes_are_those_of_rfc_6238() {
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(
                matching_step(RFC_SECRET, code, time),
                Some(time / 30),
                "{time}"
            );
        }
    }

    #[test]
    fn one_step_of_drift_is_accepted_and_no_more() {
        let now = 1_111_111_109;
        let code = "081804";
        assert_eq!(matching_step(RFC_SECRET, code, now + 30), Some(now / 30));
        assert_eq!(matching_step(RFC_SECRET, code, now - 30), Some(now / 30));
        assert_eq!(matching_step(RFC_SECRET, code, now + 90), None);
        assert_eq!(matching_step(RFC_SECRET, "081 804", now), Some(now / 30));
    }

    #[test]
    fn malformed_codes_are_refused() {
        for code in ["", "08180", "0818044", "08180a", "٠٨١٨٠٤"] {
            assert_eq!(
                matching_step(RFC_SECRET, code, 1_111_111_109),
                None,
                "{code:?}"
            );
        }
        assert_eq!(matching_step("not base32!", "081804", 1_111_111_109), None);
    }

    #[test]
    fn a_new_secret_is_160_bits_and_its_url_names_issuer_and_account() {
        let secret = new_secret("Acme Shop", "ann@example.com");
        assert_eq!(secret.base32.len(), 32);
        assert!(secret
            .otpauth_url
            .starts_with("otpauth://totp/Acme%20Shop:ann%40example.com?"));
        assert!(secret
            .otpauth_url
            .contains(&format!("secret={}", secret.base32)));
        assert!(secret.qr_svg.starts_with("<?xml") && secret.qr_svg.contains("<svg"));
        assert_ne!(new_secret("a", "b").base32, secret.base32);
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user() {
        let key = KeysEncryptionKey::parse(&"ab".repeat(32)).expect("key");
        let stored = seal(Some(&key), 7, RFC_SECRET).expect("sealed");
        assert!(!stored.contains(RFC_SECRET));
        let keys = [key];
        assert_eq!(open(&keys, 7, &stored).as_deref(), Some(RFC_SECRET));
        assert_eq!(open(&keys, 8, &stored), None);
        assert_eq!(open(&[], 7, &stored), None);
        assert_eq!(open(&[], 7, RFC_SECRET).as_deref(), Some(RFC_SECRET));
    }
}
