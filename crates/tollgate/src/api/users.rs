//! The accounts API: registration, the current user, and password change.
//!
//! Bodies and validation errors have Django REST framework's shapes: a user is a flat JSON
//! object (profile fields beside the built-in ones, never the password), and a refusal is
//! `{"field": ["message", …]}` with status 400.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::Json;
use serde_json::{json, Map, Value};
use tollgate_core::body::BodyError;
use tollgate_core::identity::{fold, normalize_email, normalize_username};
use tollgate_core::password::UserAttribute;
use tollgate_core::unix_now;
use tollgate_store::{Clash, Identifiers, NewUser, StoreError, User, UserChanges, UserField};

use super::body::Payload;
use super::login::check_own_password;
use crate::auth::AuthenticatedUser;
use crate::client::{ClientAddr, UserAgent};
use crate::error::ApiError;
use crate::service::accounts::{self, profile_of, Accounts, ChangedBy};
use crate::state::AppState;

/// Django's limits on `auth_user` columns.
const MAX_USERNAME: usize = 150;
const MAX_NAME: usize = 150;
const MAX_EMAIL: usize = 254;
const MAX_PHONE: usize = 32;

/// `POST /api/users/`: creates an account; 201 with the user.
///
/// Counts against REGISTRATIONS_PER_ADDRESS before anything is looked up, successful or not:
/// the "already exists" answers would otherwise tell which names are taken at any rate.
pub(crate) async fn register(
    State(state): State<AppState>,
    client: ClientAddr,
    payload: Payload,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state
        .registration_throttle
        .reserve(client.0)
        .await
        .map_err(ApiError::Throttled)?;
    let mut errors = FieldErrors::default();
    let fields = read_fields(&state, &payload, Mode::Create, &mut errors);
    let password = match payload.char_fields(["password"]) {
        Ok([password]) => Some(password),
        Err(BodyError::Fields(mut found)) => {
            errors.0.append(&mut found);
            None
        }
        Err(other) => return Err(other.into()),
    };
    check_identifiers(&state, &fields, None, &mut errors).await?;
    if let Some(password) = &password {
        let attributes = fields.attributes();
        for problem in state.policy.check(password, &attributes) {
            errors.add("password", problem);
        }
    }
    let Some(password) = password.filter(|_| errors.0.is_empty()) else {
        return Err(errors.into_error());
    };
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
        password_hash: state.passwords.hash(password).await,
        is_active: true,
        is_staff: false,
        is_superuser: false,
    };
    let user = state
        .store
        .create_user(&new, unix_now())
        .await
        .map_err(duplicate_error)?;
    tracing::info!(user_id = user.id, "user registered");
    Ok((StatusCode::CREATED, Json(user_json(&state, &user))))
}

/// `GET /api/user/`: the authenticated user.
pub(crate) async fn me(
    State(state): State<AppState>,
    auth: AuthenticatedUser,
) -> Result<Json<Value>, ApiError> {
    let auth = auth.stored(&state).await?;
    Ok(Json(user_json(&state, &auth.user)))
}

