//! `tollgate outbox list|retry`: what waits in the outbox (mail), what was given up on, and
//! sending it again.

use super::time;
use clap::Subcommand;
use tollgate_core::{unix_now, Settings};
use tollgate_store::{OutboxFilter, OutboxMessage};

/// What to do with the outbox.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List messages, newest first: waiting ones by default.
    List {
        /// Only the messages given up on (dead letters).
        #[arg(long, conflicts_with = "all")]
        failed: bool,
        /// Every message kept, delivered ones included.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Send a message again at once (by the id `outbox list` shows), or every message given
    /// up on (--failed). A running server picks them up within a second.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "failed"])))]
    Retry {
        /// The message.
        id: Option<i64>,
        /// Every message given up on.
        #[arg(long)]
        failed: bool,
    },
}

pub(crate) async fn run(settings: Settings, command: Command) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let outcome = match command {
        Command::List { failed, all, limit } => {
            let filter = match (failed, all) {
                (true, _) => OutboxFilter::Failed,
                (_, true) => OutboxFilter::All,
                _ => OutboxFilter::Pending,
            };
            store
                .outbox_messages(filter, limit)
                .await
                .map(|messages| print(&messages))
                .map_err(anyhow::Error::from)
        }
        Command::Retry { id: Some(id), .. } => match store.retry_message(id, unix_now()).await {
            Ok(true) => {
                println!("Message {id} will be sent again.");
                Ok(())
            }
            Ok(false) => Err(anyhow::anyhow!(
                "no message {id} waits in the outbox (delivered, or never there)"
            )),
            Err(err) => Err(err.into()),
        },
        Command::Retry { id: None, .. } => store
            .retry_failed_messages(unix_now())
            .await
            .map(|count| println!("{count} messages will be sent again."))
            .map_err(anyhow::Error::from),
    };
    store.close().await;
    outcome
}

fn print(messages: &[OutboxMessage]) {
    if messages.is_empty() {
        println!("No messages.");
        return;
    }
    println!(
        "{:>8}  {:<7}  {:<20}  {:<20}  {:>8}  {:<9}  {:<30}  LAST ERROR",
        "ID", "CHANNEL", "TOPIC", "CREATED", "ATTEMPTS", "STATE", "TO"
    );
    for message in messages {
        let state = match (message.delivered_at, message.failed_at) {
            (Some(_), _) => "delivered",
            (None, Some(_)) => "failed",
            (None, None) => "pending",
        };
        println!(
            "{:>8}  {:<7}  {:<20}  {:<20}  {:>8}  {:<9}  {:<30}  {}",
            message.id,
            message.channel,
            message.topic,
            time(message.created_at),
            message.attempts,
            state,
            message.destination,
            message.last_error.as_deref().unwrap_or("-"),
        );
    }
}
