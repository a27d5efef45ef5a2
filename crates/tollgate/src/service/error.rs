//! The error of the service layer: what went wrong, in the domain's words. The HTTP API maps
//! it to statuses and bodies in [`crate::error`]; the command line prints it.

use tollgate_core::SigningError;
use tollgate_store::StoreError;

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
    /// The user is gone (deleted while the operation ran).
    #[error("the user does not exist")]
    UserNotFound,
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
