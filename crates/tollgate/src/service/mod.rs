//! The operations under the HTTP API and the command line: typed inputs, typed results and
//! [`ServiceError`], and no HTTP. A handler parses the request, calls one function here and
//! maps what it returns (the error through the one table in [`crate::error`]); a command does
//! the same with its arguments, so that both act alike.
//!
//! - [`login`]: checking a password behind the throttle and the lockout.
//! - [`mfa`]: second factors (TOTP, recovery codes) and the second step of a login.
//! - [`tokens`]: issuing tokens to a user who has logged in (or whom an administrator names).
//! - [`claims_hook`]: asking the application's hook for claims and login fields.
//! - [`api_keys`]: API keys, and tokens issued with them to users a trusted backend names.
//! - [`refresh`]: refreshing, rotating, sliding and verifying tokens.
//! - [`sessions`]: logging out, revoking sessions.
//! - [`recovery`]: password reset by mail.
//! - [`verification`]: confirming a registration's email address.
//! - [`accounts`]: registering, updating, changing a password, activating.
//! - [`user_fields`]: the rules of the user fields, shared by registration and update.
//! - [`admin`]: what administrators do to accounts, sessions and keys, with its permissions.
//! - [`audit`]: the log of administrative actions and who took them ([`audit::Actor`]).
//! - [`keys`]: listing and rotating the signing keys kept in the database.

pub(crate) mod accounts;
pub(crate) mod admin;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod claims_hook;
mod error;
pub(crate) mod keys;
mod links;
pub(crate) mod login;
pub(crate) mod mfa;
pub(crate) mod recovery;
pub(crate) mod refresh;
pub(crate) mod sessions;
pub(crate) mod tokens;
pub(crate) mod user_fields;
pub(crate) mod verification;

use tollgate_core::password::PasswordPolicy;
use tollgate_core::{unix_now, Settings};
use tollgate_store::{Revocation, Store, StoreError, UserField};

pub(crate) use error::{ApiKeyRefusal, FieldErrors, ServiceError};

use crate::keyring::EncryptionKeys;
use crate::outbox::Outbox;
use crate::state::{AppState, PasswordPool};
use crate::user_cache::UserCache;
use crate::webhooks::Event;

/// What the operations that need no signing key act on: a running server's state, or what a
/// command builds ([`Standalone`]).
pub(crate) struct Context<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) store: &'a Store,
    pub(crate) passwords: &'a PasswordPool,
    pub(crate) policy: &'a PasswordPolicy,
    /// USER_ID_FIELD: how tokens name the user.
    pub(crate) user_id_field: UserField,
    /// LOGIN_FIELDS: what a user logs in with, which a username must not mimic.
    pub(crate) login_fields: &'a [UserField],
    /// The server's cache of users, cleared after a change; a command has none.
    pub(crate) user_cache: Option<&'a UserCache>,
    /// Where mail and events (WEBHOOK_URLS) go; a serving instance's sender delivers them, a
    /// command's too.
    pub(crate) outbox: &'a Outbox,
    /// KEYS_ENCRYPTION_KEY and KEYS_PREVIOUS_ENCRYPTION_KEY, parsed.
    pub(crate) encryption_keys: &'a EncryptionKeys,
}

impl<'a> Context<'a> {
    /// The context of a running server.
    pub(crate) fn of(state: &'a AppState) -> Context<'a> {
        Context {
            settings: &state.settings,
            store: &state.store,
            passwords: &state.passwords,
            policy: &state.policy,
            user_id_field: state.user_id_field,
            login_fields: &state.login_fields,
            user_cache: Some(&state.user_cache),
            outbox: &state.outbox,
            encryption_keys: &state.encryption_keys,
        }
    }

    /// Revokes live access tokens when ACCESS_TOKEN_REVOCATION is on (on every instance; see
    /// [`AppState::revoke_access`]); does nothing when it is off.
    pub(crate) async fn revoke_access(&self, revocation: Revocation<'_>) -> Result<(), StoreError> {
        if self.settings.access_token_revocation {
            self.store
                .revoke_access(&revocation, self.settings.access_token_lifetime, unix_now())
                .await?;
        }
        Ok(())
    }

    /// Records `event` for the webhooks (see [`Outbox::emit`]).
    pub(crate) async fn emit(&self, event: Event, data: serde_json::Value) {
        self.outbox.emit(self.store, event, data).await;
    }

    /// Forgets cached copies of users after a change.
    pub(crate) fn users_changed(&self) {
        if let Some(cache) = self.user_cache {
            cache.clear();
        }
    }
}

/// The parts of a [`Context`] for a command, which runs without a server.
pub(crate) struct Standalone {
    settings: Settings,
    store: Store,
    passwords: PasswordPool,
    policy: PasswordPolicy,
    user_id_field: UserField,
    login_fields: Vec<UserField>,
    outbox: Outbox,
    encryption_keys: EncryptionKeys,
}

impl Standalone {
    /// Builds the parts from the settings and an open store; the error names the setting at
    /// fault.
    pub(crate) fn new(
        settings: Settings,
        store: Store,
    ) -> Result<Standalone, crate::state::StateError> {
        Ok(Standalone {
            encryption_keys: EncryptionKeys::from_settings(&settings)?,
            outbox: crate::state::outbox(&settings)?,
            passwords: PasswordPool::new(crate::state::password_hasher(&settings)?),
            login_fields: crate::state::login_fields(&settings),
            user_id_field: crate::state::id_field(settings.user_id_field),
            policy: PasswordPolicy::from_settings(&settings),
            settings,
            store,
        })
    }

    /// The context to call operations with.
    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            settings: &self.settings,
            store: &self.store,
            passwords: &self.passwords,
            policy: &self.policy,
            user_id_field: self.user_id_field,
            login_fields: &self.login_fields,
            user_cache: None,
            outbox: &self.outbox,
            encryption_keys: &self.encryption_keys,
        }
    }
}