/// `PUT` and `PATCH /api/user/`: changes the authenticated user's own fields. `PUT` requires
/// the fields registration requires; `PATCH` changes only what is sent. The password, id,
/// flags and dates cannot be changed here.
pub(crate) async fn update_me(
    State(state): State<AppState>,
    method: Method,
    auth: AuthenticatedUser,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let auth = auth.stored(&state).await?;
    let mode = if method == Method::PATCH {
        Mode::Patch
    } else {
        Mode::Put
    };
    let mut errors = FieldErrors::default();
    let fields = read_fields(&state, &payload, mode, &mut errors);
    check_identifiers(&state, &fields, Some(&auth.user), &mut errors).await?;
    if !errors.0.is_empty() {
        return Err(errors.into_error());
    }
    let profile = if fields.profile.is_empty() {
        None
    } else {
        let mut profile = profile_of(&auth.user);
        profile.extend(fields.profile.clone());
        Some(Value::Object(profile).to_string())
    };
    let changes = UserChanges {
        username: fields.username,
        email: fields.email,
        phone: fields.phone,
        first_name: fields.first_name,
        last_name: fields.last_name,
        profile,
    };
    let now = unix_now();
    let updated = state
        .store
        .update_user(auth.user.id, &changes, state.user_id_field, now)
        .await
        .map_err(duplicate_error)?
        .ok_or(ApiError::UserNotFound)?;
    state.user_cache.clear();
    if let Some(previous) = &updated.previous_identifier {
        // Tokens carry the old value, which someone else may now take: the store ended the
        // refresh and sliding tokens; access tokens carrying it are revoked, and are refused
        // anyway from `identified_since` on, which is only reached in the next second.
        crate::state::revoke_earlier_tokens(&state.store, &state.settings, previous).await?;
        crate::state::wait_for_second(updated.user.identified_since).await;
        tracing::info!(
            user_id = updated.user.id,
            revoked = updated.blacklisted,
            "token identifier changed"
        );
    }
    Ok(Json(user_json(&state, &updated.user)))
}

/// `POST /api/user/password/`: changes the password given the old one (see
/// [`accounts::change_password`]).
pub(crate) async fn change_password(
    State(state): State<AppState>,
    client: ClientAddr,
    agent: UserAgent,
    auth: AuthenticatedUser,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let auth = auth.stored(&state).await?;
    let [old_password, new_password] = payload.char_fields(["old_password", "new_password"])?;
    let user = &auth.user;
    // Behind the login's throttle and lockout: a stolen access token is no free password oracle.
    let matched = check_own_password(&state, client, &agent, user, old_password).await?;
    let by = ChangedBy::User {
        old_password_matched: matched,
    };
    accounts::change_password(&Accounts::of(&state), user, new_password, by).await?;
    Ok(Json(json!({ "detail": "New password has been saved." })))
}

/// The user as clients see it: built-in fields, then the configured profile fields.
pub(crate) fn user_json(state: &AppState, user: &User) -> Value {
    let mut body = json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "phone": user.phone,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "date_joined": timestamp(Some(user.date_joined)),
        "last_login": timestamp(user.last_login),
    });
    let profile = profile_of(user);
    if let Value::Object(map) = &mut body {
        for field in &state.settings.user_profile_fields {
            map.insert(
                field.clone(),
                profile.get(field).cloned().unwrap_or(Value::Null),
            );
        }
    }
    body
}

/// Epoch seconds as DRF writes a `DateTimeField` in UTC.
pub(super) fn timestamp(at: Option<i64>) -> Value {
    let Some(at) = at.and_then(|at| u64::try_from(at).ok()) else {
        return Value::Null;
    };
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(at);
    Value::String(humantime::format_rfc3339_seconds(time).to_string())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Put,
    Patch,
}

/// Field errors gathered in the order the fields are declared.
#[derive(Default)]
struct FieldErrors(Vec<(String, Vec<String>)>);

impl FieldErrors {
    fn add(&mut self, field: &str, message: String) {
        match self.0.iter_mut().find(|(name, _)| name == field) {
            Some((_, messages)) => messages.push(message),
            None => self.0.push((field.to_owned(), vec![message])),
        }
    }

    fn into_error(self) -> ApiError {
        ApiError::Fields(self.0)
    }
}

/// The user fields a request sent, validated; `None` for those not sent.
#[derive(Default)]
struct UserFields {
    username: Option<String>,
    email: Option<String>,
    phone: Option<Option<String>>,
    first_name: Option<String>,
    last_name: Option<String>,
    profile: Map<String, Value>,
}

impl UserFields {
    /// What the similarity rule compares a password with, in Django's order.
    fn attributes(&self) -> Vec<UserAttribute<'_>> {
        [
            ("username", &self.username),
            ("first name", &self.first_name),
            ("last name", &self.last_name),
            ("email address", &self.email),
        ]
        .into_iter()
        .filter_map(|(verbose_name, value)| {
            value.as_deref().map(|value| UserAttribute {
                verbose_name,
                value,
            })
        })
        .collect()
    }
}

