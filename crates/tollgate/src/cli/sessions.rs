//! `tollgate sessions list|revoke`: an administrator's view of a user's sessions (one per
//! login), and logging the user out of one session or of all of them.

use anyhow::bail;
use clap::Subcommand;
use tollgate_core::{unix_now, Settings};
use tollgate_store::Store;

use super::time;
use crate::service::admin::activity;
use crate::service::audit::Actor;
use crate::service::{ServiceError, Standalone};

/// Options of `sessions`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// List a user's live sessions, most recently used first: id, login time, last refresh,
    /// client address and user agent.
    List {
        /// The user, by username.
        #[arg(long, value_name = "NAME")]
        user: String,
    },
    /// Revoke one session of a user (--session ID) or all of them (--all): their refresh and
    /// sliding tokens are blacklisted, and with ACCESS_TOKEN_REVOCATION their access tokens
    /// stop working too.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["session", "all"])))]
    Revoke {
        /// The user, by username.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// The session to revoke, by the id that `sessions list` shows.
        #[arg(long, value_name = "ID")]
        session: Option<String>,
        /// Revoke every session of the user (log out everywhere).
        #[arg(long)]
        all: bool,
    },
}

pub(crate) async fn run(settings: Settings, args: Args) -> anyhow::Result<()> {
    let mut store = super::open_store(&settings).await?;
    if let SessionsCommand::Revoke { .. } = &args.command {
        store = super::with_denylist(store, &settings).await?;
    }
    let outcome = match args.command {
        SessionsCommand::List { user } => list(&store, &user).await,
        SessionsCommand::Revoke {
            user,
            session,
            all: _,
        } => {
            let parts = Standalone::new(settings, store.clone())?;
            revoke(&parts, &user, session.as_deref()).await
        }
    };
    store.close().await;
    outcome
}

async fn list(store: &Store, username: &str) -> anyhow::Result<()> {
    let user = super::find_user(store, username).await?;
    let sessions = store.sessions_of(user.id, unix_now()).await?;
    if sessions.is_empty() {
        println!("User '{}' has no live sessions.", user.username);
        return Ok(());
    }
    println!(
        "{:<32}  {:<20}  {:<20}  {:<39}  USER AGENT",
        "ID", "CREATED", "LAST USED", "CLIENT"
    );
    for session in sessions {
        let agent = match session.user_agent.as_str() {
            "" => "-",
            agent => agent,
        };
        println!(
            "{:<32}  {:<20}  {:<20}  {:<39}  {agent}",
            session.id,
            time(session.created_at),
            time(session.last_used_at),
            session.client_addr,
        );
    }
    Ok(())
}

/// Revokes one session (`Some(id)`) or all of them (`None`), as the admin API does
/// ([`activity::revoke_session`], [`activity::revoke_all_sessions`]).
async fn revoke(parts: &Standalone, username: &str, session: Option<&str>) -> anyhow::Result<()> {
    let ctx = parts.context();
    let user = super::find_user(ctx.store, username).await?;
    let actor = Actor::command();
    match session {
        Some(id) => match activity::revoke_session(&ctx, &actor, user.id, id).await {
            Ok(()) => println!("Session {id} of user '{}' revoked.", user.username),
            Err(ServiceError::SessionNotFound) => {
                bail!("user '{}' has no live session {id}", user.username)
            }
            Err(err) => return Err(err.into()),
        },
        None => {
            let ended = activity::revoke_all_sessions(&ctx, &actor, user.id).await?;
            println!("{ended} sessions of user '{}' revoked.", user.username);
        }
    }
    Ok(())
}
