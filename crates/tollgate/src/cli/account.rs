//! `tollgate changepassword`, `tollgate activate` and `tollgate deactivate`.

use anyhow::{bail, Context};
use tollgate_core::password::{PasswordHasher, PasswordPolicy};
use tollgate_core::{unix_now, Settings};
use tollgate_store::{Store, UserField};

use crate::service::accounts::{self, Accounts, ChangedBy};
use crate::state::PasswordPool;

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

/// Sets a user's password as a password change through the API does
/// ([`accounts::change_password`]), without the old password: checked against the password
/// policy (as Django's `changepassword` does), the user's refresh and sliding tokens
/// blacklisted, in the Redis denylist too when REDIS_URL is set, and with
/// ACCESS_TOKEN_REVOCATION their access tokens revoked.
pub(crate) async fn change_password(settings: Settings, args: PasswordArgs) -> anyhow::Result<()> {
    let store = super::with_denylist(super::open_store(&settings).await?, &settings).await?;
    let outcome = set_password(&settings, &store, &args).await;
    store.close().await;
    outcome
}

async fn set_password(
    settings: &Settings,
    store: &Store,
    args: &PasswordArgs,
) -> anyhow::Result<()> {
    let Some(user) = find_by_username(store, &args.username).await? else {
        bail!("user '{}' does not exist", args.username);
    };
    let password = if args.no_input {
        std::env::var("TOLLGATE_NEW_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .context("set TOLLGATE_NEW_PASSWORD to the new password")?
    } else {
        eprintln!("Changing password for user '{}'", user.username);
        super::users::prompt_password()?
    };
    let hasher = PasswordHasher::new(
        settings.argon2_memory_kib,
        settings.argon2_iterations,
        settings.argon2_parallelism,
    )?;
    let user_id_field = UserField::from_name(&settings.user_id_field)
        .context("USER_ID_FIELD must be one of id, username, email")?;
    let accounts = Accounts {
        settings,
        store,
        passwords: &PasswordPool::new(hasher),
        policy: &PasswordPolicy::from_settings(settings),
        user_id_field,
        user_cache: None,
    };
    let changed =
        accounts::change_password(&accounts, &user, password, ChangedBy::Administrator).await?;
    println!(
        "Password changed successfully for user '{}' ({} refresh tokens blacklisted).",
        user.username, changed.blacklisted
    );
    Ok(())
}

/// Activates or deactivates a user; deactivating (with CHECK_USER_IS_ACTIVE) ends their
/// sessions, so that reactivating them does not bring old logins back.
pub(crate) async fn set_active(
    settings: Settings,
    target: Target,
    active: bool,
) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let found = find_by_username(&store, &target.username).await?;
    let changed = match &found {
        Some(user) => store.set_active(user.id, active).await?,
        None => false,
    };
    let ended = match &found {
        // With CHECK_USER_IS_ACTIVE off, an inactive user's tokens keep working, as in simplejwt.
        Some(user) if changed && !active && settings.check_user_is_active => {
            store.end_sessions(user.id, unix_now()).await
        }
        _ => Ok(0),
    };
    store.close().await;
    let ended = ended.context("cannot end the user's sessions")?;
    if !changed {
        bail!("user '{}' does not exist", target.username);
    }
    if active {
        println!("User '{}' activated.", target.username);
    } else {
        println!(
            "User '{}' deactivated ({ended} sessions ended).",
            target.username
        );
    }
    Ok(())
}

/// The user named `username` in its normal form (as stored since registration normalises it),
/// else as typed, for accounts stored before that.
async fn find_by_username(
    store: &tollgate_store::Store,
    username: &str,
) -> Result<Option<tollgate_store::User>, tollgate_store::StoreError> {
    let normal = tollgate_core::identity::normalize_username(username);
    match store.find_user(UserField::Username, &normal).await? {
        Some(user) => Ok(Some(user)),
        None if normal != username => store.find_user(UserField::Username, username).await,
        None => Ok(None),
    }
}
