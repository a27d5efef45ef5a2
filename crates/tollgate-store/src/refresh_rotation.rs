//! Refresh-token rotation with blacklisting: the write that every rotating refresh makes.
//!
//! A rotation claims the old token in the blacklist (the unique key on `jti` lets exactly one of
//! concurrent claims win), with the new token's jti in the claim for reuse detection, and
//! records the new token: two rows, in one transaction. It also records the old token when it
//! was never recorded (minted elsewhere with the same key), and moves its session's expiry on
//! when the new token reaches it ([`SESSION_TOUCH_SLACK`]). On SQLite it also marks the old
//! token's row as spent, for its partial indexes of live tokens.
//!
//! Rotations are written in batches. Each rotation waits in a queue; a task takes every rotation
//! waiting and writes them together, as one transaction and one call to the database, each
//! statement with a row per rotation. Under load a batch grows with the queue; alone, a
//! rotation is a batch of one. Each caller is answered only after the commit, so an answered
//! rotation is as durable as one written alone. A rotation whose caller went away before its
//! batch began (the client hung up, so nobody would receive the new token) is left out: written,
//! it would spend a refresh token whose successor nobody holds, and log the client out.
//!
//! Waits are bounded as a request's are: the writer waits at most DATABASE_ACQUIRE_TIMEOUT for
//! its connection, and when it gets none, every rotation waiting by then fails with it rather
//! than waiting again in turn. A rotation waits at most for the batch being written (one
//! statement, bounded by DATABASE_STATEMENT_TIMEOUT, whose answer PostgreSQL's writer waits for
//! no longer than that) and for its own batch's connection.
//!
//! - **SQLite** has one writer, and its driver runs each call on the connection's own thread:
//!   one by one, a rotation cost seven trips there and back, which capped refresh at about two
//!   thousand a second. One batch runs at a time.
//! - **PostgreSQL** spends most of a small transaction on the transaction itself: one rotation
//!   per transaction reached about 2,800 a second, sixteen per transaction 15,000 rotations a
//!   second on the same server (pgbench). One batch runs at a time per instance, on a
//!   connection of its own; the unique keys decide concurrent claims across instances.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::{Dependency, Pool, PoolConfig, Store, StoreError, TokenRecord};

/// How a rotation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The old token is blacklisted and the new one recorded.
    Rotated,
    /// The old token was already blacklisted (rotated, or logged out, before): nothing changed.
    AlreadyBlacklisted,
    /// The token's session was revoked: nothing changed.
    SessionRevoked,
}

/// Rotations taken into one batch at most; a SQLite batch then binds about 40 × 256 values,
/// below SQLite's limit of 32,766.
const MAX_BATCH: usize = 256;
/// Rotations that may wait before callers wait to queue.
const QUEUE: usize = 4096;
/// How long the batch writer keeps its connection while rotations keep coming (see
/// `run_batches`):
/// taking it again costs about 0.2 ms, so under a steady load a few percent of the writer's
/// time; a login waiting for SQLite's only connection waits this long at most.
const HOLD_AT_MOST: Duration = Duration::from_millis(5);

/// A rotation's records, owned so that they can wait in the queue.
#[derive(Debug, Clone)]
struct Record {
    jti: String,
    user_id: Option<i64>,
    created_at: Option<i64>,
    expires_at: i64,
    session_id: Option<String>,
}

impl From<&TokenRecord<'_>> for Record {
    fn from(token: &TokenRecord<'_>) -> Record {
        Record {
            jti: token.jti.to_owned(),
            user_id: token.user_id,
            created_at: token.created_at,
            expires_at: token.expires_at,
            session_id: token.session_id.map(str::to_owned),
        }
    }
}

#[derive(Debug)]
struct Rotation {
    old: Record,
    new: Record,
    now: i64,
}

type Reply = oneshot::Sender<Result<RotateOutcome, StoreError>>;

/// The queue of a store's rotations, shared by the store's clones, and where its batches are
/// written.
#[derive(Debug, Clone)]
pub(crate) struct RotationQueue {
    sender: mpsc::Sender<(Rotation, Reply)>,
    writer: Writer,
}

/// Where batches are written.
#[derive(Debug, Clone)]
enum Writer {
    Sqlite(SqlitePool),
    /// The pool of rotation connections, and how long a batch waits for PostgreSQL's answer.
    Postgres(PgPool, Duration),
}

/// How far beyond its newest token's expiry a rotation sets its session's: a session always
/// outlives its tokens, and a rotation writes the session row only when the new token's `exp`
/// reaches the session's. So a session's `last_used_at` moves once a minute at most, and the
/// rotations in between write two rows (the claim and the new token), not three.
///
/// Skipping the write does not reopen the race with a revocation of the session: the rotation
/// locks the session row before it claims (see [`ROTATE_POSTGRES`]; SQLite has one writer).
pub(crate) const SESSION_TOUCH_SLACK: i64 = 60;

/// How much longer than the statement timeout a batch waits for PostgreSQL's answer: the
/// server cancels the statement at the timeout, and its error takes a moment to arrive. An
/// answer later than that is lost on the way (a network that drops packets without closing
/// the connection), and waiting for it would hold up every rotation behind the batch.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// The settings of PostgreSQL's rotation connections, which run only [`ROTATE_POSTGRES`].
///
/// Planning that statement took over a third of the database's CPU per rotation when it was
/// planned for each batch's arguments. Its generic plan, made once per connection, is right
/// for every batch provided that it looks rows up by their keys; but made while the tables are
/// small (the first batches after a start on a new database), it would scan them whole for as
/// long as the connection lives. With sequential scans priced out, every lookup in the plan is
/// by index, whatever the tables' sizes when it was made (`the_rotation_plan_reads_by_key_only`
/// checks the plan on empty tables).
const ROTATION_CONNECTION: [(&str, &str); 2] = [
    ("plan_cache_mode", "force_generic_plan"),
    ("enable_seqscan", "off"),
];

