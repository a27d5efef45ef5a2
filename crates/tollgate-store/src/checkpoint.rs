//! WAL checkpoints for SQLite, mostly off the writer's path.
//!
//! By default SQLite checkpoints on the connection that commits, once the WAL holds 1000 pages:
//! that commit then copies the WAL into the database file and waits for two fsyncs, and every
//! write queued behind it (refresh rotations, logins) waits too. Under a refresh load this was
//! half of the writer's time and every slow answer. So a task on a connection of its own
//! checkpoints ten times a second in SQLite's passive mode, which never blocks the writer or the
//! readers, and the writer checkpoints only past a much larger WAL: by then the task has
//! copied most of it, and the writer's own checkpoint, which nothing writes beside, completes,
//! so that the WAL starts over from its beginning instead of growing while writes never
//! pause. When the server stops, closing the last connection checkpoints what is left.

use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::sync::mpsc;

/// How often the WAL is copied into the database file.
const EVERY: Duration = Duration::from_millis(100);
/// WAL pages (4 KiB) past which the writer checkpoints itself (SQLite's default: 1000).
pub(crate) const WRITER_AUTOCHECKPOINT: &str = "16384";
/// The size, in bytes, that the WAL file is cut back to once it starts over (64 MiB).
pub(crate) const WAL_SIZE_LIMIT: &str = "67108864";

/// Keeps the checkpoint task running; the task ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Checkpointer(#[allow(dead_code)] mpsc::Sender<()>);

impl Checkpointer {
    /// Starts checkpointing the database that `options` open.
    pub(crate) fn start(options: SqliteConnectOptions) -> Checkpointer {
        let (alive, gone) = mpsc::channel(1);
        tokio::spawn(run(options, gone));
        Checkpointer(alive)
    }
}

async fn run(options: SqliteConnectOptions, mut gone: mpsc::Receiver<()>) {
    let mut connection = None;
    loop {
        tokio::select! {
            _ = gone.recv() => break,
            () = tokio::time::sleep(EVERY) => {}
        }
        if connection.is_none() {
            match options.connect().await {
                Ok(opened) => connection = Some(opened),
                Err(err) => {
                    tracing::warn!(cause = %err, "cannot open the checkpoint connection");
                    continue;
                }
            }
        }
        let Some(open) = connection.as_mut() else {
            continue;
        };
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut *open)
            .await
        {
            tracing::warn!(cause = %err, "WAL checkpoint failed");
            // Opened again at the next turn.
            connection = None;
        }
    }
    if let Some(open) = connection {
        let _ = open.close().await;
    }
}

#[cfg(test)]
mod tests {
    use crate::{PoolConfig, RotateOutcome, Store, TokenRecord};
    use std::time::Duration;

    #[tokio::test]
    async fn the_wal_reaches_the_database_file_without_the_writer_checkpointing() {
        let dir = std::env::temp_dir().join(format!("tollgate-wal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("db.sqlite");
        let url = format!("sqlite://{}", file.display());
        let store = Store::connect(&url, PoolConfig::default())
            .await
            .expect("connects");
        store.migrate().await.expect("migrates");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = std::fs::metadata(&file).expect("file").len();

        // A thousand rotations, several thousand WAL pages: far below the writer's own checkpoint threshold.
        let jtis: Vec<(String, String)> = (0..1000)
            .map(|_| (scattered_jti(), scattered_jti()))
            .collect();
        for (old, new) in &jtis {
            let record = |jti| TokenRecord {
                jti,
                user_id: None,
                created_at: Some(1),
                expires_at: i64::MAX,
                session_id: None,
            };
            let outcome = store
                .rotate(&record(old), &record(new), 1)
                .await
                .expect("rotated");
            assert_eq!(outcome, RotateOutcome::Rotated);
        }
        let mut grown = false;
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // The rows and indexes of these rotations fill about 100 pages; without a
            // checkpoint the file does not grow at all.
            if std::fs::metadata(&file).expect("file").len() > before + 50 * 4096 {
                grown = true;
                break;
            }
        }
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(grown, "the database file never received the WAL's pages");
    }

    /// A 32-hex id in scattered order, as simplejwt's random jtis are: the writes spread over
    /// many index pages, so the WAL grows fast enough for the test.
    fn scattered_jti() -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:016x}{:016x}",
            std::process::id(),
            n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    }
}
