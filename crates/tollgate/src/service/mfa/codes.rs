//! Recovery codes and `mfa_token`s: random, shown once, stored only as SHA-256 hashes.

use rand_core::{OsRng, RngCore};
use tollgate_core::account_token::{hash_account_token, new_account_token};

/// Codes in a set.
pub(crate) const RECOVERY_CODES: usize = 10;
/// The letters of a recovery code: base32's, lower case, without the easily confused 0/o,
/// 1/l (the alphabet is 32 letters, so each carries 5 bits).
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Letters per code: 60 bits, too many to guess behind the login throttle or to find from a
/// stolen hash.
const LETTERS: usize = 12;

/// A fresh set of recovery codes (`xxxx-xxxx-xxxx`) and the hashes to store for `user_id`.
pub(crate) fn new_recovery_codes(user_id: i64) -> (Vec<String>, Vec<String>) {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; LETTERS];
            OsRng.fill_bytes(&mut bytes);
            let letters: Vec<char> = bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
                .collect();
            let code = letters
                .chunks(4)
                .map(|group| group.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-");
            let hash = recovery_code_hash(user_id, &code);
            (code, hash)
        })
        .unzip()
}

/// The hash a recovery code of `user_id` is stored as: the code as typed, in any case and with
/// or without its hyphens and spaces, hashes alike.
pub(crate) fn recovery_code_hash(user_id: i64, code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hash_account_token(&format!("recovery {user_id} {normal}"))
}

/// The prefix of an `mfa_token`, so that one is told apart from a JWT at a glance (and by the
/// enrolment endpoints, which take it as a bearer token).
pub(crate) const MFA_TOKEN_PREFIX: &str = "mfa_";

/// A new `mfa_token` and the hash to store of it.
pub(crate) fn new_mfa_token() -> (String, String) {
    let (random, _) = new_account_token();
    let token = format!("{MFA_TOKEN_PREFIX}{random}");
    let hash = mfa_token_hash(&token);
    (token, hash)
}

/// The hash an `mfa_token` is stored and looked up as.
pub(crate) fn mfa_token_hash(token: &str) -> String {
    hash_account_token(token)
}

/// A new token for a passkey ceremony (registration, passwordless sign-in) and the hash to
/// store of it.
pub(crate) fn new_ceremony_token() -> (String, String) {
    new_account_token()
}

/// The hash a ceremony token is stored and looked up as.
pub(crate) fn ceremony_token_hash(token: &str) -> String {
    hash_account_token(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_has_ten_distinct_well_formed_codes() {
        let (codes, hashes) = new_recovery_codes(1);
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        for (code, hash) in codes.iter().zip(&hashes) {
            assert_eq!(code.len(), 14, "{code}");
            assert_eq!(code.matches('-').count(), 2, "{code}");
            assert_eq!(&recovery_code_hash(1, code), hash);
        }
    }

    #[test]
    fn a_code_hashes_alike_however_typed_and_differently_per_user() {
        let hash = recovery_code_hash(1, "abcd-efgh-ijkm");
        assert_eq!(recovery_code_hash(1, "ABCD EFGH IJKM"), hash);
        assert_eq!(recovery_code_hash(1, "abcdefghijkm"), hash);
        assert_ne!(recovery_code_hash(2, "abcd-efgh-ijkm"), hash);
    }

    #[test]
    fn mfa_tokens_are_prefixed_and_random() {
        let (token, hash) = new_mfa_token();
        assert!(token.starts_with(MFA_TOKEN_PREFIX) && token.len() > 40);
        assert_eq!(mfa_token_hash(&token), hash);
        assert_ne!(new_mfa_token().0, token);
    }
}