/// A connection of a [`Writer`]'s pool, held by the batch writer.
enum Connection {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>, Duration),
}

impl Writer {
    async fn acquire(&self) -> Result<Connection, StoreError> {
        Ok(match self {
            Writer::Sqlite(pool) => Connection::Sqlite(pool.acquire().await?),
            Writer::Postgres(pool, answer_within) => {
                Connection::Postgres(pool.acquire().await?, *answer_within)
            }
        })
    }
}

impl RotationQueue {
    /// Starts the tasks that write the rotations of `pool`; they end when the last clone of the
    /// queue is dropped.
    pub(crate) fn start(pool: &Pool, config: &PoolConfig) -> RotationQueue {
        let writer = match pool {
            Pool::Sqlite { write, .. } => Writer::Sqlite(write.clone()),
            Pool::Postgres(pg) => {
                // One batch at a time, as on SQLite. Fewer, larger batches win: with 32
                // refreshes in flight, five batches at once averaged 4 rotations each and 2,400
                // rotations a second; with the plan cached (see `ROTATION_CONNECTION`), one batch
                // at a time cost PostgreSQL 47 µs of CPU per rotation against 57–65 µs for two,
                // and answered 14.0–14.5k refreshes a second against 11.7–13.6k. A batch that
                // waits on a lock (another instance claiming the same token) holds up this
                // instance's rotations only until that instance commits.
                let options = (*pg.connect_options()).clone().options(ROTATION_CONNECTION);
                let batches = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(config.acquire_timeout)
                    .connect_lazy_with(options);
                Writer::Postgres(batches, config.statement_timeout + ANSWER_MARGIN)
            }
        };
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run_batches(writer.clone(), receiver));
        RotationQueue { sender, writer }
    }

    /// Closes the connections of the rotation batches (PostgreSQL); SQLite's are the store's.
    pub(crate) async fn close(&self) {
        if let Writer::Postgres(batches, _) = &self.writer {
            batches.close().await;
        }
    }
}

impl Store {
    /// Rotates a refresh token: blacklists `old` (recording it as outstanding if it was not),
    /// records `new` as outstanding and, when `old` has a session, records the refresh on it
    /// (last use `now`, expiry at least `new`'s). Of concurrent rotations of one token, exactly
    /// one answers [`RotateOutcome::Rotated`]; the others change nothing.
    pub async fn rotate(
        &self,
        old: &TokenRecord<'_>,
        new: &TokenRecord<'_>,
        now: i64,
    ) -> Result<RotateOutcome, StoreError> {
        let rotation = Rotation {
            old: old.into(),
            new: new.into(),
            now,
        };
        let (reply, answer) = oneshot::channel();
        // A closed queue or a dropped reply means the store was closed under us.
        let closed = || StoreError::from(sqlx::Error::PoolClosed);
        self.rotations
            .sender
            .send((rotation, reply))
            .await
            .map_err(|_| closed())?;
        let outcome = answer.await.map_err(|_| closed())??;
        // After the commit, unlike a logout (see `Store::blacklisting`): a rotated token can be
        // refreshed again only through the database's claim, so a copy lost to a stop right
        // here leaves only verify answering for it, until the token is presented again. Also
        // when it was already blacklisted, which is that repair. Writing Redis first cost
        // 12-15 % of the refresh rate on PostgreSQL with Redis.
        if outcome != RotateOutcome::SessionRevoked {
            let _ = self.redis_add(old.jti, old.expires_at, now).await;
        }
        Ok(outcome)
    }
}

/// The batch writer: takes every rotation waiting (up to [`MAX_BATCH`]) and writes them as one
/// transaction, then the next, until the queue is closed.
///
/// It keeps its connection from one batch to the next while rotations keep coming, for at
/// most [`HOLD_AT_MOST`]: the pool tests a connection when it is given back (a round trip to
/// SQLite's thread or to PostgreSQL), and under load that trip between every two batches left
/// SQLite's single writer idle for a third of the time. Given back when the queue is empty or
/// the time is up, the connection serves the store's other writes (logins, logouts) in
/// between (on SQLite there is only the one), and closing the pool never waits for it.
async fn run_batches(writer: Writer, mut queue: mpsc::Receiver<(Rotation, Reply)>) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    let mut held: Option<(Connection, Instant)> = None;
    loop {
        let time_is_up = held
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= HOLD_AT_MOST);
        if queue.is_empty() || time_is_up {
            held = None;
        }
        if queue.recv_many(&mut waiting, MAX_BATCH).await == 0 {
            return;
        }
        let (batch, replies): (Vec<Rotation>, Vec<Reply>) = waiting.drain(..).unzip();
        let (mut connection, since) = match held.take() {
            Some(held) => held,
            None => match writer.acquire().await {
                Ok(connection) => (connection, Instant::now()),
                Err(err) => {
                    // The rotations queued meanwhile have waited too: they fail with this
                    // batch instead of each waiting for a connection again.
                    let mut replies = replies;
                    while let Ok((_, reply)) = queue.try_recv() {
                        replies.push(reply);
                    }
                    tracing::debug!(cause = %err, size = replies.len(), "rotation batch got no connection");
                    fail_all(replies, err);
                    continue;
                }
            },
        };
        // After a failure the connection goes back to the pool, which tests it.
        if write_batch(&mut connection, batch, replies).await {
            held = Some((connection, since));
        }
    }
}

