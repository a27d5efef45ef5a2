//! `tollgate users list` and `tollgate deleteuser`: the admin API's account listing and
//! deletion at the command line, through the same service functions (the deletion recorded in
//! the audit log).

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::bail;
use tollgate_core::Settings;
use tollgate_store::UserFilter;

use crate::service::admin::page::{PageRequest, MAX_PAGE_SIZE};
use crate::service::admin::users;
use crate::service::audit::Actor;
use crate::service::Standalone;

/// The `users` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UsersCommand {
    /// List the accounts, by id: id, username, email, flags, last login.
    List(ListArgs),
}

/// Options of `users list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Only accounts with this text in their username, email address or names (any case).
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
}

/// Options of `deleteuser`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeleteArgs {
    /// The username.
    username: String,
    /// Delete without asking. Without a terminal to ask on, it is required.
    #[arg(long, short = 'y', alias = "no-input")]
    yes: bool,
}

pub(crate) async fn users(settings: Settings, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::List(args) => list(settings, args).await,
    }
}

async fn list(settings: Settings, args: ListArgs) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let parts = Standalone::new(settings, store.clone())?;
    let filter = UserFilter {
        search: args.search.unwrap_or_default(),
        is_active: None,
    };
    let mut rows = Vec::new();
    let mut number = 1;
    let listed = loop {
        let request = PageRequest::of(number, MAX_PAGE_SIZE);
        match users::list(&parts.context(), &filter, request).await {
            Ok(page) => {
                let next = page.next();
                rows.extend(page.results.into_iter().map(|user| {
                    let flag = |on: bool| if on { "yes" } else { "no" }.to_owned();
                    [
                        user.id.to_string(),
                        user.username,
                        user.email,
                        flag(user.is_active),
                        flag(user.is_staff),
                        flag(user.is_superuser),
                        user.last_login.map_or_else(|| "never".to_owned(), time),
                    ]
                }));
                match next {
                    Some(next) => number = next,
                    None => break Ok(()),
                }
            }
            Err(err) => break Err(err),
        }
    };
    store.close().await;
    listed?;
    if rows.is_empty() {
        println!("No users found.");
        return Ok(());
    }
    print_table(
        [
            "ID",
            "USERNAME",
            "EMAIL",
            "ACTIVE",
            "STAFF",
            "SUPERUSER",
            "LAST LOGIN",
        ],
        &rows,
    );
    Ok(())
}

/// Prints rows under a header, each column as wide as its widest cell.
fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut out = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        out
    };
    println!("{}", line(header));
    for row in rows {
        println!("{}", line(row.each_ref().map(String::as_str)));
    }
}

/// Deletes an account as the admin API does ([`users::delete`]), after asking on the terminal
/// unless `--yes`.
pub(crate) async fn delete(settings: Settings, args: DeleteArgs) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let parts = Standalone::new(settings, store.clone())?;
    let deleted = async {
        let ctx = parts.context();
        let user = super::find_user(ctx.store, &args.username).await?;
        if !args.yes && !confirmed(&user.username, user.id)? {
            bail!("not deleted");
        }
        users::delete(&ctx, &Actor::command(), user.id).await?;
        Ok(user)
    }
    .await;
    store.close().await;
    let user = deleted?;
    println!("User '{}' (id {}) deleted.", user.username, user.id);
    Ok(())
}

/// Asks on the terminal whether to delete; without one, there is no one to ask.
fn confirmed(username: &str, id: i64) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("deleting needs a confirmation: run it on a terminal, or pass --yes");
    }
    let mut stderr = std::io::stderr();
    write!(
        stderr,
        "Delete user '{username}' (id {id}), their sessions and login history? Type 'yes' to \
         confirm: "
    )?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// Epoch seconds as an RFC 3339 UTC time.
fn time(seconds: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}
