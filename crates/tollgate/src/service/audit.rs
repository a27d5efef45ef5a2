//! The audit log of administrative actions: who acted ([`Actor`]), what they did, on whom,
//! when and from where. Every operation an administrator can take, through the admin API or a
//! command, records itself here once it has succeeded; the log is read back a page at a time.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;
use tollgate_core::unix_now;
use tollgate_store::{AuditActor, AuditEntry, AuditFilter, NewAuditEntry, User};

use super::admin::page::{Page, PageRequest};
use super::{Context, ServiceError};

/// Who takes an administrative action.
#[derive(Debug, Clone)]
pub(crate) enum Actor {
    /// A staff member or superuser, through the admin API (or the console), from an address.
    Administrator {
        /// Their account, as stored when the request was authenticated.
        user: Arc<User>,
        /// Their client address.
        client: IpAddr,
    },
    /// A command of the command line: whoever can run it holds the database's credentials,
    /// so it may do everything.
    Command {
        /// The operating-system user who ran it, as the environment names them.
        os_user: String,
    },
}

impl Actor {
    /// The actor of a command run by the current operating-system user.
    pub(crate) fn command() -> Actor {
        let os_user = ["USER", "LOGNAME", "USERNAME"]
            .into_iter()
            .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
            .unwrap_or_else(|| "unknown".to_owned());
        Actor::Command { os_user }
    }

    /// The administrator's own account; `None` for a command.
    pub(crate) fn account(&self) -> Option<&User> {
        match self {
            Actor::Administrator { user, .. } => Some(user),
            Actor::Command { .. } => None,
        }
    }

    fn recorded(&self) -> AuditActor {
        match self {
            Actor::Administrator { user, .. } => AuditActor::User {
                id: user.id,
                username: user.username.clone(),
            },
            Actor::Command { os_user } => AuditActor::Command {
                os_user: os_user.clone(),
            },
        }
    }
}

/// Records that `actor` did `action` (`user.update`, `keys.rotate`...) to `target`, with
/// `details` (a JSON object of what changed: never a password or a secret).
pub(crate) async fn record(
    ctx: &Context<'_>,
    actor: &Actor,
    action: &str,
    target: Option<&User>,
    details: Value,
) -> Result<(), ServiceError> {
    let client = match actor {
        Actor::Administrator { client, .. } => Some(client.to_string()),
        Actor::Command { .. } => None,
    };
    let details = details.to_string();
    ctx.store
        .record_audit(&NewAuditEntry {
            actor: &actor.recorded(),
            action,
            target: target.map(|user| (user.id, user.username.as_str())),
            details: &details,
            client_addr: client.as_deref(),
            at: unix_now(),
        })
        .await?;
    tracing::info!(
        action,
        target = target.map(|user| user.id),
        "administrative action recorded"
    );
    Ok(())
}

/// A page of the audit log, newest first, of the entries `filter` selects.
pub(crate) async fn entries(
    ctx: &Context<'_>,
    filter: AuditFilter,
    request: PageRequest,
) -> Result<Page<AuditEntry>, ServiceError> {
    let count = ctx.store.count_audit(filter).await?;
    let window = request.window(count)?;
    let entries = ctx
        .store
        .audit_entries(filter, window.limit, window.offset)
        .await?;
    Ok(window.page(entries))
}