/// Writes one batch and answers its callers; whether it succeeded. If the batch fails for a
/// reason that one rotation could cause, each rotation runs again on its own, so that one
/// failing rotation cannot fail the others. If the database is busy (another process held
/// SQLite's write lock past the busy timeout) or unreachable, every rotation of the batch gets
/// that failure at once: retrying them one by one would make each wait again. A failed batch
/// committed nothing, unless its answer was lost after the commit (the connection dropped, or
/// no answer came in time).
async fn write_batch(
    connection: &mut Connection,
    batch: Vec<Rotation>,
    replies: Vec<Reply>,
) -> bool {
    let (batch, replies): (Vec<Rotation>, Vec<Reply>) = batch
        .into_iter()
        .zip(replies)
        .filter(|(_, reply)| !reply.is_closed())
        .unzip();
    if batch.is_empty() {
        return true;
    }
    match connection.rotate_batch(&batch).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A caller that went away (its request was cancelled) needs no answer.
                let _ = reply.send(Ok(outcome));
            }
            true
        }
        Err(err) if batch.len() == 1 || !one_rotation_could_cause(&err) => {
            tracing::warn!(cause = %err, size = batch.len(), "rotation batch failed");
            fail_all(replies, err);
            false
        }
        Err(err) => {
            tracing::warn!(cause = %err, size = batch.len(), "rotation batch failed: retrying one by one");
            let mut replies = replies.into_iter();
            for rotation in &batch {
                let Some(reply) = replies.next() else {
                    break;
                };
                if reply.is_closed() {
                    continue;
                }
                let outcome = connection
                    .rotate_batch(std::slice::from_ref(rotation))
                    .await
                    .map(|outcomes| outcomes[0]);
                if let Err(err @ StoreError::Unavailable { .. }) = outcome {
                    // The database went away meanwhile: the others would wait for it in turn.
                    fail_all(std::iter::once(reply).chain(replies).collect(), err);
                    break;
                }
                let _ = reply.send(outcome);
            }
            false
        }
    }
}

/// Answers every caller of a failed batch: the first with the error, the others with the same
/// unavailability or, for another failure, its message.
fn fail_all(replies: Vec<Reply>, err: StoreError) {
    let mut replies = replies.into_iter();
    let Some(first) = replies.next() else {
        return;
    };
    for reply in replies {
        let _ = reply.send(Err(err.for_another_caller()));
    }
    let _ = first.send(Err(err));
}

/// Whether a batch's failure may come from one of its rotations rather than from the
/// database as a whole: an error the database answered about the statement. A database busy,
/// locked, unreachable, full or closed is [`StoreError::Unavailable`] (see
/// `database_unavailable`). A deadlock (40P01) between two batches is worth retrying.
fn one_rotation_could_cause(err: &StoreError) -> bool {
    matches!(err, StoreError::Database(sqlx::Error::Database(_)))
}

/// The first rotation of each token in `batch`: only it can win the token; the others lose
/// to it.
fn firsts(batch: &[Rotation]) -> Vec<&Rotation> {
    let mut seen: HashSet<&str> = HashSet::new();
    batch
        .iter()
        .filter(|r| seen.insert(r.old.jti.as_str()))
        .collect()
}

/// Each rotation's outcome, from the sessions found revoked and the tokens claimed.
fn outcomes(
    batch: &[Rotation],
    revoked: &HashSet<String>,
    mut claimed: HashSet<String>,
) -> Vec<RotateOutcome> {
    batch
        .iter()
        .map(|rotation| {
            let session_revoked = rotation
                .old
                .session_id
                .as_ref()
                .is_some_and(|sid| revoked.contains(sid));
            if session_revoked {
                RotateOutcome::SessionRevoked
            } else if claimed.remove(&rotation.old.jti) {
                RotateOutcome::Rotated
            } else {
                RotateOutcome::AlreadyBlacklisted
            }
        })
        .collect()
}

/// Splits rows tagged `revoked` (session ids) from rows tagged `claimed` (jtis).
fn tagged(rows: Vec<(String, String)>) -> (HashSet<String>, HashSet<String>) {
    let mut revoked = HashSet::new();
    let mut claimed = HashSet::new();
    for (tag, value) in rows {
        if tag == "revoked" {
            revoked.insert(value);
        } else {
            claimed.insert(value);
        }
    }
    (revoked, claimed)
}

impl Connection {
    async fn rotate_batch(&mut self, batch: &[Rotation]) -> Result<Vec<RotateOutcome>, StoreError> {
        match self {
            Connection::Sqlite(connection) => rotate_batch_sqlite(connection, batch).await,
            Connection::Postgres(connection, answer_within) => {
                let answered =
                    tokio::time::timeout(*answer_within, rotate_batch_postgres(connection, batch));
                match answered.await {
                    Ok(outcomes) => outcomes,
                    Err(_) => {
                        // The answer may still come: the connection cannot serve again.
                        connection.close_on_drop();
                        Err(StoreError::Unavailable {
                            dependency: Dependency::Database,
                            cause: format!(
                                "no answer to a batch of rotations within {answer_within:?}"
                            ),
                        })
                    }
                }
            }
        }
    }
}

