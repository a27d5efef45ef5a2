//! The audit log: every administrative action, who took it, on whom, when and from where. Rows
//! are only ever added; they name accounts by id and username as they were, so that they
//! outlive the accounts.

use crate::{with_pool, with_writer, Store, StoreError};

/// Who took an administrative action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditActor {
    /// An administrator's account (the admin API or console).
    User {
        /// The account's id.
        id: i64,
        /// Its username at the time.
        username: String,
    },
    /// A command of the command line.
    Command {
        /// The operating-system user who ran it.
        os_user: String,
    },
}

/// An action to record.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    /// Who.
    pub actor: &'a AuditActor,
    /// What: `user.update`, `keys.rotate`...
    pub action: &'a str,
    /// The account acted on, if any: its id and username.
    pub target: Option<(i64, &'a str)>,
    /// A JSON object (as text) of what changed; never a secret.
    pub details: &'a str,
    /// The administrator's client address; `None` for a command.
    pub client_addr: Option<&'a str>,
    /// When, epoch seconds.
    pub at: i64,
}

/// A recorded action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id: entries are numbered in the order they were recorded.
    pub id: i64,
    /// Who.
    pub actor: AuditActor,
    /// What.
    pub action: String,
    /// The account acted on, if any.
    pub target_id: Option<i64>,
    /// Its username at the time.
    pub target_name: Option<String>,
    /// A JSON object, as text.
    pub details: String,
    /// The administrator's client address.
    pub client_addr: Option<String>,
    /// When, epoch seconds.
    pub at: i64,
}

/// Which entries to read; `None` reads all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Those of this actor.
    pub actor: Option<AuditActorFilter>,
    /// Those acting on this account.
    pub target_id: Option<i64>,
}

/// An actor to filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditActorFilter {
    /// An administrator's account, by id.
    User(i64),
    /// Any command.
    Command,
}

/// A row as read: id, kind, actor id, actor name, action, target id, target name, details,
/// client address, time.
type AuditRow = (
    i64,
    String,
    Option<i64>,
    String,
    String,
    Option<i64>,
    Option<String>,
    String,
    Option<String>,
    i64,
);

const KIND_USER: &str = "user";
const KIND_COMMAND: &str = "cli";

/// The WHERE clause of a filter: `$1` the actor kind (or NULL), `$2` the actor id (or NULL),
/// `$3` the target id (or NULL), so that one statement serves every combination.
const WHERE: &str = "WHERE ($1 IS NULL OR actor_kind = $1) \
     AND ($2 IS NULL OR actor_id = $2) AND ($3 IS NULL OR target_id = $3)";

impl AuditFilter {
    fn binds(&self) -> (Option<&'static str>, Option<i64>, Option<i64>) {
        let (kind, actor_id) = match self.actor {
            None => (None, None),
            Some(AuditActorFilter::User(id)) => (Some(KIND_USER), Some(id)),
            Some(AuditActorFilter::Command) => (Some(KIND_COMMAND), None),
        };
        (kind, actor_id, self.target_id)
    }
}

impl Store {
    /// Records an administrative action.
    pub async fn record_audit(&self, entry: &NewAuditEntry<'_>) -> Result<(), StoreError> {
        let (kind, actor_id, actor_name) = match entry.actor {
            AuditActor::User { id, username } => (KIND_USER, Some(*id), username.as_str()),
            AuditActor::Command { os_user } => (KIND_COMMAND, None, os_user.as_str()),
        };
        with_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO audit_log (actor_kind, actor_id, actor_name, action, target_id, \
                 target_name, details, client_addr, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(kind)
            .bind(actor_id)
            .bind(actor_name)
            .bind(entry.action)
            .bind(entry.target.map(|(id, _)| id))
            .bind(entry.target.map(|(_, name)| name))
            .bind(entry.details)
            .bind(entry.client_addr)
            .bind(entry.at)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// How many entries `filter` selects.
    pub async fn count_audit(&self, filter: AuditFilter) -> Result<i64, StoreError> {
        let (kind, actor_id, target_id) = filter.binds();
        let sql = format!("SELECT COUNT(*) FROM audit_log {WHERE}");
        let count = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(&sql)
                .bind(kind)
                .bind(actor_id)
                .bind(target_id)
                .fetch_one(pool)
                .await
        })?;
        Ok(count)
    }

    /// The entries `filter` selects, newest first, `limit` of them after skipping `offset`.
    pub async fn audit_entries(
        &self,
        filter: AuditFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let (kind, actor_id, target_id) = filter.binds();
        let sql = format!(
            "SELECT id, actor_kind, actor_id, actor_name, action, target_id, target_name, \
             details, client_addr, at FROM audit_log {WHERE} ORDER BY id DESC LIMIT $4 OFFSET $5"
        );
        let rows: Vec<AuditRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(kind)
                .bind(actor_id)
                .bind(target_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(entry).collect())
    }
}

fn entry(row: AuditRow) -> AuditEntry {
    let (id, kind, actor_id, actor_name, action, target_id, target_name, details, client, at) = row;
    let actor = match (kind.as_str(), actor_id) {
        (KIND_USER, Some(id)) => AuditActor::User {
            id,
            username: actor_name,
        },
        _ => AuditActor::Command {
            os_user: actor_name,
        },
    };
    AuditEntry {
        id,
        actor,
        action,
        target_id,
        target_name,
        details,
        client_addr: client,
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory_store;

    #[tokio::test]
    async fn entries_are_read_newest_first_and_filtered() {
        let store = memory_store().await;
        let admin = AuditActor::User {
            id: 1,
            username: "root".into(),
        };
        let command = AuditActor::Command {
            os_user: "ops".into(),
        };
        for (actor, action, target, at) in [
            (&admin, "user.update", Some((7, "ann")), 10),
            (&command, "keys.rotate", None, 20),
            (&admin, "user.delete", Some((8, "bob")), 30),
        ] {
            let entry = NewAuditEntry {
                actor,
                action,
                target,
                details: "{}",
                client_addr: matches!(actor, AuditActor::User { .. }).then_some("10.0.0.1"),
                at,
            };
            store.record_audit(&entry).await.expect("records");
        }
        let all = store
            .audit_entries(AuditFilter::default(), 10, 0)
            .await
            .expect("reads");
        let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["user.delete", "keys.rotate", "user.update"]);
        assert_eq!(all[1].actor, command);
        assert_eq!(all[0].target_name.as_deref(), Some("bob"));
        let by_admin = AuditFilter {
            actor: Some(AuditActorFilter::User(1)),
            ..AuditFilter::default()
        };
        assert_eq!(store.count_audit(by_admin).await.expect("counts"), 2);
        let on_ann = AuditFilter {
            target_id: Some(7),
            ..AuditFilter::default()
        };
        let found = store.audit_entries(on_ann, 10, 0).await.expect("reads");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].actor, admin);
        let commands = AuditFilter {
            actor: Some(AuditActorFilter::Command),
            ..AuditFilter::default()
        };
        assert_eq!(store.count_audit(commands).await.expect("counts"), 1);
        let second_page = store
            .audit_entries(AuditFilter::default(), 2, 2)
            .await
            .expect("reads");
        assert_eq!(second_page.len(), 1);
        assert_eq!(second_page[0].action, "user.update");
    }
}
