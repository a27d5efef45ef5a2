//! Accounts, as administrators manage them: listing and reading (any administrator), creating,
//! changing, deactivating, deleting, setting a password, mailing a reset link and lifting a
//! lockout (staff members on ordinary accounts, superusers on any; see [`super::permissions`]).

use serde_json::{json, Value};
use tollgate_core::body::Payload;
use tollgate_store::{User, UserChanges, UserFilter};

use super::page::{Page, PageRequest};
use super::{target, Actor};
use crate::service::accounts::{self, profile_of, ChangedBy, NewAccount, PasswordChanged};
use crate::service::user_fields::{self, Mode, Problems};
use crate::service::{audit, Context, ServiceError};
use crate::throttle::LoginThrottle;
use crate::webhooks::{user_data, Event};

/// A page of the accounts `filter` selects, by id.
pub(crate) async fn list(
    ctx: &Context<'_>,
    filter: &UserFilter,
    request: PageRequest,
) -> Result<Page<User>, ServiceError> {
    let count = ctx.store.count_users(filter).await?;
    let window = request.window(count)?;
    let users = ctx
        .store
        .list_users(filter, window.limit, window.offset)
        .await?;
    Ok(window.page(users))
}

/// The account `user_id` names.
pub(crate) async fn get(ctx: &Context<'_>, user_id: i64) -> Result<User, ServiceError> {
    target(ctx, user_id).await
}

/// Creates an account from `payload`: the user fields and `password` by the rule registration
/// follows ([`accounts::create`]: normal forms, identifier clashes, the password policy unless
/// `password_rule` says otherwise, `user.created`), and the flags `is_active` (true by default),
/// `is_staff` and `is_superuser` (false by default). Making a staff member or a superuser is
/// for superusers, as granting either flag is ([`Actor::may_grant`]). The address counts as
/// confirmed: an administrator gave it. Recorded as `user.create` with the flags.
pub(crate) async fn create(
    ctx: &Context<'_>,
    actor: &Actor,
    payload: &Payload,
    password_rule: accounts::PasswordRule,
) -> Result<User, ServiceError> {
    let mut problems = Problems::default();
    let is_active = user_fields::flag(payload, "is_active", &mut problems).unwrap_or(true);
    let is_staff = user_fields::flag(payload, "is_staff", &mut problems).unwrap_or(false);
    let is_superuser = user_fields::flag(payload, "is_superuser", &mut problems).unwrap_or(false);
    // A flag left false grants nothing, as a flag sent unchanged in an edit.
    actor.may_grant(is_staff.then_some(true), is_superuser.then_some(true))?;
    let account = NewAccount {
        is_active,
        is_staff,
        is_superuser,
        email_unconfirmed: false,
        password_rule,
    };
    let user = accounts::create(ctx, payload, problems, &account).await?;
    tracing::info!(user_id = user.id, "user created by an administrator");
    let details = json!({
        "is_active": is_active,
        "is_staff": is_staff,
        "is_superuser": is_superuser,
    });
    audit::record(ctx, actor, "user.create", Some(&user), details).await?;
    Ok(user)
}

