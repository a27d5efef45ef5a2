//! `tollgate migrate`: apply database migrations.

use tollgate_core::Settings;

pub(crate) async fn run(settings: Settings) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    store.close().await;
    println!(
        "database migrated: {}",
        super::redact_url(&settings.database_url)
    );
    Ok(())
}
