//! `tollgate apikey create|list|revoke`: the API keys with which trusted backends have tokens
//! issued to users they name (`POST /api/token/issue/`).

use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Subcommand;
use tollgate_core::Settings;
use tollgate_store::ApiKey;

use crate::service::{api_keys, ServiceError, Standalone};

/// What to do with the API keys.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Make a key and print it: it is shown this once, and only its hash is stored.
    Create {
        /// Who holds the key (a backend's name); unique among live keys, recorded with every
        /// session the key's tokens start.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// What the key may do, once per scope: `tokens:issue` (POST /api/token/issue/).
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
    },
    /// List every key, live and revoked: id, name, scopes, creation, last use.
    List,
    /// Revoke a live key, by name or by the id `apikey list` shows; it is refused at once.
    Revoke {
        /// The key's name or id.
        #[arg(value_name = "NAME|ID")]
        key: String,
    },
}

pub(crate) async fn run(settings: Settings, command: Command) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let parts = Standalone::new(settings, store.clone()).context("invalid configuration")?;
    let ctx = parts.context();
    let outcome = match command {
        Command::Create { name, scopes } => match api_keys::create(&ctx, &name, &scopes).await {
            Ok((stored, key)) => {
                eprintln!(
                    "API key {} ({}) created with scopes {}. Keep it now: it is not shown again.",
                    stored.id,
                    stored.name,
                    stored.scopes.join(" ")
                );
                println!("{key}");
                Ok(())
            }
            Err(err) => Err(err.into()),
        },
        Command::List => api_keys::list(&ctx)
            .await
            .map(|keys| print(&keys))
            .map_err(anyhow::Error::from),
        Command::Revoke { key } => match api_keys::revoke(&ctx, &key).await {
            Ok(revoked) => {
                println!("API key {} ({}) revoked.", revoked.id, revoked.name);
                Ok(())
            }
            Err(ServiceError::ApiKeyRefused(_)) => Err(anyhow::anyhow!(
                "no live API key is named or numbered '{key}'"
            )),
            Err(err) => Err(err.into()),
        },
    };
    store.close().await;
    outcome
}

fn print(keys: &[ApiKey]) {
    if keys.is_empty() {
        println!("No API keys.");
        return;
    }
    println!(
        "{:>6}  {:<24}  {:<20}  {:<20}  {:<20}  STATE",
        "ID", "NAME", "SCOPES", "CREATED", "LAST USED"
    );
    for key in keys {
        let state = match key.revoked_at {
            Some(at) => format!("revoked {}", time(at)),
            None => "live".to_owned(),
        };
        println!(
            "{:>6}  {:<24}  {:<20}  {:<20}  {:<20}  {}",
            key.id,
            key.name,
            key.scopes.join(" "),
            time(key.created_at),
            key.last_used_at.map_or_else(|| "never".to_owned(), time),
            state
        );
    }
}

/// Epoch seconds as an RFC 3339 UTC time.
fn time(seconds: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}
