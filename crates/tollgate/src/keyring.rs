//! The signing keys of a running server: read from the database at start-up, then again every
//! KEYS_RELOAD_INTERVAL and on SIGHUP, so that `tollgate keys rotate` reaches every instance
//! without a restart.

use std::sync::Arc;

use tollgate_core::{
    unix_now, Algorithm, KeyRing, KeyRingError, Keys, KeysEncryptionKey, Settings, SettingsError,
    StoredKey, TokenCodec,
};
use tollgate_store::{SigningKeyRecord, Store, StoreError};

use crate::metrics::Metrics;

/// The stored keys could not be read or used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeysError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored keys do not make a usable ring.
    #[error(transparent)]
    Ring(#[from] KeyRingError),
    /// A setting is unusable.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A row names an algorithm Tollgate does not know.
    #[error("the stored key {kid} has the unknown algorithm {algorithm:?}")]
    UnknownAlgorithm {
        /// The row's key id.
        kid: String,
        /// The algorithm as stored.
        algorithm: String,
    },
}

/// KEYS_ENCRYPTION_KEY and KEYS_PREVIOUS_ENCRYPTION_KEY, parsed once: where the application
/// state is built (every TOTP check opens a secret with them), or once by a command.
#[derive(Debug, Clone, Default)]
pub(crate) struct EncryptionKeys {
    /// KEYS_ENCRYPTION_KEY: what new material is sealed with.
    sealing: Option<KeysEncryptionKey>,
    /// What may open stored material: KEYS_ENCRYPTION_KEY, then KEYS_PREVIOUS_ENCRYPTION_KEY,
    /// those that are set.
    opening: Vec<KeysEncryptionKey>,
}

impl EncryptionKeys {
    /// Parses both settings; the error names the one at fault.
    pub(crate) fn from_settings(settings: &Settings) -> Result<EncryptionKeys, SettingsError> {
        let sealing = parse_key("KEYS_ENCRYPTION_KEY", settings.keys_encryption_key.expose())?;
        let previous = parse_key(
            "KEYS_PREVIOUS_ENCRYPTION_KEY",
            settings.keys_previous_encryption_key.expose(),
        )?;
        let opening = sealing.iter().cloned().chain(previous).collect();
        Ok(EncryptionKeys { sealing, opening })
    }

    /// KEYS_ENCRYPTION_KEY; `None` when unset.
    pub(crate) fn sealing(&self) -> Option<&KeysEncryptionKey> {
        self.sealing.as_ref()
    }

    /// The keys that may open stored material, KEYS_ENCRYPTION_KEY first.
    pub(crate) fn opening(&self) -> &[KeysEncryptionKey] {
        &self.opening
    }
}

fn parse_key(key: &'static str, text: &str) -> Result<Option<KeysEncryptionKey>, SettingsError> {
    if text.is_empty() {
        return Ok(None);
    }
    KeysEncryptionKey::parse(text)
        .map(Some)
        .map_err(|message| SettingsError::Invalid { key, message })
}

/// A row as the key ring reads it.
pub(crate) fn stored_key(record: &SigningKeyRecord) -> Result<StoredKey, KeysError> {
    let algorithm: Algorithm =
        record
            .algorithm
            .parse()
            .map_err(|()| KeysError::UnknownAlgorithm {
                kid: record.kid.clone(),
                algorithm: record.algorithm.clone(),
            })?;
    Ok(StoredKey {
        kid: record.kid.clone(),
        algorithm,
        public_key: record.public_key.clone(),
        sealed_key: record.sealed_key.clone(),
        created_at: record.created_at,
        retired_at: record.retired_at,
        verify_until: record.verify_until,
        signs_from: record.signs_from,
    })
}

/// A key as the store keeps it.
pub(crate) fn record(key: &StoredKey) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: key.kid.clone(),
        algorithm: key.algorithm.as_str().to_owned(),
        public_key: key.public_key.clone(),
        sealed_key: key.sealed_key.clone(),
        created_at: key.created_at,
        retired_at: key.retired_at,
        verify_until: key.verify_until,
        signs_from: key.signs_from,
    }
}

/// The ring for `records` at `now`, with the configured key from `settings`, the stored keys
/// opened with `encryption`.
pub(crate) fn assemble(
    settings: &Settings,
    encryption: &EncryptionKeys,
    records: &[SigningKeyRecord],
    now: i64,
) -> Result<KeyRing, KeysError> {
    let configured = Keys::from_settings(settings)?;
    let stored = records
        .iter()
        .map(stored_key)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KeyRing::assemble(
        configured,
        &stored,
        encryption.opening(),
        now,
    )?)
}

