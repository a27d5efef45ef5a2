//! `tollgate token --user NAME`: mint tokens for a user from the command line.
//!
//! The tokens are issued as a login issues them ([`crate::service::tokens`]): with the
//! password fingerprint (CHECK_REVOKE_TOKEN), TOKEN_USER_CLAIMS, and a session of their own,
//! which `tollgate sessions` lists and revokes.

use anyhow::Context;
use serde_json::{json, Value};
use tollgate_core::Settings;
use tollgate_store::Store;

use crate::service::tokens::{self, Origin, Pair};
use crate::state::AppState;

/// What the session of a minted token records as its user agent: no client made it.
const ORIGIN: Origin<'static> = Origin {
    client_addr: "",
    user_agent: "tollgate token (command line)",
    amr: &[],
};

/// Options of `tollgate token`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The user's username.
    #[arg(long, value_name = "NAME")]
    user: String,
    /// Print a sliding token instead of a refresh/access pair.
    #[arg(long)]
    sliding: bool,
}

pub(crate) async fn run(mut settings: Settings, args: Args) -> anyhow::Result<()> {
    crate::config::ensure_signing_key(&mut settings)?;
    let store = super::open_store(&settings).await?;
    let minted = mint(settings, &store, &args).await;
    store.close().await;
    println!("{}", minted?);
    Ok(())
}

async fn mint(settings: Settings, store: &Store, args: &Args) -> anyhow::Result<Value> {
    let state = AppState::new(settings, store.clone()).context("invalid configuration")?;
    crate::keyring::load(&state.codec, &state.settings, &state.encryption_keys, store)
        .await
        .context("cannot load the signing keys")?;
    let user = super::find_user(store, &args.user).await?;
    if args.sliding {
        let sliding = tokens::issue_sliding(&state, &user, ORIGIN).await?;
        return Ok(json!({ "token": sliding.token.token }));
    }
    let Pair {
        refresh, access, ..
    } = tokens::issue_pair(&state, &user, ORIGIN).await?;
    Ok(json!({ "refresh": refresh.token, "access": access.token }))
}
