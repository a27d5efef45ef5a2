//! `tollgate keys rotate | list | prune`: the signing keys kept in the database.

use std::time::Duration;

use anyhow::{bail, Context};
use tollgate_core::{unix_now, Algorithm, Settings};

use super::time;
use crate::keyring::{self, EncryptionKeys};
use crate::service::admin;
use crate::service::audit::Actor;
use crate::service::{self, Standalone};

/// The `keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Make a new active signing key, stored encrypted with KEYS_ENCRYPTION_KEY. The previous
    /// key stops signing and keeps verifying until every token it signed has expired (the
    /// longest token lifetime, plus LEEWAY and KEYS_RELOAD_INTERVAL). Running servers switch
    /// within KEYS_RELOAD_INTERVAL, or at once on SIGHUP. With --publish-first, the new key is
    /// published in the key set first and signs only later. Prints the new key's id.
    #[command(
        after_help = "Run it with the configuration the servers use: the lifetimes decide \
                            how long the previous key keeps verifying.\n\n\
                            Services that cache the key set (PyJWT's PyJWKClient, behind \
                            simplejwt's JWK_URL) refuse a key id they have not fetched: \
                            `tollgate keys rotate --publish-first 5m` publishes the new key at \
                            once and signs with it only after every server has published it for \
                            5 minutes."
    )]
    Rotate(RotateArgs),
    /// List the signing keys: id, algorithm, state (next, active, retired, expired), when each
    /// was made, when a pre-published (next) key signs, and until when a retired key verifies.
    /// Never prints key material.
    List,
    /// End a retired key's verification now, before its verify-until time (a key suspected
    /// leaked): servers refuse its tokens from their next reload (KEYS_RELOAD_INTERVAL, or at
    /// once on SIGHUP).
    Expire(ExpireArgs),
    /// Delete retired keys past their verify-until time; prints the ids deleted.
    Prune,
    /// Encrypt the stored keys again with KEYS_ENCRYPTION_KEY, opening them with
    /// KEYS_PREVIOUS_ENCRYPTION_KEY: the step that retires an old encryption key. Prints the ids
    /// of the keys re-encrypted.
    #[command(
        after_help = "Replacing KEYS_ENCRYPTION_KEY: give every instance the new key as \
                            KEYS_ENCRYPTION_KEY and the old one as KEYS_PREVIOUS_ENCRYPTION_KEY, \
                            run `tollgate keys reseal`, then remove KEYS_PREVIOUS_ENCRYPTION_KEY."
    )]
    Reseal,
}

/// Options of `tollgate keys expire`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExpireArgs {
    /// The retired key's id, as `tollgate keys list` shows it. The active key cannot be
    /// expired: rotate first.
    // A thumbprint is base64url, so a kid may begin with '-'; it is still the kid.
    #[arg(allow_hyphen_values = true)]
    pub(super) kid: String,
}

/// Options of `tollgate keys rotate`.
#[derive(Debug, clap::Args)]
pub(crate) struct RotateArgs {
    /// The new key's algorithm: HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA.
    /// Default: the algorithm of the key signing now.
    #[arg(long, value_parser = super::keygen::parse_algorithm)]
    alg: Option<Algorithm>,
    /// Publish the new key in the key set (/.well-known/jwks.json) for this long before it
    /// signs, e.g. `5m`, counted from when every server has read it (KEYS_RELOAD_INTERVAL
    /// later). Meanwhile the current key keeps signing, and no other rotation is accepted.
    /// Longer than the key-set cache of the services that verify the tokens.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    publish_first: Option<Duration>,
}

pub(crate) async fn run(settings: Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Rotate(args) => rotate(settings, args).await,
        Command::List => list(settings).await,
        Command::Expire(args) => expire(settings, args).await,
        Command::Prune => prune(settings).await,
        Command::Reseal => reseal(settings).await,
    }
}