/// A batch on PostgreSQL as one statement over arrays, one element per rotation (the first of
/// each token only). The CTEs all run in one transaction, on one snapshot. `locked` locks the
/// batch's sessions first, in id order, as a session's revocation does before it blacklists the
/// session's tokens: a rotation and a revocation of one session then wait for each other in
/// the same order (claiming a token first deadlocked with a revocation that had locked the
/// session and waited for that token's claim), and a revocation that committed meanwhile is
/// seen in the locked row. `revoked` finds the revoked sessions and `live` leaves their
/// rotations out, and as `live` needs every lock, no claim is made before them. `touched` moves
/// a session's expiry on only when a new token passes it ([`SESSION_TOUCH_SLACK`]). The
/// blacklist insert claims the old tokens, each with its successor's jti (the link that reuse
/// detection follows), waiting for any concurrent insert of the same jti to commit and then
/// doing nothing, so of concurrent claims exactly one returns its row; only those record their
/// new token. `old` records an old token that was never recorded. Rows are inserted in jti
/// order, so that two batches lock shared keys in the same order.
const ROTATE_POSTGRES: &str = "WITH input AS ( \
       SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::text[], \
         $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::text[], $11::int8[]) \
         AS t(old_jti, old_user, old_iat, old_exp, sid, new_jti, new_user, new_iat, new_exp, new_sid, now) \
     ), locked AS ( \
       SELECT s.id, s.revoked_at FROM sessions s \
       WHERE s.id IN (SELECT sid FROM input WHERE sid IS NOT NULL) \
       ORDER BY s.id FOR NO KEY UPDATE \
     ), revoked AS ( \
       SELECT id FROM locked WHERE revoked_at IS NOT NULL \
     ), live AS ( \
       SELECT * FROM input i WHERE i.sid IS NULL OR i.sid NOT IN (SELECT id FROM revoked) \
     ), touched AS ( \
       UPDATE sessions s SET last_used_at = t.now, expires_at = t.new_exp + $12 \
       FROM (SELECT sid, MAX(now) AS now, MAX(new_exp) AS new_exp FROM input \
             WHERE sid IS NOT NULL GROUP BY sid) t \
       WHERE s.id = t.sid AND s.revoked_at IS NULL AND s.expires_at <= t.new_exp \
     ), claimed AS ( \
       INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at, replaced_by) \
       SELECT old_jti, now, old_exp, new_jti FROM live ORDER BY old_jti \
       ON CONFLICT (jti) DO NOTHING RETURNING jti \
     ), old AS ( \
       INSERT INTO outstanding_tokens (jti, user_id, created_at, expires_at, session_id) \
       SELECT i.old_jti, (SELECT id FROM users WHERE id = i.old_user), i.old_iat, i.old_exp, i.sid \
       FROM input i ORDER BY i.old_jti \
       ON CONFLICT (jti) DO NOTHING \
     ), new AS ( \
       INSERT INTO outstanding_tokens (jti, user_id, created_at, expires_at, session_id) \
       SELECT l.new_jti, (SELECT id FROM users WHERE id = l.new_user), l.new_iat, l.new_exp, l.new_sid \
       FROM live l JOIN claimed c ON c.jti = l.old_jti ORDER BY l.new_jti \
       ON CONFLICT (jti) DO NOTHING \
     ) SELECT 'revoked'::text, id FROM revoked UNION ALL SELECT 'claimed'::text, jti FROM claimed";

async fn rotate_batch_postgres(
    connection: &mut PgConnection,
    batch: &[Rotation],
) -> Result<Vec<RotateOutcome>, StoreError> {
    let firsts = firsts(batch);
    let column = |f: fn(&Rotation) -> Option<i64>| firsts.iter().map(|r| f(r)).collect::<Vec<_>>();
    let text = |f: fn(&Rotation) -> Option<String>| firsts.iter().map(|r| f(r)).collect::<Vec<_>>();
    // A named prepared statement: parsed and planned once per connection (ROTATION_CONNECTION).
    let rows: Vec<(String, String)> = sqlx::query_as(ROTATE_POSTGRES)
        .bind(text(|r| Some(r.old.jti.clone())))
        .bind(column(|r| r.old.user_id))
        .bind(column(|r| r.old.created_at))
        .bind(column(|r| Some(r.old.expires_at)))
        .bind(text(|r| r.old.session_id.clone()))
        .bind(text(|r| Some(r.new.jti.clone())))
        .bind(column(|r| r.new.user_id))
        .bind(column(|r| r.new.created_at))
        .bind(column(|r| Some(r.new.expires_at)))
        .bind(text(|r| r.new.session_id.clone()))
        .bind(column(|r| Some(r.now)))
        .bind(SESSION_TOUCH_SLACK)
        .fetch_all(connection)
        .await?;
    let (revoked, claimed) = tagged(rows);
    Ok(outcomes(batch, &revoked, claimed))
}

/// Runs `batch` in one transaction on the SQLite writer; the outcomes are in `batch`'s order.
/// Of rotations of the same token within the batch, the first one wins.
///
/// SQLite's driver runs each call on the connection's own thread, and each trip there and back
/// costs more than the statements themselves, so the whole transaction is one call of several
/// statements, each with a row per rotation: read which sessions were revoked, touch the live
/// ones that a new token reaches, record the old tokens that were never recorded, record the
/// new ones, mark the old ones' rows as spent, claim the old ones with the link to their
/// successors. The mark (`outstanding_tokens.replaced_by`, which PostgreSQL does not have) is
/// a third row write; SQLite's cost is in pages, not rows, and the partial indexes that the
/// mark allows save more pages than it writes (see migration 20261207190000).
async fn rotate_batch_sqlite(
    connection: &mut SqliteConnection,
    batch: &[Rotation],
) -> Result<Vec<RotateOutcome>, StoreError> {
    let done = run_in_transaction(connection, batch).await;
    if done.is_err() {
        // The transaction may still be open: end it before the connection is used again.
        let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
    }
    done
}

