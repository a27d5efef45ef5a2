//! `tollgate changepassword`, `tollgate activate` and `tollgate deactivate`, recorded in the
//! audit log as the admin API's actions are.

use anyhow::Context;
use tollgate_core::Settings;

use crate::service::admin::users;
use crate::service::audit::Actor;
use crate::service::Standalone;

/// The user a command acts on.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// The username.
    username: String,
}

/// Options of `changepassword`.
#[derive(Debug, clap::Args)]
pub(crate) struct PasswordArgs {
    /// The username.
    username: String,
    /// Ask nothing: the new password comes from TOLLGATE_NEW_PASSWORD.
    #[arg(long)]
    no_input: bool,
}

/// Sets a user's password as the admin API does ([`users::set_password`]), without the old
/// password: checked against the password policy (as Django's `changepassword` does), the
/// user's refresh and sliding tokens blacklisted, in the Redis denylist too when REDIS_URL is
/// set, and with ACCESS_TOKEN_REVOCATION their access tokens revoked.
pub(crate) async fn change_password(settings: Settings, args: PasswordArgs) -> anyhow::Result<()> {
    let store = super::with_denylist(super::open_store(&settings).await?, &settings).await?;
    let outcome = set_password(Standalone::new(settings, store.clone())?, &args).await;
    store.close().await;
    outcome
}

async fn set_password(parts: Standalone, args: &PasswordArgs) -> anyhow::Result<()> {
    let ctx = parts.context();
    let user = super::find_user(ctx.store, &args.username).await?;
    let password = if args.no_input {
        std::env::var("TOLLGATE_NEW_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .context("set TOLLGATE_NEW_PASSWORD to the new password")?
    } else {
        eprintln!("Changing password for user '{}'", user.username);
        super::users::prompt_password()?
    };
    let changed = users::set_password(&ctx, &Actor::command(), user.id, password).await?;
    println!(
        "Password changed successfully for user '{}' ({} refresh tokens blacklisted).",
        user.username, changed.blacklisted
    );
    Ok(())
}

/// Activates or deactivates a user, as the admin API does ([`users::set_active`]): deactivating (with
/// CHECK_USER_IS_ACTIVE) ends their sessions, so that reactivating them does not bring old
/// logins back.
pub(crate) async fn set_active(
    settings: Settings,
    target: Target,
    active: bool,
) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let outcome = activate(Standalone::new(settings, store.clone())?, &target, active).await;
    store.close().await;
    outcome
}

async fn activate(parts: Standalone, target: &Target, active: bool) -> anyhow::Result<()> {
    let ctx = parts.context();
    let user = super::find_user(ctx.store, &target.username).await?;
    let ended = users::set_active(&ctx, &Actor::command(), user.id, active).await?;
    if active {
        println!("User '{}' activated.", user.username);
    } else {
        println!(
            "User '{}' deactivated ({ended} sessions ended).",
            user.username
        );
    }
    Ok(())
}
