//! Tollgate's token core: settings, claims, token types, signing and verification.
//!
//! This crate does no I/O: it turns settings into keys, users into tokens and tokens back into
//! claims, with simplejwt's rules and messages. Storage lives in `tollgate-store`, HTTP in
//! `tollgate`.
//!
//! # Layout
//! - [`settings`]: the one typed [`Settings`], with simplejwt's names and defaults.
//! - [`TokenCodec`]: mints access, refresh and sliding tokens and checks them.
//! - [`Keys`] and [`keygen`]: signing keys, their `kid` and public JWK; new key pairs.
//! - [`KeyRing`]: the active key and the retired keys that still verify, chosen by `kid`;
//!   [`StoredKey`] and [`KeysEncryptionKey`] for the rotated keys kept in the database.
//! - [`KeySet`]: verifying keys picked by `kid`, from a JWK Set or the local settings.
//! - [`rules`]: the claim checks, which need no key.
//! - [`auth`]: reads an authorization header as simplejwt's `JWTAuthentication` does.
//! - [`password`]: argon2id password hashes; Django's other formats are verified too.
//! - [`identity`]: the one normal form of usernames and emails, and the counters' key.
//! - [`body`]: request bodies (JSON or form) read with DRF's field rules and messages.
//!
//! # Example
//! ```
//! use tollgate_core::{Settings, TokenCodec, TokenType, settings::Secret};
//!
//! let settings = Settings {
//!     signing_key: Secret("a long random secret of at least 32 bytes!".into()),
//!     ..Settings::default()
//! };
//! let codec = TokenCodec::new(&settings).unwrap();
//! let now = 1_700_000_000;
//! let issued = codec.sign(codec.claims_for_user(TokenType::Access, "42", now)).unwrap();
//! let claims = codec.decode_as(&issued.token, Some(TokenType::Access), now).unwrap();
//! assert_eq!(codec.user_id(&claims).as_deref(), Some("42"));
//! ```
#![deny(missing_docs)]

pub mod account_token;
pub mod auth;
pub mod body;
mod codec;
pub mod identity;
mod jose;
mod jwk;
mod key_encryption;
pub mod keygen;
mod keyring;
mod keys;
mod keyset;
pub mod password;
pub mod rules;
pub mod settings;
mod token;

pub use codec::TokenCodec;
pub use key_encryption::{is_sealed, KeysEncryptionKey, UnsealError};
pub use keyring::{KeyRing, KeyRingError, KeyState, StoredKey};
pub use keys::{Algorithm, KeyError, Keys};
pub use keyset::{JwksError, KeySet};
pub use settings::{Settings, SettingsError};
pub use token::{new_jti, Claims, Issued, SigningError, TokenError, TokenType};

/// The current time as whole seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
