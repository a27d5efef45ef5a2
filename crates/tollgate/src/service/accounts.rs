//! Account operations: registering, changing one's own fields, changing a password,
//! activating and deactivating, and reading the user fields that tokens and bodies are made of.

use serde_json::{json, Map, Value};
use tollgate_core::body::{BodyError, Payload};
use tollgate_core::identity::{fold, normalize_username};
use tollgate_core::password::UserAttribute;
use tollgate_core::settings::EmailVerification;
use tollgate_core::unix_now;
use tollgate_store::{NewUser, User, UserChanges};

use super::user_fields::{self, duplicate_error, Mode, Problems};
use super::{Context, ServiceError};
use crate::webhooks::{user_data, Event};

/// Registers an account from the fields of `payload` (USERNAME_FIELD, USER_REQUIRED_FIELDS,
/// the profile fields, and `password`): the creation rule of [`create`], the password against
/// the policy. With EMAIL_VERIFICATION on, the address waits for its activation link.
pub(crate) async fn register(ctx: &Context<'_>, payload: &Payload) -> Result<User, ServiceError> {
    let account = NewAccount {
        is_active: true,
        is_staff: false,
        is_superuser: false,
        email_unconfirmed: ctx.settings.email_verification != EmailVerification::None,
        password_rule: PasswordRule::Policy,
    };
    let user = create(ctx, payload, Problems::default(), &account).await?;
    tracing::info!(user_id = user.id, "user registered");
    if account.email_unconfirmed {
        super::verification::send_activation(ctx, &user).await?;
    }
    Ok(user)
}

/// Whether the password of a new account must pass the password policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PasswordRule {
    /// It must (registration, the admin API and the console).
    Policy,
    /// It need not: an operator at the command line chose it, as Django's `createsuperuser`
    /// takes any password given without input.
    Unchecked,
}

/// What a new account is given besides its fields: its flags, whether its address waits for
/// confirmation, and how its password is checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewAccount {
    pub(crate) is_active: bool,
    pub(crate) is_staff: bool,
    pub(crate) is_superuser: bool,
    pub(crate) email_unconfirmed: bool,
    pub(crate) password_rule: PasswordRule,
}

/// The one rule every new account is made by (registration, the admin API, the console and
/// `tollgate createuser`): the user fields of `payload` read and normalised as
/// [`user_fields::read`] reads them, `password`, identifiers unique across fields, the password
/// against the policy when `account` says so. Every problem is reported together, with
/// `problems` already found by the caller. Emits `user.created`.
pub(crate) async fn create(
    ctx: &Context<'_>,
    payload: &Payload,
    mut problems: Problems,
    account: &NewAccount,
) -> Result<User, ServiceError> {
    let fields = user_fields::read(ctx.settings, payload, Mode::Create, &mut problems);
    let password = match payload.char_fields(["password"]) {
        Ok([password]) => Some(password),
        Err(BodyError::Fields(mut found)) => {
            problems.append(&mut found);
            None
        }
        Err(other) => return Err(other.into()),
    };
    user_fields::check_identifiers(ctx, &fields, None, &mut problems).await?;
    if let (Some(password), PasswordRule::Policy) = (&password, account.password_rule) {
        for problem in ctx.policy.check(password, &fields.attributes()) {
            problems.add("password", problem);
        }
    }
    problems.into_result()?;
    let email = fields.email.clone().unwrap_or_default();
    let new = NewUser {
        username: fields
            .username
            .clone()
            .unwrap_or_else(|| normalize_username(&email.to_lowercase())),
        email,
        phone: fields.phone.clone().flatten(),
        first_name: fields.first_name.clone().unwrap_or_default(),
        last_name: fields.last_name.clone().unwrap_or_default(),
        profile: Value::Object(fields.profile.clone()).to_string(),
        password_hash: ctx.passwords.hash(password.unwrap_or_default()).await,
        is_active: account.is_active,
        is_staff: account.is_staff,
        is_superuser: account.is_superuser,
        email_unconfirmed: account.email_unconfirmed,
    };
    let user = ctx
        .store
        .create_user(&new, unix_now())
        .await
        .map_err(duplicate_error)?;
    ctx.emit(Event::UserCreated, json!({ "user": user_data(&user) }))
        .await;
    Ok(user)
}