async fn run_in_transaction(
    connection: &mut sqlx::SqliteConnection,
    batch: &[Rotation],
) -> Result<Vec<RotateOutcome>, StoreError> {
    use futures_util::TryStreamExt;

    let mut touches: HashMap<&str, (i64, i64)> = HashMap::new();
    for rotation in batch {
        if let Some(sid) = rotation.old.session_id.as_deref() {
            let touch = touches
                .entry(sid)
                .or_insert((rotation.now, rotation.new.expires_at));
            touch.0 = touch.0.max(rotation.now);
            touch.1 = touch.1.max(rotation.new.expires_at);
        }
    }
    let firsts = firsts(batch);
    // Which rotations may proceed, as SQL over `v`: the old token not blacklisted before
    // (the claim below is the last statement, so until then "not blacklisted" means "will be
    // claimed now") and its session, if stored, not revoked. The writer holds SQLite's write
    // lock from BEGIN IMMEDIATE to COMMIT, so nothing else writes in between.
    const PROCEEDS: &str = "NOT EXISTS (SELECT 1 FROM blacklisted_tokens b WHERE b.jti = v.column1) \
         AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = v.column5 AND s.revoked_at IS NOT NULL)";

    // One call: every row it returns is tagged with what it is.
    let mut query = QueryBuilder::<Sqlite>::new("BEGIN IMMEDIATE; ");
    if !touches.is_empty() {
        query.push("SELECT 'revoked', id FROM sessions WHERE revoked_at IS NOT NULL AND id IN (");
        let mut ids = query.separated(", ");
        for sid in touches.keys() {
            ids.push_bind(*sid);
        }
        query.push("); UPDATE sessions SET last_used_at = v.column2, expires_at = v.column3 + ");
        query.push_bind(SESSION_TOUCH_SLACK).push(" FROM (");
        query.push_values(&touches, |mut row, (sid, (now, expires_at))| {
            row.push_bind(*sid).push_bind(*now).push_bind(*expires_at);
        });
        query.push(
            ") AS v WHERE sessions.id = v.column1 AND sessions.revoked_at IS NULL \
             AND sessions.expires_at <= v.column3; ",
        );
    }
    // Tokens minted elsewhere with the same key were never recorded: record them first.
    query
        .push("INSERT INTO outstanding_tokens (jti, user_id, created_at, expires_at, session_id) ");
    push_records(&mut query, firsts.iter().map(|r| &r.old));
    query.push(" ON CONFLICT (jti) DO NOTHING; ");
    // The new tokens.
    query.push(
        "INSERT INTO outstanding_tokens (jti, user_id, created_at, expires_at, session_id) \
         SELECT v.column6, (SELECT id FROM users WHERE id = v.column7), v.column8, v.column9, \
         v.column10 FROM (",
    );
    push_pairs(&mut query, &firsts);
    query
        .push(") AS v WHERE ")
        .push(PROCEEDS)
        .push(" ON CONFLICT (jti) DO NOTHING; ");
    // The spent tokens' rows marked, so that SQLite's partial indexes of live tokens leave them
    // out (migration 20261207190000).
    query.push("UPDATE outstanding_tokens SET replaced_by = v.column6 FROM (");
    push_pairs(&mut query, &firsts);
    query
        .push(") AS v WHERE outstanding_tokens.jti = v.column1 AND ")
        .push(PROCEEDS)
        .push("; ");
    // The claims, each with the link to its successor for reuse detection.
    query.push(
        "INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at, replaced_by) \
         SELECT v.column1, v.column11, v.column4, v.column6 FROM (",
    );
    push_pairs(&mut query, &firsts);
    query
        .push(") AS v WHERE ")
        .push(PROCEEDS)
        .push(" ON CONFLICT (jti) DO NOTHING RETURNING 'claimed', jti; COMMIT");
    let rows: Vec<(String, String)> = query
        .build_query_as()
        .fetch(&mut *connection)
        .try_collect()
        .await?;
    let (revoked, claimed) = tagged(rows);
    Ok(outcomes(batch, &revoked, claimed))
}

/// Appends `VALUES` rows of (old jti, old user, old iat, old exp, session, new jti, new user,
/// new iat, new exp, new session, now): `v.column1` to `v.column11`.
fn push_pairs<'r>(query: &mut QueryBuilder<'r, Sqlite>, rotations: &[&'r Rotation]) {
    query.push_values(rotations, |mut row, r| {
        row.push_bind(&r.old.jti)
            .push_bind(r.old.user_id)
            .push_bind(r.old.created_at)
            .push_bind(r.old.expires_at)
            .push_bind(&r.old.session_id)
            .push_bind(&r.new.jti)
            .push_bind(r.new.user_id)
            .push_bind(r.new.created_at)
            .push_bind(r.new.expires_at)
            .push_bind(&r.new.session_id)
            .push_bind(r.now);
    });
}

