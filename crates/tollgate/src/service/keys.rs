//! The signing keys kept in the database: listing them and rotating to a new one, for the
//! admin API and `tollgate keys` alike. Key material never leaves here: a listing shows ids,
//! algorithms, states and times.

use std::time::Duration;

use tollgate_core::{unix_now, Algorithm, KeyState, Keys, Settings, StoredKey, TokenCodec};
use tollgate_store::{Store, StoreError};

use super::{Context, ServiceError};
use crate::keyring;

/// One signing key, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyInfo {
    /// The key id tokens carry in their header.
    pub(crate) kid: String,
    pub(crate) algorithm: Algorithm,
    pub(crate) state: KeyState,
    /// When it was made; `None` for the configured key before any rotation.
    pub(crate) created_at: Option<i64>,
    /// When a pre-published key signs (or began to): the `next` key's switch; `None` for a key
    /// that signed from when it was made.
    pub(crate) signs_from: Option<i64>,
    /// When a retired key stops verifying (for the active key, once a next key waits: when it
    /// will).
    pub(crate) verify_until: Option<i64>,
    /// Stored encrypted in the database (a rotated key) rather than configured (SIGNING_KEY).
    pub(crate) encrypted: bool,
}

/// The stored keys, the active one first; before any rotation, the configured key alone (when
/// the settings hold a usable one).
pub(crate) async fn list(settings: &Settings, store: &Store) -> Result<Vec<KeyInfo>, ServiceError> {
    let records = store.signing_keys().await?;
    let now = unix_now();
    let mut keys = Vec::new();
    for record in &records {
        let key = keyring::stored_key(record)?;
        keys.push(KeyInfo {
            state: key.state(now),
            encrypted: key.sealed_key.is_some(),
            created_at: Some(key.created_at),
            signs_from: key.signs_from,
            verify_until: key.verify_until,
            algorithm: key.algorithm,
            kid: key.kid,
        });
    }
    if keys.is_empty() {
        if let Ok(configured) = Keys::from_settings(settings) {
            keys.push(KeyInfo {
                kid: configured.kid().to_owned(),
                algorithm: configured.algorithm(),
                state: KeyState::Active,
                created_at: None,
                signs_from: None,
                verify_until: None,
                encrypted: false,
            });
        }
    }
    Ok(keys)
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rotated {
    /// The new key's id.
    pub(crate) kid: String,
    pub(crate) algorithm: Algorithm,
    /// The key that signed before, which only verifies once the new key signs.
    pub(crate) retired: String,
    /// When the new key starts signing: the rotation's time, or later for a pre-published key.
    pub(crate) signs_from: i64,
    /// Until when the retired key verifies.
    pub(crate) verify_until: i64,
}

/// Makes a new signing key (of `algorithm`, by default that of the key signing now), stored
/// encrypted with KEYS_ENCRYPTION_KEY. With a zero `publish_first` it signs at once; otherwise
/// it is published in the key set (and verifies) first, and signs only once every instance has
/// published it for `publish_first` (that long after the next KEYS_RELOAD_INTERVAL), so that a
/// key-set client caching the set has it before it sees a token it signed. The previous key
/// signs until then and verifies until every token it signed has expired. Other instances see
/// the new key within KEYS_RELOAD_INTERVAL and switch at the same time; `codec`, when given (a
/// running server), loads it at once.
pub(crate) async fn rotate(
    ctx: &Context<'_>,
    algorithm: Option<Algorithm>,
    publish_first: Duration,
    codec: Option<&TokenCodec>,
) -> Result<Rotated, ServiceError> {
    let (settings, store) = (ctx.settings, ctx.store);
    let Some(sealing) = ctx.encryption_keys.sealing() else {
        return Err(ServiceError::NotConfigured(
            "KEYS_ENCRYPTION_KEY is not set: rotated keys are stored encrypted with it. Set \
             TOLLGATE_KEYS_ENCRYPTION_KEY (for example to the output of `openssl rand -hex 32`), \
             the same on every instance, and keep it out of the database.",
        ));
    };
    let now = unix_now();
    // The keys as the servers would load them: this also proves that KEYS_ENCRYPTION_KEY is the
    // one the stored keys were sealed with, before a key sealed with another is added.
    let records = store.signing_keys().await?;
    let current = keyring::assemble(settings, ctx.encryption_keys, &records, now)?;
    let algorithm = algorithm.unwrap_or_else(|| current.signing_keys().algorithm());
    let new = StoredKey::generate(algorithm, sealing, now).map_err(keyring::KeysError::from)?;
    let signs_from = if publish_first.is_zero() {
        now
    } else {
        // One second more: `now` is rounded down, and the wait is a minimum.
        let wait = publish_first
            .saturating_add(settings.keys_reload_interval)
            .saturating_add(Duration::from_secs(1));
        now.saturating_add(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX))
    };
    let verify_until = keyring::verify_until(settings, signs_from);
    let configured = Keys::from_settings(settings).map_err(keyring::KeysError::from)?;
    let configured = StoredKey::configured(&configured, &settings.verifying_key, now, verify_until);
    let rotation = store
        .rotate_signing_key(
            &keyring::record(&new),
            &keyring::record(&configured),
            now,
            signs_from,
            verify_until,
        )
        .await
        .map_err(|err| match err {
            StoreError::KeyRotationRace => ServiceError::Conflict(
                "Another key rotation was committed at the same time; nothing was changed.",
            ),
            StoreError::KeyRotationPending { .. } => ServiceError::Conflict(
                "A pre-published key waits to sign; rotate again once it does (see the keys' \
                 list).",
            ),
            other => other.into(),
        })?;
    tracing::info!(kid = %new.kid, retired = %rotation.retired, signs_from, "signing key rotated");
    if let Some(codec) = codec {
        keyring::load(codec, settings, ctx.encryption_keys, store).await?;
    }
    Ok(Rotated {
        kid: new.kid,
        algorithm,
        retired: rotation.retired,
        signs_from,
        verify_until,
    })
}
