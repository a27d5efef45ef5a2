//! The operations under the HTTP API and the command line: typed inputs, typed results and
//! [`ServiceError`], and no HTTP. A handler parses the request, calls one function here and
//! maps what it returns (the error through the one table in [`crate::error`]); a command does
//! the same with its arguments, so that both act alike.
//!
//! - [`tokens`]: issuing tokens to a user who has logged in (or whom an administrator names).
//! - [`accounts`]: changing a password, and the user fields tokens and bodies are made of.

pub(crate) mod accounts;
mod error;
pub(crate) mod tokens;

pub(crate) use error::ServiceError;
