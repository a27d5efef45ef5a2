//! The error of the service layer: what went wrong, in the domain's words. The HTTP API maps
//! it to statuses and bodies in [`crate::error`]; the command line prints it.

use std::time::Duration;

use tollgate_core::body::BodyError;
use tollgate_core::{SigningError, TokenError};
use tollgate_store::StoreError;

/// Field errors in the order the fields are declared: `(field, messages)`.
pub(crate) type FieldErrors = Vec<(String, Vec<String>)>;

/// Why an operation of [`crate::service`] did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ServiceError {
    /// A new password was refused: the old one given did not match, or the new one fails
    /// the password policy (each problem in the policy's words).
    #[error("{}", password_refusal(*old_password_wrong, problems))]
    PasswordRefused {
        /// The one changing the password gave a wrong current password.
        old_password_wrong: bool,
        /// What the password policy says of the new password.
        problems: Vec<String>,
    },
    /// Values that break a rule of their field (a taken username, a malformed email...).
    #[error("{}", invalid_fields(.0))]
    InvalidFields(FieldErrors),
    /// Values that break a rule of their field, some of them sent in an object under
    /// `nested` (USER_UPDATE_NESTED): `{"user": {"email": [...]}, "money": [...]}`.
    #[error("{nested}: {}; {}", invalid_fields(inner), invalid_fields(outer))]
    InvalidNestedFields {
        /// The field that holds the object.
        nested: &'static str,
        /// The errors of the fields sent inside it.
        inner: FieldErrors,
        /// The errors of the others.
        outer: FieldErrors,
    },
    /// The request's fields could not be read (by the body's own rules).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Wrong password, unknown user or inactive user: one answer for all, so that none tells
    /// which accounts exist.
    #[error("no active account found with the given credentials")]
    NoActiveAccount,
    /// Too many failed password checks for the address or identifier; retry after this long.
    #[error("too many failed password checks; retry in {0:?}")]
    Throttled(Duration),
    /// The identifier is locked after LOGIN_LOCKOUT_THRESHOLD failures; `Some(wait)` when the
    /// lock ends by itself.
    #[error("the account is locked after too many failed logins")]
    AccountLocked(Option<Duration>),
    /// A token was refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A blacklisted token presented to be verified: simplejwt reports it as a validation
    /// error of the request, not as a refused token.
    #[error("Token is blacklisted")]
    BlacklistedOnVerify,
    /// A token whose user was deleted or deactivated.
    #[error("no active account found for the given token")]
    NoActiveAccountForToken,
    /// A token minted before its user's password changed (CHECK_REVOKE_TOKEN).
    #[error("the user's password has been changed")]
    PasswordChangedForToken,
    /// The user is gone (deleted while the operation ran).
    #[error("the user does not exist")]
    UserNotFound,
    /// The user has no live session with this id.
    #[error("no such live session")]
    SessionNotFound,
    /// A correct password of an account whose email address waits for confirmation
    /// (EMAIL_VERIFICATION = mandatory).
    #[error("the email address is not confirmed")]
    EmailNotVerified,
    /// An activation link for an address already confirmed.
    #[error("stale token for given user")]
    StaleToken,
    /// A feature the request needs is turned off; the message says which setting turns it on.
    #[error("{0}")]
    NotConfigured(&'static str),
    /// A mail could not be composed from its templates.
    #[error("mail: {0}")]
    Mail(String),
    /// The password was right; the second factor is due, with the `mfa_token` of the second
    /// step and the methods the user has.
    #[error("a second factor is due")]
    SecondFactorDue {
        mfa_token: String,
        methods: Vec<&'static str>,
    },
    /// The password was right; MFA_REQUIRED demands a second factor the user has yet to enrol,
    /// which the `mfa_token` lets them do.
    #[error("a second factor must be enrolled")]
    EnrollmentDue { mfa_token: String },
    /// A password alone (HTTP Basic) for an account with a second factor.
    #[error("the account has a second factor")]
    SecondFactorRequired,
    /// An `mfa_token` that is unknown, expired, used, or void (the password changed, too many
    /// wrong codes).
    #[error("invalid or expired mfa_token")]
    MfaTokenInvalid,
    /// A wrong second-factor code at login.
    #[error("wrong second-factor code")]
    WrongCode,
    /// TOTP enrolment for a user who has it already.
    #[error("TOTP is already enabled")]
    MfaAlreadyEnabled,
    /// Removing a factor, or renewing recovery codes, for a user who has none.
    #[error("no second factor is enabled")]
    MfaNotEnabled,
    /// A passwordless sign-in whose passkey answer does not check (or whose ceremony is
    /// unknown, expired or used).
    #[error("the passkey was not accepted")]
    PasskeyRefused,
    /// The user has no such second factor.
    #[error("no such second factor")]
    FactorNotFound,
    /// A stored secret could not be sealed or opened (KEYS_ENCRYPTION_KEY).
    #[error("stored secret: {0}")]
    Secret(String),
    /// The claims hook (CLAIMS_HOOK_URL) failed with CLAIMS_HOOK_FAILURE = deny: nothing was
    /// issued. The cause is for the log.
    #[error("the claims hook failed: {0}")]
    ClaimsHookFailed(String),
    /// An API key that is unknown, revoked or malformed, or no API key at all.
    #[error("{0}")]
    ApiKeyRefused(ApiKeyRefusal),
    /// An API key without the scope the operation needs.
    #[error("the API key lacks the scope {0}")]
    ApiKeyScope(&'static str),
    /// The user an operation names does not exist (by id or username).
    #[error("no such user")]
    NoSuchUser,
    /// The user an operation names is inactive.
    #[error("the user is inactive")]
    InactiveUser,
    /// An administrator may not do this (see [`crate::service::admin`]).
    #[error("You do not have permission to perform this action.")]
    PermissionDenied,
    /// ADMIN_REQUIRES_MFA: the token shows no second factor.
    #[error("this action needs a login with a second factor")]
    MfaRequired,
    /// The account (or another object) an administrator named does not exist.
    #[error("not found")]
    NotFound,
    /// A page number past the last page, or not a number.
    #[error("invalid page")]
    InvalidPage,
    /// A request that is understood but refused by a rule, in words for the client, with a
    /// machine-readable code (an administrator deleting their own account...).
    #[error("{detail}")]
    Refused {
        /// What the client is told.
        detail: &'static str,
        /// The `code` of the answer.
        code: &'static str,
    },
    /// Another change was committed at the same time; this one changed nothing.
    #[error("{0}")]
    Conflict(&'static str),
    /// The stored signing keys cannot be read or used.
    #[error(transparent)]
    Keys(#[from] crate::keyring::KeysError),
    /// A token could not be signed: an unusable key.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a request's API key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiKeyRefusal {
    /// No `Authorization: Api-Key <key>` header (a bearer token, say).
    Missing,
    /// A header of the scheme that does not hold one key.
    Malformed,
    /// No live key has this value: unknown or revoked.
    Invalid,
}

impl std::fmt::Display for ApiKeyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ApiKeyRefusal::Missing => "no API key was presented",
            ApiKeyRefusal::Malformed => "the API key header is malformed",
            ApiKeyRefusal::Invalid => "the API key is unknown or revoked",
        })
    }
}

fn password_refusal(old_password_wrong: bool, problems: &[String]) -> String {
    let mut reasons = Vec::new();
    if old_password_wrong {
        reasons.push("the old password is wrong.".to_owned());
    }
    reasons.extend(problems.iter().cloned());
    format!("the password was refused: {}", reasons.join(" "))
}

fn invalid_fields(fields: &FieldErrors) -> String {
    let each: Vec<String> = fields
        .iter()
        .map(|(field, messages)| format!("{field}: {}", messages.join(" ")))
        .collect();
    each.join("; ")
}