/// Changes `user`'s own fields from `payload`: a full update (`Mode::Put`) requires what
/// registration requires, as Django REST framework's full update does, and a partial one
/// (`Mode::Patch`) changes only what is sent; in both, fields not sent keep their values. With
/// USER_UPDATE_NESTED the fields may come in an object under `user` (see
/// [`user_fields::unnest`]). The password, id, flags and dates are not changed here. When the
/// field tokens name the user by (USER_ID_FIELD) changes, the tokens carrying the old value
/// end: someone else may take it.
pub(crate) async fn update(
    ctx: &Context<'_>,
    user: &User,
    payload: &Payload,
    mode: Mode,
) -> Result<User, ServiceError> {
    let unnested = if ctx.settings.user_update_nested {
        user_fields::unnest(payload)?
    } else {
        None
    };
    let payload = unnested.as_ref().map_or(payload, |body| &body.payload);
    let mut problems = Problems::default();
    let fields = user_fields::read(ctx.settings, payload, mode, &mut problems);
    user_fields::check_identifiers(ctx, &fields, Some(user), &mut problems).await?;
    match &unnested {
        Some(body) => body.nest(problems)?,
        None => problems.into_result()?,
    }
    let profile = if fields.profile.is_empty() {
        None
    } else {
        let mut profile = profile_of(user);
        profile.extend(fields.profile);
        Some(Value::Object(profile).to_string())
    };
    // With verification on, a new address waits for its link to be followed; the current one
    // stays meanwhile (see `verification::request_email_change`).
    let mut email = fields.email;
    let mut new_address = None;
    if ctx.settings.email_verification != EmailVerification::None {
        if let Some(address) =
            email.take_if(|address| !address.is_empty() && fold(address) != fold(&user.email))
        {
            new_address = Some(address);
        }
    }
    let changes = UserChanges {
        username: fields.username,
        email,
        phone: fields.phone,
        first_name: fields.first_name,
        last_name: fields.last_name,
        profile,
    };
    if new_address.is_some() {
        // Refused before anything changes.
        super::verification::email_change_link(ctx)?;
    }
    let mut updated = apply(ctx, user.id, &changes).await?;
    if let Some(address) = new_address {
        super::verification::request_email_change(ctx, &updated, &address).await?;
        updated.pending_email = Some(address);
    }
    Ok(updated)
}

/// Applies `changes` to user `user_id`. When the field tokens name the user by changes, the
/// tokens carrying the old value end: someone else may take it.
pub(crate) async fn apply(
    ctx: &Context<'_>,
    user_id: i64,
    changes: &UserChanges,
) -> Result<User, ServiceError> {
    let updated = ctx
        .store
        .update_user(user_id, changes, ctx.user_id_field, unix_now())
        .await
        .map_err(duplicate_error)?
        .ok_or(ServiceError::UserNotFound)?;
    ctx.users_changed();
    if let Some(previous) = &updated.previous_identifier {
        // Tokens carry the old value, which someone else may now take: the store ended the
        // refresh and sliding tokens; access tokens carrying it are revoked, and are refused
        // anyway from `identified_since` on, which is only reached in the next second.
        crate::state::revoke_earlier_tokens(ctx.store, ctx.settings, previous).await?;
        crate::state::wait_for_second(updated.user.identified_since).await;
        tracing::info!(
            user_id = updated.user.id,
            revoked = updated.blacklisted,
            "token identifier changed"
        );
    }
    ctx.emit(
        Event::UserUpdated,
        json!({ "user": user_data(&updated.user) }),
    )
    .await;
    Ok(updated.user)
}