async fn rotate(mut settings: Settings, args: RotateArgs) -> anyhow::Result<()> {
    crate::config::ensure_signing_key(&mut settings)?;
    // Refused before the database is opened, as it needs none.
    if EncryptionKeys::from_settings(&settings)?
        .sealing()
        .is_none()
    {
        bail!(
            "KEYS_ENCRYPTION_KEY is not set: rotated keys are stored encrypted with it. Set \
             TOLLGATE_KEYS_ENCRYPTION_KEY (for example to the output of `openssl rand -hex 32`), \
             the same on every instance, and keep it out of the database"
        );
    }
    let store = super::open_store(&settings).await?;
    let reload_interval = settings.keys_reload_interval;
    let parts = Standalone::new(settings, store.clone())?;
    let publish_first = args.publish_first.unwrap_or_default();
    let rotated = admin::rotate_keys(
        &parts.context(),
        &Actor::command(),
        args.alg,
        publish_first,
        None,
    )
    .await;
    store.close().await;
    let rotated = rotated.context("cannot rotate the signing key")?;
    println!("{}", rotated.kid);
    let reload_interval = tollgate_core::settings::format_duration(reload_interval);
    if publish_first.is_zero() {
        eprintln!(
            "new active key {} ({}); {} verifies until {}",
            rotated.kid,
            rotated.algorithm.as_str(),
            rotated.retired,
            time(rotated.verify_until)
        );
        eprintln!(
            "running servers switch within KEYS_RELOAD_INTERVAL ({reload_interval}), or at once \
             on SIGHUP"
        );
    } else {
        eprintln!(
            "new key {} ({}) is published now and signs from {}; {} signs until then and \
             verifies until {}",
            rotated.kid,
            rotated.algorithm.as_str(),
            time(rotated.signs_from),
            rotated.retired,
            time(rotated.verify_until)
        );
        eprintln!(
            "running servers publish it within KEYS_RELOAD_INTERVAL ({reload_interval}), or at \
             once on SIGHUP, and all switch at that time"
        );
    }
    Ok(())
}

async fn list(mut settings: Settings) -> anyhow::Result<()> {
    // Before any rotation the configured key is the only one; a development key is made here
    // as `serve` would make it.
    let _ = crate::config::ensure_signing_key(&mut settings);
    let store = super::open_store(&settings).await?;
    let keys = service::keys::list(&settings, &store).await;
    store.close().await;
    let rows: Vec<[String; 7]> = keys?
        .into_iter()
        .map(|key| {
            [
                key.kid,
                key.algorithm.as_str().to_owned(),
                key.state.as_str().to_owned(),
                key.created_at.map_or_else(|| "-".to_owned(), time),
                key.signs_from.map_or_else(|| "-".to_owned(), time),
                key.verify_until.map_or_else(|| "-".to_owned(), time),
                if key.encrypted {
                    "encrypted"
                } else {
                    "SIGNING_KEY"
                }
                .to_owned(),
            ]
        })
        .collect();
    let header = [
        "KID",
        "ALG",
        "STATE",
        "CREATED",
        "SIGNS FROM",
        "VERIFY UNTIL",
        "SECRET",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: [&str; 7]| {
        let mut out = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        out
    };
    println!("{}", line(header));
    for row in &rows {
        println!("{}", line(row.each_ref().map(String::as_str)));
    }
    Ok(())
}

async fn expire(settings: Settings, args: ExpireArgs) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let ended = store.expire_signing_key(&args.kid, unix_now()).await?;
    store.close().await;
    if !ended {
        bail!(
            "no retired key {:?} that still verifies; `tollgate keys list` shows the keys (the \
             active key cannot be expired: rotate first)",
            args.kid
        );
    }
    eprintln!(
        "{} no longer verifies; running servers drop it within KEYS_RELOAD_INTERVAL, or at once \
         on SIGHUP",
        args.kid
    );
    Ok(())
}

async fn prune(settings: Settings) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let pruned = store.prune_signing_keys(unix_now()).await?;
    store.close().await;
    for kid in &pruned {
        println!("{kid}");
    }
    eprintln!(
        "deleted {} key(s) past their verify-until time",
        pruned.len()
    );
    Ok(())
}

async fn reseal(settings: Settings) -> anyhow::Result<()> {
    let encryption = EncryptionKeys::from_settings(&settings)?;
    let Some(current) = encryption.sealing() else {
        bail!("KEYS_ENCRYPTION_KEY is not set: it is the key the stored keys are encrypted with");
    };
    let store = super::open_store(&settings).await?;
    let mut resealed = Vec::new();
    for record in store.signing_keys().await? {
        let key = keyring::stored_key(&record)?;
        let Some(new) = key.reseal(encryption.opening(), current)? else {
            continue;
        };
        let old = record.sealed_key.as_deref().unwrap_or_default();
        if !store.reseal_signing_key(&key.kid, old, &new).await? {
            bail!(
                "the stored key {} changed while it was re-encrypted; run it again",
                key.kid
            );
        }
        resealed.push(key.kid);
    }
    store.close().await;
    for kid in &resealed {
        println!("{kid}");
    }
    eprintln!(
        "re-encrypted {} key(s) with KEYS_ENCRYPTION_KEY; KEYS_PREVIOUS_ENCRYPTION_KEY is no \
         longer needed",
        resealed.len()
    );
    Ok(())
}