/// Appends `VALUES` rows recording tokens as outstanding, each user id kept only if that
/// user exists.
fn push_records<'r>(
    query: &mut QueryBuilder<'r, Sqlite>,
    records: impl Iterator<Item = &'r Record>,
) {
    query.push_values(records, |mut row, record| {
        row.push_bind(&record.jti)
            .push("(SELECT id FROM users WHERE id = ")
            .push_bind_unseparated(record.user_id)
            .push_unseparated(")")
            .push_bind(record.created_at)
            .push_bind(record.expires_at)
            .push_bind(&record.session_id);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory_store;
    use crate::{with_writer, NewSession, NewUser};

    fn record<'a>(jti: &'a str, sid: Option<&'a str>, expires_at: i64) -> TokenRecord<'a> {
        TokenRecord {
            jti,
            user_id: Some(1),
            created_at: Some(1),
            expires_at,
            session_id: sid,
        }
    }

    /// A store with user 1 and its session "s" (first token "t0", expiring at 100).
    async fn store_with_session() -> Store {
        let store = memory_store().await;
        let user = NewUser {
            username: "ann".into(),
            password_hash: "x".into(),
            is_active: true,
            ..NewUser::default()
        };
        store.create_user(&user, 1).await.expect("created");
        let session = NewSession {
            id: "s",
            user_id: 1,
            created_at: 1,
            client_addr: "127.0.0.1",
            user_agent: "",
            expires_at: 100,
            amr: &["pwd"],
        };
        store
            .start_session(&session, &record("t0", Some("s"), 100))
            .await
            .expect("started");
        store
    }

    #[tokio::test]
    async fn a_rotation_is_claimed_once_records_both_tokens_and_links_them() {
        let store = memory_store().await;
        let rotated = store
            .rotate(&record("old", None, 50), &record("new", None, 60), 10)
            .await
            .expect("query");
        assert_eq!(rotated, RotateOutcome::Rotated);
        assert!(store.is_blacklisted("old").await.expect("query"));
        assert!(!store.is_blacklisted("new").await.expect("query"));
        let again = store
            .rotate(&record("old", None, 50), &record("newer", None, 60), 11)
            .await
            .expect("query");
        assert_eq!(again, RotateOutcome::AlreadyBlacklisted);
        // The losing rotation recorded nothing; the winner linked old to new.
        assert_eq!(store.token_counts().await.expect("query"), (2, 1));
        let family = store
            .rotation("old")
            .await
            .expect("query")
            .expect("rotated");
        assert_eq!(family.current_jti, "new");
        assert_eq!(family.rotated_at, 10);
    }

    #[tokio::test]
    async fn revoking_a_rotated_session_blacklists_its_live_token_found_by_index() {
        let store = store_with_session().await;
        rotate_twice(&store).await;
        assert!(!store.is_blacklisted("t2").await.expect("query"));
        assert!(store.revoke_session(Some(1), "s", 12).await.expect("query"));
        for jti in ["t0", "t1", "t2"] {
            assert!(store.is_blacklisted(jti).await.expect("query"), "{jti}");
        }
        assert_planned_with(
            &store,
            crate::sessions::BLACKLIST_SESSION_SQLITE,
            "s".to_owned(),
            "outstanding_tokens_session_idx",
        )
        .await;
    }

    #[tokio::test]
    async fn logging_a_rotated_user_out_everywhere_blacklists_their_live_tokens_found_by_index() {
        let store = store_with_session().await;
        rotate_twice(&store).await;
        // A token minted without a session (the command line's, or one imported from Django).
        store
            .record_outstanding(&record("alone", None, 100))
            .await
            .expect("query");
        assert_eq!(
            store.revoke_all_sessions(1, 12).await.expect("query"),
            ["s"]
        );
        for jti in ["t0", "t1", "t2", "alone"] {
            assert!(store.is_blacklisted(jti).await.expect("query"), "{jti}");
        }
        for index in [
            "sessions_user_idx",
            "outstanding_tokens_session_idx",
            "outstanding_tokens_user_idx",
        ] {
            assert_planned_with(&store, crate::sessions::BLACKLIST_USER_SQLITE, 1_i64, index).await;
        }
    }

    /// Rotates the session's first token twice: t0, then t1, then t2 is live.
    async fn rotate_twice(store: &Store) {
        for (old, new, now) in [("t0", "t1", 10), ("t1", "t2", 11)] {
            let rotated = store
                .rotate(
                    &record(old, Some("s"), 100),
                    &record(new, Some("s"), 100),
                    now,
                )
                .await
                .expect("query");
            assert_eq!(rotated, RotateOutcome::Rotated);
        }
    }

    /// Asserts that SQLite plans a blacklisting `query` (now, then `key`) with `index`. SQLite
    /// indexes only live tokens by session and by user: a query that does not say
    /// `replaced_by IS NULL` cannot use those indexes and scans every token ever recorded.
    async fn assert_planned_with<K>(store: &Store, query: &str, key: K, index: &str)
    where
        K: for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + Send,
    {
        let crate::Pool::Sqlite { read, .. } = &store.pool else {
            unreachable!("a memory store is SQLite");
        };
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {query}"))
                .bind(12_i64)
                .bind(key)
                .fetch_all(read)
                .await
                .expect("plan");
        assert!(
            plan.iter()
                .any(|(.., detail)| detail.contains(&format!("INDEX {index}"))),
            "{plan:?}"
        );
    }

    #[tokio::test]
    async fn token_ids_and_sessions_travel_to_sqlite_unchanged() {
        let store = store_with_session().await;
        // jtis of tokens minted elsewhere may hold any character JSON has to escape.
        let odd = "quote\" backslash\\ tab\t é 🦀";
        let rotated = store
            .rotate(
                &record(odd, Some("s"), 100),
                &record("after-odd", Some("s"), 150),
                20,
            )
            .await
            .expect("query");
        assert_eq!(rotated, RotateOutcome::Rotated);
        assert!(store.is_blacklisted(odd).await.expect("query"));
        let family = store.rotation(odd).await.expect("query").expect("rotated");
        assert_eq!(family.current_jti, "after-odd");
        let sessions = store.sessions_of(1, 20).await.expect("query");
        assert_eq!(
            (sessions[0].last_used_at, sessions[0].expires_at),
            (20, 150 + SESSION_TOUCH_SLACK)
        );
    }

    #[tokio::test]
    async fn the_rotation_plan_reads_by_key_only() {
        let Some(scratch) = crate::testing::postgres_store().await else {
            return;
        };
        // The plan that the rotation connections cache, made as on a new database: every
        // table empty.
        let Writer::Postgres(pool, _) = &scratch.store.rotations.writer else {
            unreachable!("a PostgreSQL store rotates on PostgreSQL");
        };
        let mut connection = pool.acquire().await.expect("connects");
        let prepare = format!(
            "PREPARE rotation(text[], int8[], int8[], int8[], text[], text[], int8[], int8[], \
             int8[], text[], int8[], int8) AS {ROTATE_POSTGRES}"
        );
        sqlx::query(&prepare)
            .execute(&mut *connection)
            .await
            .expect("prepared");
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN (VERBOSE) EXECUTE rotation('{a}', '{1}', '{1}', '{9}', '{s}', '{b}', '{1}', '{1}', \
             '{9}', '{s}', '{1}', 60)",
        )
        .fetch_all(&mut *connection)
        .await
        .expect("explained");
        drop(connection);
        scratch.drop_database().await;
        let plan = plan.join("\n");
        // Generic: planned once, for any arguments.
        assert!(plan.contains("unnest($1"), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
        for index in ["sessions_pkey", "outstanding_tokens_jti_key", "users_pkey"] {
            assert!(plan.contains(index), "no lookup by {index}: {plan}");
        }
    }

    #[tokio::test]
    async fn concurrent_rotations_batch_together_and_one_wins_each_token() {
        let store = memory_store().await;
        // 64 distinct tokens, each rotated by 3 callers at once: the queue fills while the
        // writer is busy, so most run in shared batches.
        let jtis: Vec<String> = (0..64).map(|i| format!("old-{i}")).collect();
        let mut calls = tokio::task::JoinSet::new();
        for (i, jti) in jtis.iter().enumerate() {
            for attempt in 0..3 {
                let store = store.clone();
                let jti = jti.clone();
                let new = format!("new-{i}-{attempt}");
                calls.spawn(async move {
                    let outcome = store
                        .rotate(&record(&jti, None, 50), &record(&new, None, 60), 10)
                        .await
                        .expect("query");
                    (jti, outcome)
                });
            }
        }
        let mut wins: HashMap<String, usize> = HashMap::new();
        while let Some(joined) = calls.join_next().await {
            let (jti, outcome) = joined.expect("joined");
            let count = wins.entry(jti).or_default();
            match outcome {
                RotateOutcome::Rotated => *count += 1,
                RotateOutcome::AlreadyBlacklisted => {}
                RotateOutcome::SessionRevoked => panic!("no session here"),
            }
        }
        assert_eq!(wins.len(), 64);
        assert!(wins.values().all(|&won| won == 1), "{wins:?}");
        // 64 old + 64 winning new tokens outstanding, 64 blacklisted.
        assert_eq!(store.token_counts().await.expect("query"), (128, 64));
        for jti in &jtis {
            let family = store.rotation(jti).await.expect("query").expect("rotated");
            assert!(family.current_jti.starts_with(&jti.replace("old", "new")));
        }
    }

    #[tokio::test]
    async fn other_writes_get_the_connection_under_a_rotation_load_that_never_lets_up() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        // One connection for everything, and twice MAX_BATCH rotations always waiting: the
        // queue never empties, so the batch writer gives its connection back only because it has
        // held it long enough.
        let store = memory_store().await;
        let stop = Arc::new(AtomicBool::new(false));
        let rotated = Arc::new(AtomicUsize::new(0));
        let mut load = tokio::task::JoinSet::new();
        for chain in 0..2 * MAX_BATCH {
            let (store, stop, rotated) = (store.clone(), Arc::clone(&stop), Arc::clone(&rotated));
            load.spawn(async move {
                let mut step = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (old, new) = (format!("c{chain}-{step}"), format!("c{chain}-{}", step + 1));
                    let outcome = store
                        .rotate(&record(&old, None, 50), &record(&new, None, 60), 10)
                        .await
                        .expect("rotated");
                    assert_eq!(outcome, RotateOutcome::Rotated);
                    rotated.fetch_add(1, Ordering::Relaxed);
                    step += 1;
                }
            });
        }
        while rotated.load(Ordering::Relaxed) < 4 * MAX_BATCH {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let user = NewUser {
            username: "ann".into(),
            password_hash: "x".into(),
            ..NewUser::default()
        };
        // Well within the pool's acquire timeout (5 s), while the load goes on.
        let created = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            store.create_user(&user, 1),
        )
        .await;
        let during = load.len() == 2 * MAX_BATCH;
        stop.store(true, Ordering::Relaxed);
        while let Some(joined) = load.join_next().await {
            joined.expect("the load ran");
        }
        assert!(during, "the load stopped before the write");
        created.expect("waited past 3 s").expect("created");
    }

    #[tokio::test]
    async fn a_database_locked_by_another_process_fails_a_batch_once_not_per_rotation() {
        use sqlx::{ConnectOptions, Connection};
        let dir = std::env::temp_dir().join(format!("tollgate-busy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}/db.sqlite", dir.display());
        let store = Store::connect(&url, crate::PoolConfig::default())
            .await
            .expect("connects");
        store.migrate().await.expect("migrates");
        // Another process holds the write lock for longer than the 5 s busy timeout.
        let mut other = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
            .expect("url")
            .connect()
            .await
            .expect("connects");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .expect("locked");

        let started = std::time::Instant::now();
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..20 {
            let store = store.clone();
            calls.spawn(async move {
                let (old, new) = (format!("busy-old-{i}"), format!("busy-new-{i}"));
                store
                    .rotate(&record(&old, None, 50), &record(&new, None, 60), 10)
                    .await
            });
        }
        while let Some(joined) = calls.join_next().await {
            assert!(joined.expect("joined").is_err(), "rotated through a lock");
        }
        // At most a busy timeout per batch (a first batch of one, then the rest), not one per
        // rotation (20 × 5 s).
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "took {:?}",
            started.elapsed()
        );

        sqlx::query("ROLLBACK")
            .execute(&mut other)
            .await
            .expect("released");
        other.close().await.expect("closed");
        let rotated = store
            .rotate(
                &record("after", None, 50),
                &record("after-new", None, 60),
                10,
            )
            .await
            .expect("query");
        assert_eq!(rotated, RotateOutcome::Rotated);
        assert_eq!(store.token_counts().await.expect("query"), (2, 1));
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The session row is written only when a new token outlives it, so at most once per
    /// SESSION_TOUCH_SLACK of rotations; its expiry always lies beyond its newest token's.
    #[tokio::test]
    async fn rotations_write_their_session_once_a_minute_and_it_outlives_its_tokens() {
        let store = store_with_session().await;
        let lifetime = 1_000;
        let mut newest = "t0".to_owned();
        let mut seen = Vec::new();
        for now in [10, 30, 69, 71, 100, 131, 132] {
            let next = format!("t{now}");
            let rotated = store
                .rotate(
                    &record(&newest, Some("s"), 100),
                    &record(&next, Some("s"), now + lifetime),
                    now,
                )
                .await
                .expect("query");
            assert_eq!(rotated, RotateOutcome::Rotated);
            newest = next;
            let session = store.sessions_of(1, now).await.expect("query").remove(0);
            assert!(session.expires_at > now + lifetime, "{now}: {session:?}");
            seen.push((now, session.last_used_at, session.expires_at));
        }
        let slack = SESSION_TOUCH_SLACK;
        assert_eq!(
            seen,
            [
                (10, 10, 10 + lifetime + slack),
                (30, 10, 10 + lifetime + slack),
                (69, 10, 10 + lifetime + slack),
                (71, 71, 71 + lifetime + slack),
                (100, 71, 71 + lifetime + slack),
                (131, 131, 131 + lifetime + slack),
                (132, 131, 131 + lifetime + slack),
            ]
        );
        // Revoking the session blacklists the newest token, which no rotation touched it for.
        assert!(store.revoke_session(None, "s", 140).await.expect("revoked"));
        assert!(store.is_blacklisted("t132").await.expect("query"));
        let family = store
            .rotation("t10")
            .await
            .expect("query")
            .expect("rotated");
        assert_eq!(
            (family.current_jti.as_str(), family.current_blacklisted),
            ("t132", true)
        );
    }

    /// Rotations before migration 20261207190000 linked a token to its successor in
    /// `outstanding_tokens`; the migration moves the links into the claims, so a token rotated
    /// before the upgrade is still followed to its family's newest token.
    #[tokio::test]
    async fn links_of_rotations_made_before_the_upgrade_are_still_followed() {
        let sqlite = crate::testing::empty_memory_store().await;
        follow_links_across_the_upgrade(&sqlite).await;
        if let Some(scratch) = crate::testing::empty_postgres_store().await {
            follow_links_across_the_upgrade(&scratch.store).await;
            scratch.drop_database().await;
        }
    }

    async fn follow_links_across_the_upgrade(store: &Store) {
        store.migrate_before(20261207190000).await;
        // t0 rotated to t1, t1 to t2; "out" logged out; as the rotations wrote them then.
        for statement in [
            "INSERT INTO outstanding_tokens (jti, created_at, expires_at, replaced_by) VALUES \
             ('t0', 1, 100, 't1'), ('t1', 2, 100, 't2'), ('t2', 3, 100, NULL), ('out', 4, 100, NULL)",
            "INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at) VALUES \
             ('t0', 10, 100), ('t1', 11, 100), ('out', 12, 100)",
        ] {
            with_writer!(store, |pool| sqlx::query(statement).execute(pool).await.map(|_| ()))
                .expect("old rows");
        }
        store.migrate().await.expect("migrates");
        for (jti, rotated_at) in [("t0", 10), ("t1", 11)] {
            let family = store.rotation(jti).await.expect("query").expect("rotated");
            assert_eq!(
                (family.rotated_at, family.current_jti.as_str()),
                (rotated_at, "t2")
            );
            assert!(!family.current_blacklisted);
        }
        assert!(store.rotation("out").await.expect("query").is_none());
        // And rotating on from there continues the family.
        let rotated = store
            .rotate(&record("t2", None, 100), &record("t3", None, 100), 20)
            .await
            .expect("query");
        assert_eq!(rotated, RotateOutcome::Rotated);
        let family = store.rotation("t0").await.expect("query").expect("rotated");
        assert_eq!(family.current_jti, "t3");
        store.close().await;
    }

    #[tokio::test]
    async fn a_rotation_touches_its_session_and_a_revoked_session_changes_nothing() {
        let store = store_with_session().await;
        let rotated = store
            .rotate(
                &record("t0", Some("s"), 100),
                &record("t1", Some("s"), 200),
                50,
            )
            .await
            .expect("query");
        assert_eq!(rotated, RotateOutcome::Rotated);
        let sessions = store.sessions_of(1, 50).await.expect("query");
        assert_eq!(sessions.len(), 1);
        assert_eq!(
            (sessions[0].last_used_at, sessions[0].expires_at),
            (50, 200 + SESSION_TOUCH_SLACK)
        );

        assert!(store.revoke_session(None, "s", 60).await.expect("revoked"));
        let counts = store.token_counts().await.expect("query");
        let refused = store
            .rotate(
                &record("t1", Some("s"), 200),
                &record("t2", Some("s"), 300),
                70,
            )
            .await
            .expect("query");
        assert_eq!(refused, RotateOutcome::SessionRevoked);
        assert_eq!(store.token_counts().await.expect("query"), counts);
        // Also for a token of that session that revoking it did not blacklist (one it never
        // recorded): nothing is claimed or issued.
        let unrecorded = store
            .rotate(
                &record("y0", Some("s"), 200),
                &record("y1", Some("s"), 300),
                70,
            )
            .await
            .expect("query");
        assert_eq!(unrecorded, RotateOutcome::SessionRevoked);
        assert!(!store.is_blacklisted("y0").await.expect("query"));
        assert!(store.rotation("y0").await.expect("query").is_none());
        assert_eq!(store.token_counts().await.expect("query").1, counts.1);

        // A session that is not stored (a token minted elsewhere) does not stop a rotation.
        let elsewhere = store
            .rotate(
                &record("x0", Some("gone"), 100),
                &record("x1", Some("gone"), 200),
                70,
            )
            .await
            .expect("query");
        assert_eq!(elsewhere, RotateOutcome::Rotated);
    }
}
