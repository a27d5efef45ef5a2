//! `tollgate token --user NAME`: mint tokens for a user from the command line.

use anyhow::{bail, Context};
use tollgate_core::{unix_now, Settings, TokenCodec, TokenType};
use tollgate_store::{TokenRecord, UserField};

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
    let codec = TokenCodec::new(&settings).context("invalid keys")?;
    let user_id_field = UserField::from_name(&settings.user_id_field).unwrap_or(UserField::Id);
    let store = super::open_store(&settings).await?;
    crate::keyring::load(&codec, &settings, &store)
        .await
        .context("cannot load the signing keys")?;
    let Some(user) = store.find_user(UserField::Username, &args.user).await? else {
        bail!("no user named {:?}", args.user);
    };
    let now = unix_now();
    let kind = if args.sliding {
        TokenType::Sliding
    } else {
        TokenType::Refresh
    };
    let issued = codec.sign(codec.claims_for_user(kind, &user.field(user_id_field), now))?;
    let record = TokenRecord {
        jti: &issued.jti,
        user_id: Some(user.id),
        created_at: Some(now),
        expires_at: issued.expires_at,
        session_id: None,
    };
    store.record_outstanding(&record).await?;
    let output = if args.sliding {
        serde_json::json!({ "token": issued.token })
    } else {
        let access = codec.sign(codec.access_claims_from(&issued.claims, now))?;
        serde_json::json!({ "refresh": issued.token, "access": access.token })
    };
    store.close().await;
    println!("{output}");
    Ok(())
}
