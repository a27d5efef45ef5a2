//! The forms of the identifiers a user logs in with (username, email, phone), computed one way
//! and in one place, so that registration, login, import, the command line and the failed-login
//! counters agree on when two spellings name the same account.
//!
//! ```
//! use tollgate_core::identity::{fold, normalize_email, normalize_username};
//!
//! // Django's `AbstractBaseUser.normalize_username`: NFKC, so full-width letters are plain ones.
//! assert_eq!(normalize_username("ａｄｍｉｎ"), "admin");
//! // Django's `BaseUserManager.normalize_email`: the domain is not case-sensitive.
//! assert_eq!(normalize_email("Ann@Example.COM"), "Ann@example.com");
//! // The counters' form: one key for every spelling of one identifier.
//! assert_eq!(fold(" ＡＤＭＩＮ "), fold("admin"));
//! ```

use unicode_normalization::UnicodeNormalization;

/// A username as Django stores it: Unicode NFKC, which maps compatibility characters (full-width
/// letters, ligatures, superscripts) to their plain forms, so that `ａｄｍｉｎ` and `admin` are one
/// name. Case is kept: usernames are case-sensitive, as in Django.
pub fn normalize_username(username: &str) -> String {
    username.nfkc().collect()
}

/// An email address as Django stores it: the domain lower-cased, the local part kept (mail
/// servers may treat it as case-sensitive; lookups ignore its case anyway).
pub fn normalize_email(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => email.to_owned(),
    }
}

/// The key under which attempts on an identifier are counted: NFKC, surrounding whitespace
/// removed, lower-cased, then NFKC again (lower-casing can leave a decomposed form). Every
/// spelling that the lookups could treat as one identifier gets one key.
pub fn fold(identifier: &str) -> String {
    let normalized: String = identifier.trim().nfkc().collect();
    normalized.to_lowercase().nfkc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_characters_are_folded_into_plain_ones() {
        assert_eq!(normalize_username("ａｄｍｉｎ"), "admin");
        assert_eq!(normalize_username("ﬁle"), "file");
        assert_eq!(normalize_username("Admin"), "Admin");
        // Composed and decomposed forms of one letter are one name.
        assert_eq!(normalize_username("e\u{301}"), normalize_username("\u{e9}"));
    }

    #[test]
    fn folding_ignores_case_width_and_surrounding_space() {
        for spelling in ["Admin", "ADMIN", " admin ", "ＡＤＭＩＮ", "ａｄｍｉｎ"] {
            assert_eq!(fold(spelling), "admin", "{spelling}");
        }
        // The Kelvin sign lower-cases to a plain k.
        assert_eq!(fold("\u{212a}ate"), fold("kate"));
        assert_ne!(fold("ann"), fold("anne"));
    }

    #[test]
    fn only_the_domain_of_an_email_is_lower_cased() {
        assert_eq!(normalize_email(" Ann@Example.COM "), "Ann@example.com");
        assert_eq!(normalize_email("no-at-sign"), "no-at-sign");
        assert_eq!(normalize_email("a@b@C.org"), "a@b@c.org");
    }
}