/// Changes account `user_id` from `payload`: any of the user fields (as a user's own `PATCH`
/// reads them, an address taking effect at once), and the flags `is_active`, `is_staff` and
/// `is_superuser`. Granting or taking away a flag is for superusers; an administrator cannot
/// deactivate their own account or take away their own flags. Deactivating ends the user's
/// sessions (see [`accounts::set_active`]). Recorded as `user.update` with the names of the
/// fields that changed.
pub(crate) async fn update(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
    payload: &Payload,
) -> Result<User, ServiceError> {
    let user = target(ctx, user_id).await?;
    actor.may_manage(&user)?;
    let mut problems = Problems::default();
    let changed_flag = |flag: Option<bool>, current: bool| flag.filter(|value| *value != current);
    let is_active = changed_flag(
        user_fields::flag(payload, "is_active", &mut problems),
        user.is_active,
    );
    let is_staff = changed_flag(
        user_fields::flag(payload, "is_staff", &mut problems),
        user.is_staff,
    );
    let is_superuser = changed_flag(
        user_fields::flag(payload, "is_superuser", &mut problems),
        user.is_superuser,
    );
    actor.may_grant(is_staff, is_superuser)?;
    if !actor.may_lock_out(&user) {
        if is_active == Some(false) {
            problems.add(
                "is_active",
                "You cannot deactivate your own account.".to_owned(),
            );
        }
        for (field, flag) in [("is_staff", is_staff), ("is_superuser", is_superuser)] {
            if flag == Some(false) {
                problems.add(field, "You cannot take away your own status.".to_owned());
            }
        }
    }
    let fields = user_fields::read(ctx.settings, payload, Mode::Patch, &mut problems);
    user_fields::check_identifiers(ctx, &fields, Some(&user), &mut problems).await?;
    problems.into_result()?;
    let profile = (!fields.profile.is_empty()).then(|| {
        let mut profile = profile_of(&user);
        profile.extend(fields.profile.clone());
        Value::Object(profile).to_string()
    });
    let changes = UserChanges {
        username: fields.username.filter(|value| *value != user.username),
        email: fields.email.filter(|value| *value != user.email),
        phone: fields.phone.filter(|value| *value != user.phone),
        first_name: fields.first_name.filter(|value| *value != user.first_name),
        last_name: fields.last_name.filter(|value| *value != user.last_name),
        profile: profile.filter(|value| *value != user.profile),
    };
    let mut changed: Vec<&str> = [
        ("username", changes.username.is_some()),
        ("email", changes.email.is_some()),
        ("phone", changes.phone.is_some()),
        ("first_name", changes.first_name.is_some()),
        ("last_name", changes.last_name.is_some()),
        ("profile", changes.profile.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, is_changed)| is_changed.then_some(name))
    .collect();
    if !changed.is_empty() {
        accounts::apply(ctx, user.id, &changes).await?;
    }
    if is_staff.is_some() || is_superuser.is_some() {
        if !ctx
            .store
            .set_privileges(user.id, is_staff, is_superuser)
            .await?
        {
            return Err(ServiceError::NotFound);
        }
        ctx.users_changed();
        changed.extend(is_staff.map(|_| "is_staff"));
        changed.extend(is_superuser.map(|_| "is_superuser"));
    }
    if let Some(active) = is_active {
        accounts::set_active(ctx, &user, active).await?;
        changed.push("is_active");
    }
    let updated = target(ctx, user.id).await?;
    if changed.is_empty() {
        return Ok(updated);
    }
    if is_staff.is_some() || is_superuser.is_some() {
        // `apply` and `set_active` announce their own changes; a change of flags alone is
        // announced here.
        ctx.emit(Event::UserUpdated, json!({ "user": user_data(&updated) }))
            .await;
    }
    let mut details = json!({ "changed": changed });
    for (name, flag) in [
        ("is_active", is_active),
        ("is_staff", is_staff),
        ("is_superuser", is_superuser),
    ] {
        if let (Some(flag), Some(details)) = (flag, details.as_object_mut()) {
            details.insert(name.to_owned(), json!(flag));
        }
    }
    audit::record(ctx, actor, "user.update", Some(&updated), details).await?;
    Ok(updated)
}

/// Activates or deactivates account `user_id` (see [`accounts::set_active`]); returns how many
/// sessions ended. An administrator cannot deactivate their own account. Recorded as
/// `user.update`.
pub(crate) async fn set_active(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
    active: bool,
) -> Result<u64, ServiceError> {
    let user = target(ctx, user_id).await?;
    actor.may_manage(&user)?;
    if !active && !actor.may_lock_out(&user) {
        return Err(ServiceError::Refused {
            detail: "You cannot deactivate your own account.",
            code: "own_account",
        });
    }
    let ended = accounts::set_active(ctx, &user, active).await?;
    let details = json!({ "changed": ["is_active"], "is_active": active });
    audit::record(ctx, actor, "user.update", Some(&user), details).await?;
    Ok(ended)
}

