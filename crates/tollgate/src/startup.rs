//! What `serve` checks before it opens the database and listens, in one function, so that
//! `tollgate check` refuses exactly what `serve` refuses, with the same message.
//!
//! The settings themselves are checked when they are loaded ([`Settings::validate`]: every
//! value, BIND and TRUSTED_PROXIES included). What is left needs more than the settings: the
//! development signing key file, REDIS_URL as the Redis client reads it, and the routes and the
//! objects the server builds from the settings (keys, password hasher, headers, the JWK_URL client). None
//! of it connects anywhere: reaching the database and Redis, migrating, and the keys stored in
//! the database are `serve`'s to find out.

use anyhow::{bail, Context};
use tollgate_core::settings::is_listen_address;
use tollgate_core::Settings;

use crate::config::KeyFile;
use crate::state::Prepared;

/// Settings that passed every check `serve` makes before it starts.
pub(crate) struct Checked {
    /// The state's parts, with SIGNING_KEY filled in when it was generated.
    pub(crate) prepared: Prepared,
    /// The address to listen on: `--bind`, else BIND.
    pub(crate) bind: String,
}

impl Checked {
    /// Settings that are valid but probably not what was meant.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.prepared.settings().warnings()
    }
}

/// Runs every check `serve` makes before it starts, for `serve` (`key_file` =
/// [`KeyFile::Create`], `bind` = its `--bind`) and for `check` ([`KeyFile::ReadOnly`]: a missing
/// development key file is not written).
pub(crate) fn check(
    mut settings: Settings,
    bind: Option<String>,
    key_file: KeyFile,
) -> anyhow::Result<Checked> {
    crate::config::resolve_signing_key(&mut settings, key_file)?;
    let bind = bind.unwrap_or_else(|| settings.bind.clone());
    if !is_listen_address(&bind) {
        bail!("cannot listen on {bind}: not HOST:PORT, e.g. 127.0.0.1:8000");
    }
    if let Some((method, path)) = crate::api::clashing_route(&settings) {
        bail!(
            "invalid configuration: two endpoints answer {method} {path}; give the endpoint \
             path settings (TOKEN_*_PATH, INDEX_PATH, USER*_PATH, SESSIONS_PATH) distinct values \
             that are not Tollgate's own paths"
        );
    }
    if let Some(url) = &settings.redis_url {
        tollgate_store::check_redis_url(url).context("invalid REDIS_URL")?;
    }
    let prepared = Prepared::new(settings).context("invalid configuration")?;
    Ok(Checked { prepared, bind })
}