/// Activates or deactivates `user`. Deactivating (with CHECK_USER_IS_ACTIVE) ends their
/// sessions, so that reactivating them does not bring old logins back; their access tokens
/// are refused while they are inactive (the user is read with the token). Returns how many
/// sessions ended.
pub(crate) async fn set_active(
    ctx: &Context<'_>,
    user: &User,
    active: bool,
) -> Result<u64, ServiceError> {
    if !ctx.store.set_active(user.id, active).await? {
        return Err(ServiceError::UserNotFound);
    }
    ctx.users_changed();
    let changed = User {
        is_active: active,
        ..user.clone()
    };
    ctx.emit(Event::UserUpdated, json!({ "user": user_data(&changed) }))
        .await;
    // With CHECK_USER_IS_ACTIVE off, an inactive user's tokens keep working, as in simplejwt.
    if active || !ctx.settings.check_user_is_active {
        tracing::info!(user_id = user.id, active, "user activation changed");
        return Ok(0);
    }
    let ended = ctx.store.end_sessions(user.id, unix_now()).await?;
    tracing::info!(user_id = user.id, sessions = ended, "user deactivated");
    Ok(ended)
}

/// Who changes a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangedBy {
    /// The user, who had to give the current password (checked behind the login's throttle
    /// and lockout before this): whether it matched.
    User { old_password_matched: bool },
    /// An administrator (the admin API, the command line): no current password is asked.
    Administrator,
    /// The user, with a password reset link sent to their address.
    ResetLink,
}

/// A password changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PasswordChanged {
    /// How many refresh and sliding tokens of the user were blacklisted.
    pub(crate) blacklisted: u64,
}

/// Sets `user`'s password to `new_password`, once it passes the password policy (Django's
/// validators, with the user's own fields for the similarity rule) and, for a change by the
/// user, once the current password matched. Every refresh and sliding token issued to the user
/// so far is blacklisted and their sessions end (in the Redis denylist too when the store has
/// one); with ACCESS_TOKEN_REVOCATION their access tokens are revoked, on every instance, and
/// the answer waits for the next second so that a login with the new password gets a token
/// that is not.
pub(crate) async fn change_password(
    ctx: &Context<'_>,
    user: &User,
    new_password: String,
    by: ChangedBy,
) -> Result<PasswordChanged, ServiceError> {
    let old_password_wrong = by
        == ChangedBy::User {
            old_password_matched: false,
        };
    let problems = ctx.policy.check(&new_password, &password_attributes(user));
    if old_password_wrong || !problems.is_empty() {
        return Err(ServiceError::PasswordRefused {
            old_password_wrong,
            problems,
        });
    }
    let hash = ctx.passwords.hash(new_password).await;
    let blacklisted = ctx
        .store
        .change_password(user.id, &hash, unix_now())
        .await?
        .ok_or(ServiceError::UserNotFound)?;
    ctx.users_changed();
    let user_id = user.field(ctx.user_id_field);
    crate::state::revoke_earlier_tokens(ctx.store, ctx.settings, &user_id).await?;
    tracing::info!(user_id = user.id, revoked = blacklisted, "password changed");
    let (event, changed_by) = match by {
        ChangedBy::User { .. } => (Event::PasswordChanged, "user"),
        ChangedBy::Administrator => (Event::PasswordChanged, "administrator"),
        ChangedBy::ResetLink => (Event::PasswordReset, "reset_link"),
    };
    ctx.emit(event, json!({ "user": user_data(user), "by": changed_by }))
        .await;
    Ok(PasswordChanged { blacklisted })
}

/// What the similarity rule compares a password with, in Django's order.
pub(crate) fn password_attributes(user: &User) -> [UserAttribute<'_>; 4] {
    [
        ("username", user.username.as_str()),
        ("first name", user.first_name.as_str()),
        ("last name", user.last_name.as_str()),
        ("email address", user.email.as_str()),
    ]
    .map(|(verbose_name, value)| UserAttribute {
        verbose_name,
        value,
    })
}

/// One user field's value as a token claim: a built-in field or a profile field (null when
/// the user has none).
pub(crate) fn user_value(user: &User, field: &str) -> Value {
    match field {
        "id" => json!(user.id),
        "username" => json!(user.username),
        "email" => json!(user.email),
        "phone" => json!(user.phone),
        "first_name" => json!(user.first_name),
        "last_name" => json!(user.last_name),
        "is_staff" => json!(user.is_staff),
        "is_superuser" => json!(user.is_superuser),
        _ => profile_of(user).remove(field).unwrap_or(Value::Null),
    }
}

/// The user's profile fields (USER_PROFILE_FIELDS), as stored.
pub(crate) fn profile_of(user: &User) -> Map<String, Value> {
    match serde_json::from_str(&user.profile) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}