/// Deletes account `user_id`: its sessions go with it, and its tokens are refused from then
/// on (the user they name is gone). An administrator cannot delete their own account. Emits
/// `user.deleted`; recorded as `user.delete`. Of two deletions at once, one succeeds and the
/// other finds no account.
pub(crate) async fn delete(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
) -> Result<(), ServiceError> {
    let user = target(ctx, user_id).await?;
    actor.may_manage(&user)?;
    if !actor.may_lock_out(&user) {
        return Err(ServiceError::Refused {
            detail: "You cannot delete your own account.",
            code: "own_account",
        });
    }
    if !ctx.store.delete_user(user.id).await? {
        return Err(ServiceError::NotFound);
    }
    ctx.users_changed();
    tracing::info!(user_id = user.id, "user deleted");
    ctx.emit(Event::UserDeleted, json!({ "user": user_data(&user) }))
        .await;
    let details = json!({ "username": user.username });
    audit::record(ctx, actor, "user.delete", Some(&user), details).await?;
    Ok(())
}

/// Sets the password of account `user_id` to `new_password`, as a password change by an
/// administrator does ([`accounts::change_password`]: the password policy, every session
/// ended). Recorded as `user.set_password`, without the password.
pub(crate) async fn set_password(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
    new_password: String,
) -> Result<PasswordChanged, ServiceError> {
    let user = target(ctx, user_id).await?;
    actor.may_manage(&user)?;
    let changed =
        accounts::change_password(ctx, &user, new_password, ChangedBy::Administrator).await?;
    let details = json!({ "refresh_tokens_blacklisted": changed.blacklisted });
    audit::record(ctx, actor, "user.set_password", Some(&user), details).await?;
    Ok(changed)
}

/// Mails account `user_id` a password reset link (see
/// [`crate::service::recovery::mail_reset_link`]). Recorded as `user.send_password_reset`.
pub(crate) async fn send_password_reset(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
) -> Result<(), ServiceError> {
    let user = target(ctx, user_id).await?;
    actor.may_manage(&user)?;
    if user.email.is_empty() {
        return Err(ServiceError::Refused {
            detail: "The user has no email address.",
            code: "no_email",
        });
    }
    crate::service::recovery::mail_reset_link(ctx, &user).await?;
    audit::record(
        ctx,
        actor,
        "user.send_password_reset",
        Some(&user),
        json!({}),
    )
    .await
}

/// Removes every second factor of account `user_id` (a lost phone), with its recovery codes,
/// and ends its sessions (see [`crate::service::mfa::reset`]). Returns how many factors went.
/// Recorded as `user.mfa_reset`.
pub(crate) async fn reset_mfa(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
) -> Result<u64, ServiceError> {
    let user = target(ctx, user_id).await?;
    actor.may_manage(&user)?;
    let removed = crate::service::mfa::reset(ctx, &user).await?;
    let details = json!({ "factors_removed": removed });
    audit::record(ctx, actor, "user.mfa_reset", Some(&user), details).await?;
    Ok(removed)
}

/// Lifts the lockout of account `user_id` and forgets its failed logins (see
/// [`crate::service::login::unlock`]; `throttle` is a running server's). Returns whether it
/// was locked. Recorded as `user.unlock`.
pub(crate) async fn unlock(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
    throttle: Option<&LoginThrottle>,
) -> Result<bool, ServiceError> {
    let user = target(ctx, user_id).await?;
    actor.may_manage(&user)?;
    let was_locked = crate::service::login::unlock(ctx, &user, throttle).await?;
    let details = json!({ "was_locked": was_locked });
    audit::record(ctx, actor, "user.unlock", Some(&user), details).await?;
    Ok(was_locked)
}
