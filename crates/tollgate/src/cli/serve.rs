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

pub(crate) async fn run(mut settings: Settings, args: Args) -> anyhow::Result<()> {
    crate::config::ensure_signing_key(&mut settings)?;
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    let store = super::open_store(&settings).await?;
    let bind = args.bind.unwrap_or_else(|| settings.bind.clone());
    let state = AppState::new(settings, store.clone()).context("invalid configuration")?;
    let listener = TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(%address, "tollgate listening");
    crate::server::run(listener, state, shutdown_signal())
        .await
        .context("the server failed")?;
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
