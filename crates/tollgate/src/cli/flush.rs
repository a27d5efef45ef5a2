//! `tollgate flushexpiredtokens`: delete expired outstanding and blacklisted tokens, and login
//! events older than LOGIN_EVENTS_RETENTION.

use anyhow::Context;
use tollgate_core::{unix_now, Settings};

use super::progress::Progress;

pub(crate) async fn run(settings: Settings) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let now = unix_now();
    let total = store
        .count_expired(now)
        .await
        .context("cannot count expired tokens")?;
    let mut progress = Progress::new(total, "expired tokens deleted");
    let report = store
        .flush_expired(now, |deleted| progress.set(deleted))
        .await
        .context("cannot flush expired tokens")?;
    progress.finish();
    let events = match settings.login_events_retention.as_secs() {
        0 => Ok(0),
        kept => {
            let before = now.saturating_sub(i64::try_from(kept).unwrap_or(i64::MAX));
            store.flush_login_records(before, now).await
        }
    };
    store.close().await;
    println!(
        "deleted {} expired outstanding and {} expired blacklisted tokens",
        report.outstanding, report.blacklisted
    );
    if report.sessions > 0 {
        println!("deleted {} expired sessions", report.sessions);
    }
    if report.revoked_access > 0 {
        println!(
            "deleted {} expired access-token revocations",
            report.revoked_access
        );
    }
    let events = events.context("cannot delete old login events")?;
    if events > 0 {
        println!("deleted {events} login events older than LOGIN_EVENTS_RETENTION");
    }
    Ok(())
}