/// Reads and validates the user fields of a body. Required: USERNAME_FIELD and
/// USER_REQUIRED_FIELDS, except in a `PATCH`.
fn read_fields(
    state: &AppState,
    payload: &Payload,
    mode: Mode,
    errors: &mut FieldErrors,
) -> UserFields {
    let settings = &state.settings;
    let required = |field: &str| {
        mode != Mode::Patch
            && (settings.username_field == field
                || settings.user_required_fields.iter().any(|f| f == field))
    };
    let mut text = |field: &str, max: usize| -> Option<String> {
        match payload.text(field) {
            Err(message) => {
                errors.add(field, message.to_owned());
                None
            }
            Ok(None) if required(field) => {
                errors.add(field, "This field is required.".to_owned());
                None
            }
            Ok(Some(value)) if value.is_empty() && required(field) => {
                errors.add(field, "This field may not be blank.".to_owned());
                None
            }
            Ok(Some(value)) if value.chars().count() > max => {
                errors.add(
                    field,
                    format!("Ensure this field has no more than {max} characters."),
                );
                None
            }
            Ok(value) => value,
        }
    };
    // Stored in Django's normal forms, so that one name has one spelling: `ａｄｍｉｎ` is `admin`.
    let mut fields = UserFields {
        username: text("username", MAX_USERNAME).map(|name| normalize_username(&name)),
        email: text("email", MAX_EMAIL).map(|email| normalize_email(&email)),
        phone: text("phone", MAX_PHONE).map(|phone| Some(phone).filter(|p| !p.is_empty())),
        first_name: text("first_name", MAX_NAME),
        last_name: text("last_name", MAX_NAME),
        profile: Map::new(),
    };
    // A username is never blank; when people log in by email and send none, registration
    // takes the email address as the username.
    if let Some(username) = &fields.username {
        if username.is_empty() {
            errors.add("username", "This field may not be blank.".to_owned());
        } else if !username
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'))
        {
            errors.add(
                "username",
                "Enter a valid username. This value may contain only letters, numbers, and \
                 @/./+/-/_ characters."
                    .to_owned(),
            );
        }
    }
    if let Some(email) = &fields.email {
        if !email.is_empty() && !valid_email(email) {
            errors.add("email", "Enter a valid email address.".to_owned());
        }
    }
    if let Some(Some(phone)) = &fields.phone {
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        let allowed = phone
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'));
        if !allowed || digits < 3 {
            errors.add("phone", "Enter a valid phone number.".to_owned());
        }
    }
    for field in &settings.user_profile_fields {
        match payload.value(field) {
            Some(value) => {
                fields.profile.insert(field.clone(), value);
            }
            None if required(field) => errors.add(field, "This field is required.".to_owned()),
            None => {}
        }
    }
    fields
}

/// Django's `EmailValidator`, in its essentials: one `@`, a non-empty local part without
/// spaces, a domain of dot-separated labels of letters, digits and hyphens.
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

