//! `tollgate events` (an account's login history, password resets included) and `tollgate unlock` (lift a lockout).

use super::time;

use tollgate_core::Settings;
use tollgate_store::{Store, User};

use crate::service::admin::users;
use crate::service::audit::Actor;
use crate::service::Standalone;

/// Options of `events`.
#[derive(Debug, clap::Args)]
pub(crate) struct EventsArgs {
    /// The user whose logins to list, by username.
    #[arg(long, value_name = "NAME")]
    user: String,
    /// How many of the most recent attempts (and resets) to list.
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

/// Options of `unlock`.
#[derive(Debug, clap::Args)]
pub(crate) struct UnlockArgs {
    /// The username.
    username: String,
}

/// Lists a user's most recent login attempts and password resets, newest first, and their
/// last login.
pub(crate) async fn events(settings: Settings, args: EventsArgs) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let user = find(&store, &args.user).await?;
    let events = store.login_events(user.id, i64::from(args.limit)).await;
    store.close().await;
    let events = events?;
    println!(
        "User '{}' (id {}), last login: {}",
        user.username,
        user.id,
        user.last_login.map_or_else(|| "never".to_owned(), time)
    );
    if events.is_empty() {
        println!("No login attempts recorded.");
        return Ok(());
    }
    println!(
        "{:<20}  {:<22}  {:<39}  USER AGENT",
        "TIME", "OUTCOME", "CLIENT"
    );
    for event in events {
        let outcome = match (event.succeeded, event.reason.as_deref()) {
            (true, _) => "succeeded".to_owned(),
            _ if event.is_password_reset() => "password_reset".to_owned(),
            (false, reason) => format!("failed: {}", reason.unwrap_or("unknown")),
        };
        println!(
            "{:<20}  {outcome:<22}  {:<39}  {}",
            time(event.at),
            event.client_addr,
            event.user_agent.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// Lifts a login lockout of a user: the account's own and those of the identifiers that name
/// it, as the admin API does ([`users::unlock`]).
pub(crate) async fn unlock(settings: Settings, args: UnlockArgs) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let user = find(&store, &args.username).await?;
    let parts = Standalone::new(settings, store.clone())?;
    let lifted = users::unlock(&parts.context(), &Actor::command(), user.id, None).await;
    store.close().await;
    if lifted? {
        println!("User '{}' unlocked.", user.username);
    } else {
        println!(
            "User '{}' was not locked; failed-login counts cleared.",
            user.username
        );
    }
    Ok(())
}

async fn find(store: &Store, username: &str) -> anyhow::Result<User> {
    let found = super::find_user(store, username).await;
    if found.is_err() {
        store.close().await;
    }
    found
}
