//! `tollgate outbox list|retry`: what waits in the outbox (mail, webhooks), what was given up
//! on, and sending it again; `tollgate webhooks list|retry` is the same for webhooks alone.

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
        /// Only the messages of this channel: `email` or `webhook`.
        #[arg(long)]
        channel: Option<String>,
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
        /// Only the messages of this channel: `email` or `webhook`.
        #[arg(long)]
        channel: Option<String>,
    },
}

/// The channel a command acts on: the one its name fixes (`webhooks`), or `--channel`.
fn channel_of(
    fixed: Option<&'static str>,
    given: Option<String>,
) -> anyhow::Result<Option<String>> {
    match (fixed, given) {
        (Some(fixed), Some(given)) if given != fixed => {
            anyhow::bail!("this command acts on the {fixed} channel only, not {given:?}")
        }
        (Some(fixed), _) => Ok(Some(fixed.to_owned())),
        (None, given) => Ok(given),
    }
}

/// Runs `command` on the messages of channel `fixed` (`webhooks`), or of every channel
/// unless `--channel` names one.
pub(crate) async fn run(
    settings: Settings,
    command: Command,
    fixed: Option<&'static str>,
) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let outcome = match command {
        Command::List {
            failed,
            all,
            limit,
            channel,
        } => {
            let filter = match (failed, all) {
                (true, _) => OutboxFilter::Failed,
                (_, true) => OutboxFilter::All,
                _ => OutboxFilter::Pending,
            };
            match channel_of(fixed, channel) {
                Ok(channel) => store
                    .outbox_messages_on(channel.as_deref(), filter, limit)
                    .await
                    .map(|messages| print(&messages))
                    .map_err(anyhow::Error::from),
                Err(err) => Err(err),
            }
        }
        Command::Retry {
            id: Some(id),
            channel,
            ..
        } => match channel_of(fixed, channel) {
            Ok(channel) => match store
                .retry_message_on(channel.as_deref(), id, unix_now())
                .await
            {
                Ok(true) => {
                    println!("Message {id} will be sent again.");
                    Ok(())
                }
                Ok(false) => Err(anyhow::anyhow!(
                    "no message {id} waits in the outbox{} (delivered, or never there)",
                    channel
                        .map(|c| format!(" on the {c} channel"))
                        .unwrap_or_default()
                )),
                Err(err) => Err(err.into()),
            },
            Err(err) => Err(err),
        },
        Command::Retry {
            id: None, channel, ..
        } => match channel_of(fixed, channel) {
            Ok(channel) => store
                .retry_failed_messages_on(channel.as_deref(), unix_now())
                .await
                .map(|count| println!("{count} messages will be sent again."))
                .map_err(anyhow::Error::from),
            Err(err) => Err(err),
        },
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
