//! `tollgate flushexpiredtokens`: delete expired outstanding and blacklisted tokens.

use anyhow::Context;
use tollgate_core::{unix_now, Settings};

pub(crate) async fn run(settings: Settings) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let report = store
        .flush_expired(unix_now(), |deleted| {
            tracing::debug!(deleted, "flushing expired tokens")
        })
        .await
        .context("cannot flush expired tokens")?;
    store.close().await;
    println!(
        "deleted {} expired outstanding and {} expired blacklisted tokens",
        report.outstanding, report.blacklisted
    );
    Ok(())
}