/// Reads the stored keys and makes `codec` sign and verify with them; returns the rows read.
pub(crate) async fn load(
    codec: &TokenCodec,
    settings: &Settings,
    encryption: &EncryptionKeys,
    store: &Store,
) -> Result<Vec<SigningKeyRecord>, KeysError> {
    let records = store.signing_keys().await?;
    codec.replace_keys(assemble(settings, encryption, &records, unix_now())?);
    Ok(records)
}

/// How long a retired key must keep verifying: every token it may have signed must have expired,
/// with LEEWAY, including those signed by instances that see the rotation up to one
/// KEYS_RELOAD_INTERVAL late.
pub(crate) fn verify_until(settings: &Settings, now: i64) -> i64 {
    let longest = [
        settings.access_token_lifetime,
        settings.refresh_token_lifetime,
        settings.sliding_token_lifetime,
    ]
    .into_iter()
    .max()
    .unwrap_or_default();
    let span = longest
        .saturating_add(settings.leeway)
        .saturating_add(settings.keys_reload_interval);
    now.saturating_add(i64::try_from(span.as_secs()).unwrap_or(i64::MAX))
}

/// What made a server read its keys again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// KEYS_RELOAD_INTERVAL passed.
    Interval,
    /// The process received SIGHUP: an operator asks for the keys now.
    Hangup,
    /// A pre-published key's `signs_from` came: every instance switches to it at that time.
    Switch,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Interval => "interval",
            Trigger::Hangup => "SIGHUP",
            Trigger::Switch => "switch",
        }
    }
}

