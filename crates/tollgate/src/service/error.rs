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