/// Adds DRF's uniqueness errors for a username, email or phone that another user holds, and
/// refusals of identifiers that another user holds under another field or that login could
/// take for someone else's (see [`username_mimics`]). `own` is the user being updated.
async fn check_identifiers(
    state: &AppState,
    fields: &UserFields,
    own: Option<&User>,
    errors: &mut FieldErrors,
) -> Result<(), ApiError> {
    let own_id = own.map(|user| user.id);
    let phone = fields.phone.as_ref().and_then(|p| p.as_deref());
    let candidates = [
        (UserField::Username, "username", fields.username.as_deref()),
        (UserField::Email, "email", fields.email.as_deref()),
        (UserField::Phone, "phone", phone),
    ];
    for (field, name, value) in candidates {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        if errors.0.iter().any(|(f, _)| f == name) {
            continue;
        }
        if let Some(other) = state.store.find_user(field, value).await? {
            if Some(other.id) != own_id {
                errors.add(name, duplicate_message(name));
            }
        }
    }
    // Values refused already are not checked again.
    let refused = |name: &str| errors.0.iter().any(|(f, _)| f == name);
    let identifiers = Identifiers {
        username: fields.username.as_deref().filter(|_| !refused("username")),
        email: fields.email.as_deref().filter(|_| !refused("email")),
        phone: phone.filter(|_| !refused("phone")),
    };
    if let Some(clash) = state.store.identifier_clash(identifiers, own_id).await? {
        errors.add(clash.field, clash_message(clash));
    }
    // One reason at a time: a username that is someone's email also looks like one.
    let clashed = |name: &str| errors.0.iter().any(|(f, _)| f == name);
    if let Some(username) = identifiers.username.filter(|_| !clashed("username")) {
        let email = fields
            .email
            .as_deref()
            .or(own.map(|user| user.email.as_str()));
        let phone = match &fields.phone {
            Some(phone) => phone.as_deref(),
            None => own.and_then(|user| user.phone.as_deref()),
        };
        let looks_like = username_mimics(
            &state.login_fields,
            username,
            email.unwrap_or_default(),
            phone.unwrap_or_default(),
        );
        if let Some(message) = looks_like {
            errors.add("username", message.to_owned());
        }
    }
    Ok(())
}

/// Why a username that login could read as an email address or phone number other than the
/// account's own is refused, when that kind of identifier is among LOGIN_FIELDS: whoever later
/// holds that address or number would find it taken at login. Registration, update and the
/// command line ask it alike.
pub(crate) fn username_mimics(
    login_fields: &[UserField],
    username: &str,
    own_email: &str,
    own_phone: &str,
) -> Option<&'static str> {
    if login_fields.contains(&UserField::Email)
        && username.contains('@')
        && fold(username) != fold(own_email)
    {
        return Some("A username containing @ must be the user's own email address.");
    }
    let phone_like = username
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
        && username.chars().filter(char::is_ascii_digit).count() >= 3;
    if login_fields.contains(&UserField::Phone) && phone_like && username != own_phone {
        return Some(
            "A username that looks like a phone number must be the user's own phone number.",
        );
    }
    None
}

/// Why an identifier equal to another account's identifier of another kind is refused.
pub(crate) fn clash_message(clash: Clash) -> String {
    fn name(field: &str) -> &str {
        match field {
            "email" => "email address",
            "phone" => "phone number",
            other => other,
        }
    }
    format!(
        "This {} is another user's {}.",
        name(clash.field),
        name(clash.other)
    )
}

/// Django's words for a taken unique value.
fn duplicate_message(field: &str) -> String {
    if field == "username" {
        "A user with that username already exists.".to_owned()
    } else {
        format!("user with this {field} already exists.")
    }
}

/// A unique violation or clash that slipped past [`check_identifiers`] (a concurrent
/// request) reads the same.
fn duplicate_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Duplicate { field } => {
            ApiError::Fields(vec![(field.to_owned(), vec![duplicate_message(field)])])
        }
        StoreError::Clash(clash) => {
            ApiError::Fields(vec![(clash.field.to_owned(), vec![clash_message(clash)])])
        }
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_like_djangos_validator() {
        for good in [
            "ann@example.com",
            "a.b+tag@mail.example.org",
            "ünï@exämple.de",
        ] {
            assert!(valid_email(good), "{good}");
        }
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "ann @example.com",
            "ann@exa_mple.com",
            "ann..b@example.com",
            "ann@-example.com",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn dates_are_written_as_drf_does() {
        assert_eq!(
            timestamp(Some(1_700_000_000)),
            json!("2023-11-14T22:13:20Z")
        );
        assert_eq!(timestamp(None), Value::Null);
    }
}