/// Keeps `codec` in step with the stored keys until `shutdown` completes: reads them every
/// KEYS_RELOAD_INTERVAL (never if zero), whenever the process receives SIGHUP, and when a
/// pre-published key is due to sign. `loaded` are
/// the rows the keys in use were built from. A failed read keeps the keys in use (a retired key
/// still stops verifying at its `verify_until`) and is logged. Each read is counted in
/// `metrics` (`tollgate_signing_key_reloads_total`).
pub(crate) async fn watch(
    codec: Arc<TokenCodec>,
    settings: Arc<Settings>,
    encryption: Arc<EncryptionKeys>,
    store: Store,
    loaded: Vec<SigningKeyRecord>,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let interval = settings.keys_reload_interval;
    let mut ticks = (!interval.is_zero()).then(|| {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    let mut hangups = hangup_signals();
    let mut last = loaded;
    tokio::pin!(shutdown);
    loop {
        let trigger = tokio::select! {
            () = &mut shutdown => return,
            _ = async {
                match ticks.as_mut() {
                    Some(ticks) => ticks.tick().await,
                    None => std::future::pending().await,
                }
            } => Trigger::Interval,
            () = next_hangup(&mut hangups) => Trigger::Hangup,
            () = next_switch(&last) => Trigger::Switch,
        };
        let outcome = reload(&codec, &settings, &encryption, &store, &mut last, trigger).await;
        metrics.key_reload(trigger.as_str(), outcome);
    }
}

/// Resolves when the pre-published key among `records` is due to sign; never if there is none.
/// Times are whole seconds, so it may wake within a second before: the reload then finds the
/// key not due yet, and this waits again.
async fn next_switch(records: &[SigningKeyRecord]) {
    let now = unix_now();
    let due = records
        .iter()
        .filter(|r| r.retired_at.is_none())
        .filter_map(|r| r.signs_from)
        .find(|&from| from > now);
    match due {
        Some(from) => {
            let wait = u64::try_from(from - now).unwrap_or_default();
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        }
        None => std::future::pending().await,
    }
}

/// One reload. On the interval, the ring is rebuilt only when the stored rows changed or a key
/// in it has reached its `verify_until`; SIGHUP always rebuilds it. Returns what came of it:
/// "rotated" (another key signs now), "reloaded" (rebuilt, the same key signs), "unchanged" or
/// "failed".
async fn reload(
    codec: &TokenCodec,
    settings: &Settings,
    encryption: &EncryptionKeys,
    store: &Store,
    last: &mut Vec<SigningKeyRecord>,
    trigger: Trigger,
) -> &'static str {
    let cause = trigger.as_str();
    let records = match store.signing_keys().await {
        Ok(records) => records,
        Err(err) => {
            tracing::warn!(cause = %err, trigger = cause, "cannot read the signing keys; keeping those in use");
            return "failed";
        }
    };
    let now = unix_now();
    let current = codec.keys();
    let kids = current.kids();
    let ran_out = records.iter().any(|r| {
        r.verify_until.is_some_and(|until| until <= now) && kids.contains(&r.kid.as_str())
    });
    // A pre-published key due to sign that does not sign here yet.
    let due = records.iter().any(|r| {
        r.retired_at.is_none()
            && r.signs_from.is_some_and(|from| from <= now)
            && current.signing_keys().kid() != r.kid
    });
    if trigger == Trigger::Interval && *last == records && !ran_out && !due {
        return "unchanged";
    }
    match assemble(settings, encryption, &records, now) {
        Ok(ring) => {
            let before = current.signing_keys().kid().to_owned();
            let active = ring.signing_keys().kid().to_owned();
            let verifying = ring.kids().join(",");
            codec.replace_keys(ring);
            *last = records;
            tracing::debug!(active = %active, verifying = %verifying, trigger = cause, "signing keys loaded");
            if before == active {
                return "reloaded";
            }
            tracing::info!(kid = %active, previous = %before, trigger = cause, "signing key rotated");
            "rotated"
        }
        Err(err) => {
            tracing::error!(cause = %err, trigger = cause, "cannot use the stored signing keys; keeping those in use");
            "failed"
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangup_signals() -> Hangups {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(err) => {
            tracing::warn!(cause = %err, "cannot listen for SIGHUP; keys reload on the interval only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signals() -> Hangups {}

/// Takes SIGHUP from the operating system's default (ending the process) for the rest of the
/// process's life: signals that arrive before [`watch`] listens are dropped.
pub(crate) fn ignore_hangups_until_watched() {
    // tokio's handler, once installed, stays; a signal with no stream listening is dropped.
    drop(hangup_signals());
}

#[cfg(unix)]
async fn next_hangup(hangups: &mut Hangups) {
    let received = match hangups {
        Some(signal) => signal.recv().await.is_some(),
        None => false,
    };
    if !received {
        // No signal stream (or it ended): never complete, so that the loop keeps its interval.
        std::future::pending::<()>().await;
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) {
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retired_keys_outlive_every_token_they_signed() {
        let settings = Settings {
            access_token_lifetime: Duration::from_secs(300),
            refresh_token_lifetime: Duration::from_secs(86_400),
            sliding_token_lifetime: Duration::from_secs(600),
            leeway: Duration::from_secs(10),
            keys_reload_interval: Duration::from_secs(30),
            ..Settings::default()
        };
        assert_eq!(verify_until(&settings, 1_000), 1_000 + 86_400 + 10 + 30);
        let sliding = Settings {
            sliding_token_lifetime: Duration::from_secs(200_000),
            keys_reload_interval: Duration::ZERO,
            ..settings
        };
        assert_eq!(verify_until(&sliding, 0), 200_000 + 10);
    }

    #[test]
    fn encryption_keys_seal_with_the_current_key_and_open_with_both() {
        use tollgate_core::settings::Secret;
        let none = EncryptionKeys::from_settings(&Settings::default()).expect("unset is no key");
        assert!(none.sealing().is_none() && none.opening().is_empty());
        let previous_only = Settings {
            keys_previous_encryption_key: Secret("ab".repeat(32)),
            ..Settings::default()
        };
        let keys = EncryptionKeys::from_settings(&previous_only).expect("parses");
        assert!(keys.sealing().is_none(), "the previous key seals nothing");
        assert_eq!(keys.opening().len(), 1);
        let both = Settings {
            keys_encryption_key: Secret("cd".repeat(32)),
            ..previous_only
        };
        let keys = EncryptionKeys::from_settings(&both).expect("parses");
        let current = KeysEncryptionKey::parse(&"cd".repeat(32)).expect("a key");
        let sealed = current
            .seal("kid", Algorithm::HS256, "secret")
            .expect("seals");
        let sealing = keys.sealing().expect("the current key");
        assert!(sealing.open("kid", Algorithm::HS256, &sealed).is_ok());
        assert_eq!(keys.opening().len(), 2);
        assert!(keys.opening()[0]
            .open("kid", Algorithm::HS256, &sealed)
            .is_ok());
        let wrong = Settings {
            keys_encryption_key: Secret("not hex".into()),
            ..Settings::default()
        };
        let err = EncryptionKeys::from_settings(&wrong).expect_err("refused");
        assert!(err.to_string().contains("KEYS_ENCRYPTION_KEY"), "{err}");
    }
}
