//! The names of Django's JWT settings that are no Tollgate setting of the same name: those of
//! djangorestframework-jwt's `JWT_AUTH`, which mean a Tollgate setting under another name, and
//! those of simplejwt's `SIMPLE_JWT` that name Python code (classes, callables) Tollgate has
//! no place for. A settings block copied from Django therefore loads: the first kind sets the
//! setting they mean, the second is ignored with a warning that says what Tollgate does instead.

/// What a Django setting name means to Tollgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DjangoName {
    /// Another name of this Tollgate setting (`JWT_EXPIRATION_DELTA`: ACCESS_TOKEN_LIFETIME).
    Alias(&'static str),
    /// No setting: Tollgate does what this says instead.
    Ignored(&'static str),
}

/// djangorestframework-jwt's `JWT_AUTH` names and the Tollgate settings they mean.
const ALIASES: &[(&str, &str)] = &[
    ("JWT_EXPIRATION_DELTA", "ACCESS_TOKEN_LIFETIME"),
    ("JWT_REFRESH_EXPIRATION_DELTA", "REFRESH_TOKEN_LIFETIME"),
    ("JWT_SECRET_KEY", "SIGNING_KEY"),
    ("JWT_PRIVATE_KEY", "SIGNING_KEY"),
    ("JWT_PUBLIC_KEY", "VERIFYING_KEY"),
    ("JWT_ALGORITHM", "ALGORITHM"),
    ("JWT_LEEWAY", "LEEWAY"),
    ("JWT_AUDIENCE", "AUDIENCE"),
    ("JWT_ISSUER", "ISSUER"),
    ("JWT_AUTH_HEADER_PREFIX", "AUTH_HEADER_TYPES"),
];

const SERIALIZERS: &str = "Tollgate's endpoints answer as simplejwt's default serializers do; \
     claims are added with TOKEN_USER_CLAIMS, the login answer's shape is LOGIN_RESPONSE and \
     LOGIN_RESPONSE_USER";
const HANDLERS: &str = "Tollgate has no Python hooks; token claims come from USER_ID_FIELD, \
     USER_ID_CLAIM and TOKEN_USER_CLAIMS, the login answer from LOGIN_RESPONSE";

/// Django names with no Tollgate setting, and what Tollgate does instead.
const IGNORED: &[(&str, &str)] = &[
    (
        "TOKEN_USER_CLASS",
        "Tollgate makes the stateless user (TokenUser) of the token's claims itself; list \
         jwt_stateless in AUTHENTICATION_CLASSES for JWTStatelessUserAuthentication",
    ),
    (
        "USER_AUTHENTICATION_RULE",
        "Tollgate applies simplejwt's default rule: the user exists and, with \
         CHECK_USER_IS_ACTIVE, is active",
    ),
    (
        "JSON_ENCODER",
        "Tollgate writes claims as plain JSON; user fields become claims with TOKEN_USER_CLAIMS",
    ),
    ("TOKEN_OBTAIN_SERIALIZER", SERIALIZERS),
    ("TOKEN_REFRESH_SERIALIZER", SERIALIZERS),
    ("TOKEN_VERIFY_SERIALIZER", SERIALIZERS),
    ("TOKEN_BLACKLIST_SERIALIZER", SERIALIZERS),
    ("SLIDING_TOKEN_OBTAIN_SERIALIZER", SERIALIZERS),
    ("SLIDING_TOKEN_REFRESH_SERIALIZER", SERIALIZERS),
    (
        "ON_LOGIN_SUCCESS",
        "Tollgate records last_login with UPDATE_LAST_LOGIN, and every login attempt (see \
         `tollgate events`)",
    ),
    (
        "ON_LOGIN_FAILED",
        "Tollgate records failed logins (see `tollgate events`) and limits them \
         (LOGIN_FAILURES_PER_ACCOUNT, LOGIN_LOCKOUT_THRESHOLD)",
    ),
    (
        "JWT_ALLOW_REFRESH",
        "with LOGIN_RESPONSE = \"token\", Tollgate always refreshes a valid token within \
         REFRESH_TOKEN_LIFETIME of its login",
    ),
    ("JWT_VERIFY", "Tollgate always verifies the signature"),
    (
        "JWT_VERIFY_EXPIRATION",
        "Tollgate always checks exp (allow clock skew with LEEWAY)",
    ),
    (
        "JWT_AUTH_COOKIE",
        "Tollgate reads tokens from the Authorization header; REFRESH_COOKIE carries the \
         refresh token of a pair in a cookie",
    ),
    (
        "JWT_GET_USER_SECRET_KEY",
        "Tollgate signs with one key for every user; CHECK_REVOKE_TOKEN ends a user's tokens \
         when their password changes",
    ),
    ("JWT_ENCODE_HANDLER", HANDLERS),
    ("JWT_DECODE_HANDLER", HANDLERS),
    ("JWT_PAYLOAD_HANDLER", HANDLERS),
    ("JWT_PAYLOAD_GET_USER_ID_HANDLER", HANDLERS),
    ("JWT_PAYLOAD_GET_USERNAME_HANDLER", HANDLERS),
    ("JWT_RESPONSE_PAYLOAD_HANDLER", HANDLERS),
];

/// What the Django setting `name` (upper case) means to Tollgate, if it is one of those that
/// are no Tollgate setting of the same name.
///
/// ```
/// use tollgate_core::settings::{django_name, DjangoName};
///
/// assert_eq!(
///     django_name("JWT_EXPIRATION_DELTA"),
///     Some(DjangoName::Alias("ACCESS_TOKEN_LIFETIME"))
/// );
/// assert!(matches!(django_name("TOKEN_USER_CLASS"), Some(DjangoName::Ignored(_))));
/// assert_eq!(django_name("ACCESS_TOKEN_LIFETIME"), None);
/// ```
pub fn django_name(name: &str) -> Option<DjangoName> {
    if let Some((_, setting)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Some(DjangoName::Alias(setting));
    }
    IGNORED
        .iter()
        .find(|(ignored, _)| *ignored == name)
        .map(|(_, instead)| DjangoName::Ignored(instead))
}

/// A Django setting given to Tollgate that Tollgate has no setting for: it was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredSetting {
    /// The name as written (`TOKEN_USER_CLASS`, `TOLLGATE_TOKEN_USER_CLASS`).
    pub name: String,
    /// What Tollgate does instead.
    pub instead: &'static str,
}

impl std::fmt::Display for IgnoredSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the Django setting {} has no Tollgate equivalent and is ignored: {}",
            self.name, self.instead
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;

    #[test]
    fn aliases_name_settings_and_no_ignored_name_is_a_setting() {
        for (_, setting) in ALIASES {
            assert!(
                Settings::REFERENCE.iter().any(|info| info.key == *setting),
                "{setting}"
            );
        }
        for (name, _) in IGNORED.iter().chain(ALIASES) {
            assert!(
                !Settings::REFERENCE.iter().any(|info| info.key == *name),
                "{name}"
            );
        }
    }
}
