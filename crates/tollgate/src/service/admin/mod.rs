//! Administration: what staff members and superusers do to accounts, sessions and keys, for
//! the admin API, the console and the commands alike. Every operation takes the acting
//! [`Actor`], checks its permission ([`permissions`], the one place that decides them), does
//! the work through the same functions the rest of the service uses, and records itself in the
//! audit log ([`super::audit`]).
//!
//! - [`users`]: listing, reading, creating (by the rule of [`super::accounts::create`]),
//!   changing and deleting accounts; setting a password, mailing a reset link, lifting a
//!   lockout.
//! - [`activity`]: a user's sessions (listing, revoking) and login history.
//! - [`console`]: the web console's sign-in, its sessions, and a user's page.
//! - [`page`]: lists cut into pages as Django REST framework cuts them.
//! - Keys and the audit log: below.

pub(crate) mod activity;
pub(crate) mod console;
pub(crate) mod page;
pub(crate) mod permissions;
pub(crate) mod users;

use serde_json::json;
use tollgate_core::{Algorithm, TokenCodec};
use tollgate_store::{AuditEntry, AuditFilter, User, UserField};

pub(crate) use super::audit::Actor;
use super::keys::{self, KeyInfo, Rotated};
use super::{Context, ServiceError};
use page::{Page, PageRequest};
pub(crate) use permissions::authorize;

/// The account `user_id` names, for an administrator: [`ServiceError::NotFound`] if none.
async fn target(ctx: &Context<'_>, user_id: i64) -> Result<User, ServiceError> {
    ctx.store
        .find_user(UserField::Id, &user_id.to_string())
        .await?
        .ok_or(ServiceError::NotFound)
}

/// The signing keys (superusers only).
pub(crate) async fn list_keys(
    ctx: &Context<'_>,
    actor: &Actor,
) -> Result<Vec<KeyInfo>, ServiceError> {
    actor.require_superuser()?;
    keys::list(ctx.settings, ctx.store).await
}

/// Rotates the signing key (superusers only; see [`keys::rotate`]); `codec` is a running
/// server's, which signs with the new key at once. Recorded as `keys.rotate`.
pub(crate) async fn rotate_keys(
    ctx: &Context<'_>,
    actor: &Actor,
    algorithm: Option<Algorithm>,
    publish_first: std::time::Duration,
    codec: Option<&TokenCodec>,
) -> Result<Rotated, ServiceError> {
    actor.require_superuser()?;
    let rotated = keys::rotate(ctx, algorithm, publish_first, codec).await?;
    let details = json!({
        "kid": rotated.kid,
        "algorithm": rotated.algorithm.as_str(),
        "retired": rotated.retired,
        "signs_from": rotated.signs_from,
    });
    super::audit::record(ctx, actor, "keys.rotate", None, details).await?;
    Ok(rotated)
}

/// A page of the audit log, newest first, of the entries `filter` selects.
pub(crate) async fn audit_log(
    ctx: &Context<'_>,
    filter: AuditFilter,
    request: PageRequest,
) -> Result<Page<AuditEntry>, ServiceError> {
    super::audit::entries(ctx, filter, request).await
}
