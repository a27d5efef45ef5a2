//! `tollgate flushexpiredtokens`: delete expired outstanding and blacklisted tokens, login
//! events older than LOGIN_EVENTS_RETENTION, expired reset links, and outbox messages
//! delivered more than a week ago.

use anyhow::Context;
use tollgate_core::{unix_now, Settings};
use tollgate_store::FlushPace;

use super::progress::Progress;

/// How long a delivered outbox message is kept (its body is gone already), for listings.
const DELIVERED_KEPT: i64 = 7 * 24 * 3600;

pub(crate) async fn run(settings: Settings) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let now = unix_now();
    let pace = FlushPace {
        batch: settings.flush_batch_size,
        pause: settings.flush_batch_pause,
    };
    let total = store
        .count_expired(now)
        .await
        .context("cannot count expired tokens")?;
    let mut progress = Progress::new(total, "expired tokens deleted");
    let report = store
        .flush_expired(now, pace, |deleted| progress.set(deleted))
        .await
        .context("cannot flush expired tokens")?;
    progress.finish();
    let events = match settings.login_events_retention.as_secs() {
        0 => Ok(0),
        kept => {
            let before = now.saturating_sub(i64::try_from(kept).unwrap_or(i64::MAX));
            store.flush_login_records(before, now, pace).await
        }
    };
    let links = store.flush_account_tokens(now).await;
    let second_steps = store.flush_mfa_challenges(now).await;
    let delivered = store
        .prune_delivered(now.saturating_sub(DELIVERED_KEPT))
        .await;
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
    let links = links.context("cannot delete expired reset links")?;
    if links > 0 {
        println!("deleted {links} expired reset links");
    }
    let second_steps = second_steps.context("cannot delete expired second-factor steps")?;
    if second_steps > 0 {
        println!("deleted {second_steps} expired second-factor steps");
    }
    let delivered = delivered.context("cannot delete delivered outbox messages")?;
    if delivered > 0 {
        println!("deleted {delivered} outbox messages delivered more than a week ago");
    }
    let events = events.context("cannot delete old login events")?;
    if events > 0 {
        println!("deleted {events} login events older than LOGIN_EVENTS_RETENTION");
    }
    Ok(())
}
