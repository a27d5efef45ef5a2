//! `tollgate mfa status|reset`: what second factors a user has, and removing them all when a
//! user has lost their authenticator and their recovery codes.

use clap::Subcommand;
use tollgate_core::Settings;

use super::time;
use crate::service::admin::users;
use crate::service::audit::Actor;
use crate::service::{mfa, Standalone};

/// What to do with a user's second factors.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show a user's second factors and how many recovery codes they have left.
    Status {
        /// The user, by username.
        #[arg(long, value_name = "NAME")]
        user: String,
    },
    /// Remove every second factor of a user, with their recovery codes, and log them out
    /// everywhere: they sign in with their password alone and may enrol again.
    Reset {
        /// The user, by username.
        #[arg(long, value_name = "NAME")]
        user: String,
    },
}

pub(crate) async fn run(settings: Settings, command: Command) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let store = match command {
        Command::Reset { .. } => super::with_denylist(store, &settings).await?,
        Command::Status { .. } => store,
    };
    let parts = Standalone::new(settings, store.clone())?;
    let outcome = match command {
        Command::Status { user } => status(&parts, &user).await,
        Command::Reset { user } => reset(&parts, &user).await,
    };
    store.close().await;
    outcome
}

async fn status(parts: &Standalone, username: &str) -> anyhow::Result<()> {
    let ctx = parts.context();
    let user = super::find_user(ctx.store, username).await?;
    let status = mfa::status(&ctx, &user).await?;
    if status.factors.is_empty() {
        println!("User '{}' has no second factor.", user.username);
        return Ok(());
    }
    println!("User '{}' has:", user.username);
    for factor in &status.factors {
        let used = factor.last_used_at.map_or_else(
            || "never used".to_owned(),
            |at| format!("last used {}", time(at)),
        );
        println!(
            "  {} (added {}, {used})",
            factor.kind,
            time(factor.created_at)
        );
    }
    println!("  {} recovery codes left", status.recovery_codes_left);
    Ok(())
}

async fn reset(parts: &Standalone, username: &str) -> anyhow::Result<()> {
    let ctx = parts.context();
    let user = super::find_user(ctx.store, username).await?;
    let removed = users::reset_mfa(&ctx, &Actor::command(), user.id).await?;
    println!(
        "Removed {removed} second factor(s) of user '{}'; their sessions are revoked.",
        user.username
    );
    Ok(())
}
