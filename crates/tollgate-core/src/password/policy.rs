//! The password policy: Django's four default validators, with their rules and messages. They
//! run when a password is set (registration, password change), never at login.

use std::collections::HashSet;

use crate::Settings;

/// Django's list of common passwords (see `common/README.md` for where it comes from).
const COMMON_PASSWORDS: &str = include_str!("common/common-passwords.txt");

/// Checks new passwords against the configured rules.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    min_length: usize,
    /// 0.0 when the similarity check is off.
    max_similarity: f64,
    common: Option<HashSet<&'static str>>,
    reject_numeric: bool,
}

/// What a similarity check compares the password with: a user attribute and its name as the
/// message shows it.
#[derive(Debug, Clone, Copy)]
pub struct UserAttribute<'a> {
    /// How the message names the attribute: `username`, `first name`, `email address`.
    pub verbose_name: &'a str,
    /// The attribute's value.
    pub value: &'a str,
}

impl PasswordPolicy {
    /// The policy the settings describe.
    pub fn from_settings(settings: &Settings) -> PasswordPolicy {
        PasswordPolicy {
            min_length: settings.password_min_length,
            max_similarity: f64::from(settings.password_max_similarity) / 100.0,
            common: settings
                .password_reject_common
                .then(|| COMMON_PASSWORDS.lines().map(str::trim).collect()),
            reject_numeric: settings.password_reject_numeric,
        }
    }

    /// Every rule the password breaks, as Django words it, in Django's order (similarity,
    /// length, common, numeric). Empty when the password is acceptable.
    ///
    /// ```
    /// use tollgate_core::password::{PasswordPolicy, UserAttribute};
    /// let policy = PasswordPolicy::from_settings(&tollgate_core::Settings::default());
    /// let user = [UserAttribute { verbose_name: "username", value: "ann" }];
    /// assert_eq!(
    ///     policy.check("1234567", &user),
    ///     [
    ///         "This password is too short. It must contain at least 8 characters.",
    ///         "This password is too common.",
    ///         "This password is entirely numeric.",
    ///     ]
    /// );
    /// assert!(policy.check("correct horse battery staple", &user).is_empty());
    /// ```
    pub fn check(&self, password: &str, user: &[UserAttribute<'_>]) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_similarity > 0.0 {
            if let Some(name) = self.too_similar(password, user) {
                problems.push(format!("The password is too similar to the {name}."));
            }
        }
        if password.chars().count() < self.min_length {
            let unit = if self.min_length == 1 {
                "character"
            } else {
                "characters"
            };
            problems.push(format!(
                "This password is too short. It must contain at least {} {unit}.",
                self.min_length
            ));
        }
        if let Some(common) = &self.common {
            if common.contains(password.trim().to_lowercase().as_str()) {
                problems.push("This password is too common.".to_owned());
            }
        }
        if self.reject_numeric && !password.is_empty() && password.chars().all(is_digit) {
            problems.push("This password is entirely numeric.".to_owned());
        }
        problems
    }

    /// The verbose name of the first attribute the password is too similar to. The password
    /// is compared with each lower-cased value and each of its words, as Django does.
    fn too_similar<'a>(&self, password: &str, user: &[UserAttribute<'a>]) -> Option<&'a str> {
        let password: Vec<char> = password.to_lowercase().chars().collect();
        for attribute in user {
            if attribute.value.is_empty() {
                continue;
            }
            let value = attribute.value.to_lowercase();
            let whole = std::iter::once(value.as_str());
            let parts = value
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .chain(whole);
            for part in parts {
                let part: Vec<char> = part.chars().collect();
                if self.too_long_to_compare(password.len(), part.len()) {
                    continue;
                }
                if quick_ratio(&password, &part) >= self.max_similarity {
                    return Some(attribute.verbose_name);
                }
            }
        }
        None
    }

    /// Django skips a part much shorter than the password: no similarity is then possible.
    fn too_long_to_compare(&self, password_len: usize, part_len: usize) -> bool {
        // Lengths of passwords and names are far below 2^52, so the conversions are exact.
        let bound = self.max_similarity / 2.0 * password_len as f64;
        password_len >= 10 * part_len && (part_len as f64) < bound
    }
}

/// Python's `SequenceMatcher.quick_ratio`: twice the characters the two have in common
/// (as multisets) over their total length.
fn quick_ratio(a: &[char], b: &[char]) -> f64 {
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    let mut available: std::collections::HashMap<char, usize> = std::collections::HashMap::new();
    for c in b {
        *available.entry(*c).or_default() += 1;
    }
    let mut matches = 0usize;
    for c in a {
        if let Some(count) = available.get_mut(c) {
            if *count > 0 {
                *count -= 1;
                matches += 1;
            }
        }
    }
    2.0 * matches as f64 / total as f64
}

/// Close to Python's `str.isdigit`: decimal digits of any script count. (Rust's `is_numeric`
/// also counts a few characters Python does not, such as `½` and Roman numerals; a password
/// made only of those is refused too.)
fn is_digit(c: char) -> bool {
    c.is_numeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_policy() -> PasswordPolicy {
        PasswordPolicy::from_settings(&Settings::default())
    }

    fn attrs<'a>(pairs: &'a [(&'a str, &'a str)]) -> Vec<UserAttribute<'a>> {
        pairs
            .iter()
            .map(|(verbose_name, value)| UserAttribute {
                verbose_name,
                value,
            })
            .collect()
    }

    #[test]
    fn short_passwords_are_refused_with_djangos_message() {
        let policy = default_policy();
        assert_eq!(
            policy.check("Xq9#zT", &[]),
            ["This password is too short. It must contain at least 8 characters."]
        );
        // Characters, not bytes.
        assert!(policy.check("ééééééééZq", &[]).is_empty());
    }

    #[test]
    fn the_common_list_is_djangos_and_matches_without_case() {
        let policy = default_policy();
        assert_eq!(
            policy.check(" PassWord1 ", &[]),
            ["This password is too common."]
        );
        assert_eq!(COMMON_PASSWORDS.lines().count(), 19_640);
    }

    #[test]
    fn numeric_passwords_are_refused_including_other_scripts_digits() {
        let policy = default_policy();
        assert_eq!(
            policy.check("83749201655", &[]),
            ["This password is entirely numeric."]
        );
        assert_eq!(
            policy.check("١٢٣٤٥٦٧٨٩٠٤٤", &[]),
            ["This password is entirely numeric."]
        );
        assert!(policy.check("83749201655a", &[]).is_empty());
    }

    #[test]
    fn similarity_follows_djangos_rule() {
        let policy = default_policy();
        let user = attrs(&[
            ("username", "margaret_h"),
            ("first name", "Margaret"),
            ("email address", "meg.hamilton@example.com"),
        ]);
        assert_eq!(
            policy.check("margaret_h1", &user),
            ["The password is too similar to the username."]
        );
        // A word of the email address is enough.
        assert_eq!(
            policy.check("Hamilton77", &user),
            ["The password is too similar to the email address."]
        );
        assert!(policy.check("quantum-ferret-72", &user).is_empty());
        // A long password is not compared with a very short part.
        let short = attrs(&[("username", "ab")]);
        assert!(policy.check("abababababababababababab", &short).is_empty());
    }

    #[test]
    fn each_rule_can_be_turned_off() {
        let settings = Settings {
            password_min_length: 0,
            password_max_similarity: 0,
            password_reject_common: false,
            password_reject_numeric: false,
            ..Settings::default()
        };
        let policy = PasswordPolicy::from_settings(&settings);
        assert!(policy.check("1", &attrs(&[("username", "1")])).is_empty());
    }
}
