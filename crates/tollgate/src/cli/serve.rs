//! `tollgate serve`: run the HTTP server.

use anyhow::Context;
use tokio::net::TcpListener;
use tollgate_core::Settings;

use crate::state::AppState;

/// Options of `tollgate serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on, HOST:PORT (port 0 picks a free port). Default: the BIND setting,
    /// 127.0.0.1:8000.
    #[arg(long, value_name = "HOST:PORT")]
    bind: Option<String>,
}

pub(crate) async fn run(settings: Settings, args: Args) -> anyhow::Result<()> {
    // SIGHUP reloads the keys once the server runs; until then (waiting for the database,
    // migrating) its default action would end the process.
    crate::keyring::ignore_hangups_until_watched();
    let checked = crate::startup::check(settings, args.bind, crate::config::KeyFile::Create)?;
    for warning in checked.warnings() {
        tracing::warn!("{warning}");
    }
    let settings = checked.prepared.settings();
    crate::connections::raise_file_limit(settings);
    let mut store = super::open_store(settings).await?;
    if let Some(url) = &settings.redis_url {
        store = store
            .with_redis(url, &settings.redis_key_prefix)
            .await
            .context("invalid REDIS_URL")?;
    }
    let bind = checked.bind;
    let grace = settings.shutdown_timeout;
    let state = AppState::from_prepared(checked.prepared, store.clone());
    state
        .start_sync()
        .await
        .context("cannot load the access-token revocations")?;
    let loaded = crate::keyring::load(
        &state.codec,
        &state.settings,
        &state.encryption_keys,
        &store,
    )
    .await
    .context("cannot load the signing keys")?;
    tracing::info!(kid = %state.codec.keys().signing_keys().kid(), "signing key loaded");
    let listener = TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(%address, "tollgate listening");
    // The server stops accepting at the signal and waits for requests in flight; past
    // SHUTDOWN_TIMEOUT it is not waited for any longer.
    let (signalled, mut signal_seen) = tokio::sync::watch::channel(false);
    let mut keys_stop = signal_seen.clone();
    let keys_watcher = tokio::spawn(crate::keyring::watch(
        std::sync::Arc::clone(&state.codec),
        std::sync::Arc::clone(&state.settings),
        std::sync::Arc::clone(&state.encryption_keys),
        store.clone(),
        loaded,
        state.metrics.clone(),
        async move {
            let _ = keys_stop.wait_for(|seen| *seen).await;
        },
    ));
    let shutdown = async move {
        shutdown_signal().await;
        let _ = signalled.send(true);
    };
    let give_up = async move {
        if signal_seen.wait_for(|seen| *seen).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = crate::server::run(listener, state, shutdown) => {
            served.context("the server failed")?;
        }
        () = give_up => {
            tracing::warn!(timeout = ?grace, "requests still in flight at SHUTDOWN_TIMEOUT; exiting");
        }
    }
    keys_watcher.abort();
    store.close().await;
    tracing::info!("tollgate stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
