//! `tollgate check`: validate the configuration and print the effective settings.

use anyhow::Context;
use tollgate_core::{Settings, TokenCodec};

pub(crate) fn run(settings: Settings) -> anyhow::Result<()> {
    // An empty HMAC key is filled in by `serve` for development; check the rest as it would.
    if !settings.signing_key.is_empty() || !settings.algorithm.is_hmac() {
        TokenCodec::new(&settings).context("invalid keys")?;
    }
    for (key, value) in settings.effective() {
        let value = if key == "DATABASE_URL" {
            super::redact_url(&value)
        } else {
            value
        };
        println!("{key} = {value}");
    }
    for warning in settings.warnings() {
        eprintln!("warning: {warning}");
    }
    eprintln!("configuration is valid");
    Ok(())
}
