//! `tollgate createsuperuser` and `tollgate createuser`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use tollgate_core::password::PasswordHasher;
use tollgate_core::{unix_now, Settings};
use tollgate_store::{NewUser, StoreError, UserField};

/// Options of `createsuperuser` and `createuser`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The username (asked for if missing and input is allowed).
    #[arg(long)]
    username: Option<String>,
    /// The email address.
    #[arg(long)]
    email: Option<String>,
    /// Ask nothing: the username comes from --username and the password from
    /// TOLLGATE_SUPERUSER_PASSWORD (createsuperuser) or TOLLGATE_USER_PASSWORD (createuser).
    #[arg(long)]
    no_input: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Superuser,
    User,
}

impl Kind {
    fn password_env(self) -> &'static str {
        match self {
            Kind::Superuser => "TOLLGATE_SUPERUSER_PASSWORD",
            Kind::User => "TOLLGATE_USER_PASSWORD",
        }
    }
}

pub(crate) async fn run(settings: Settings, args: Args, kind: Kind) -> anyhow::Result<()> {
    let (username, email, password) = if args.no_input {
        let Some(username) = args.username.filter(|u| !u.trim().is_empty()) else {
            bail!("--username is required with --no-input");
        };
        let password = std::env::var(kind.password_env())
            .ok()
            .filter(|p| !p.is_empty())
            .with_context(|| format!("set {} to the new user's password", kind.password_env()))?;
        (username, args.email.unwrap_or_default(), password)
    } else {
        let username = match args.username {
            Some(username) => username,
            None => prompt("Username: ")?,
        };
        let email = match args.email {
            Some(email) => email,
            None => prompt("Email address: ")?,
        };
        (username, email, prompt_password()?)
    };
    let username = username.trim().to_owned();
    if username.is_empty() {
        bail!("the username may not be blank");
    }
    let hasher = PasswordHasher::new(
        settings.argon2_memory_kib,
        settings.argon2_iterations,
        settings.argon2_parallelism,
    )?;
    let password_hash = tokio::task::spawn_blocking(move || hasher.hash(&password)).await?;
    let store = super::open_store(&settings).await?;
    // Django checks the username first; so does Tollgate, whatever the database checks first.
    if store
        .find_user(UserField::Username, &username)
        .await?
        .is_some()
    {
        store.close().await;
        bail!("a user with this username already exists");
    }
    let new = NewUser {
        username: username.clone(),
        email: email.trim().to_owned(),
        password_hash,
        is_active: true,
        is_staff: kind == Kind::Superuser,
        is_superuser: kind == Kind::Superuser,
        ..NewUser::default()
    };
    let created = store.create_user(&new, unix_now()).await;
    store.close().await;
    match created {
        Ok(user) => {
            let what = if kind == Kind::Superuser {
                "Superuser"
            } else {
                "User"
            };
            println!(
                "{what} created successfully: {} (id {})",
                user.username, user.id
            );
            Ok(())
        }
        Err(StoreError::Duplicate { field }) => bail!("a user with this {field} already exists"),
        Err(err) => Err(err).context("cannot create the user"),
    }
}

fn prompt(question: &str) -> anyhow::Result<String> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{question}")?;
    stderr.flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        bail!("no input: use --no-input with --username and the password variable for scripts");
    }
    Ok(line.trim().to_owned())
}

pub(crate) fn prompt_password() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        // Piped input: read the password and its confirmation as plain lines.
        let password = prompt("Password: ")?;
        let again = prompt("Password (again): ")?;
        return confirm(password, again);
    }
    let password = rpassword::prompt_password("Password: ")?;
    let again = rpassword::prompt_password("Password (again): ")?;
    confirm(password, again)
}

fn confirm(password: String, again: String) -> anyhow::Result<String> {
    if password != again {
        bail!("the two passwords did not match");
    }
    if password.trim().is_empty() {
        bail!("the password may not be blank");
    }
    Ok(password)
}
