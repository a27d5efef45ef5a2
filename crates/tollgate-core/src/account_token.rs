//! The single-use tokens of the account flows (password reset), in djoser's shape: a link
//! carries the user's id as `uid` (URL-safe base64 of its decimal digits, as Django's
//! `urlsafe_base64_encode(force_bytes(pk))` writes it) and a random `token`. Only a SHA-256
//! hash of the token is stored, so a copy of the database opens no account.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use sha2::{Digest as _, Sha256};

/// A new token (32 random bytes, URL-safe base64) and the hash to store of it.
pub fn new_account_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_account_token(&token);
    (token, hash)
}

/// The hash a token is stored and looked up as.
pub fn hash_account_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `uid` of a link for user `id`.
pub fn encode_uid(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

/// The user id a `uid` names; `None` for anything that is not one (padding is accepted, as
/// Django's decoder accepts it).
pub fn decode_uid(uid: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(uid.trim_end_matches('=')).ok()?;
    let digits = std::str::from_utf8(&bytes).ok()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_djangos() {
        // Django: urlsafe_base64_encode(force_bytes(1)) == "MQ", 42 -> "NDI".
        assert_eq!(encode_uid(1), "MQ");
        assert_eq!(encode_uid(42), "NDI");
        assert_eq!(decode_uid("NDI"), Some(42));
        assert_eq!(decode_uid("NDI="), Some(42));
        for bad in ["", "!!", "LTE", "YWJj", "MQ.MQ"] {
            assert_eq!(decode_uid(bad), None, "{bad}");
        }
    }

    #[test]
    fn tokens_are_random_and_stored_as_their_hash() {
        let (a, hash_a) = new_account_token();
        let (b, _) = new_account_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_a, hash_account_token(&a));
        assert_eq!(hash_a.len(), 64);
        assert!(!hash_a.contains(&a));
    }
}
