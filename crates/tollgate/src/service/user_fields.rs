//! The user fields and their rules, shared by registration, a change of one's own fields and
//! the administration of users: lengths and formats as Django's `User` model has them, the
//! normal forms identifiers are stored in, and the uniqueness of identifiers across fields.

use serde_json::{Map, Value};
use tollgate_core::body::Payload;
use tollgate_core::identity::{fold, normalize_email, normalize_username};
use tollgate_core::password::UserAttribute;
use tollgate_core::Settings;
use tollgate_store::{Clash, Identifiers, StoreError, User, UserField};

use super::{Context, FieldErrors, ServiceError};

/// Django's limits on `auth_user` columns.
const MAX_USERNAME: usize = 150;
const MAX_NAME: usize = 150;
const MAX_EMAIL: usize = 254;
const MAX_PHONE: usize = 32;

/// What a request does with the fields: which are required.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Registration: the required fields must be sent.
    Create,
    /// A full update (`PUT`): as registration.
    Put,
    /// A partial update (`PATCH`): only what is sent.
    Patch,
}

/// Field errors gathered in the order the fields are declared.
#[derive(Default)]
pub(crate) struct Problems(FieldErrors);

impl Problems {
    pub(crate) fn add(&mut self, field: &str, message: String) {
        match self.0.iter_mut().find(|(name, _)| name == field) {
            Some((_, messages)) => messages.push(message),
            None => self.0.push((field.to_owned(), vec![message])),
        }
    }

    /// Takes the problems of fields read elsewhere (by the body's own rules).
    pub(crate) fn append(&mut self, found: &mut FieldErrors) {
        self.0.append(found);
    }

    /// The refusal, if any field has a problem.
    pub(crate) fn into_result(self) -> Result<(), ServiceError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::InvalidFields(self.0))
        }
    }
}

/// The user fields a request sent, validated; `None` for those not sent.
#[derive(Default)]
pub(crate) struct UserFields {
    pub(crate) username: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) phone: Option<Option<String>>,
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) profile: Map<String, Value>,
}

impl UserFields {
    /// What the similarity rule compares a password with, in Django's order.
    pub(crate) fn attributes(&self) -> Vec<UserAttribute<'_>> {
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
pub(crate) fn read(
    settings: &Settings,
    payload: &Payload,
    mode: Mode,
    errors: &mut Problems,
) -> UserFields {
    let required = |field: &str| {
        mode != Mode::Patch
            && (settings.username_field.as_str() == field
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

/// The user's own fields, which a user serializer nested in a profile's holds.
const BUILT_IN: [&str; 5] = ["username", "email", "phone", "first_name", "last_name"];

/// The field that holds the user's fields in a nested body (USER_UPDATE_NESTED).
pub(crate) const NESTED_USER: &str = "user";

/// A nested body read as a flat one: the fields of the object under [`NESTED_USER`] with the
/// others (the nested value winning), and the names of the fields that were inside it.
pub(crate) struct Unnested {
    pub(crate) payload: Payload,
    inside: Vec<String>,
    outside: Vec<String>,
}

impl Unnested {
    /// `problems`' refusal, as Django REST framework reports a nested serializer's errors: those
    /// of the fields sent inside the object, and of the built-in user fields sent nowhere (a
    /// required one missing), under it; the others beside it.
    pub(crate) fn nest(&self, problems: Problems) -> Result<(), ServiceError> {
        let belongs_inside = |field: &str| {
            self.inside.iter().any(|f| f == field)
                || (BUILT_IN.contains(&field) && !self.outside.iter().any(|f| f == field))
        };
        let (inner, outer): (FieldErrors, FieldErrors) = problems
            .0
            .into_iter()
            .partition(|(field, _)| belongs_inside(field));
        if inner.is_empty() {
            return Problems(outer).into_result();
        }
        Err(ServiceError::InvalidNestedFields {
            nested: NESTED_USER,
            inner,
            outer,
        })
    }
}

/// The body with its [`NESTED_USER`] object read as flat fields; `None` when it has no such
/// field (a flat body, or a form). A value there that is not an object is refused with DRF's
/// words for it.
pub(crate) fn unnest(payload: &Payload) -> Result<Option<Unnested>, ServiceError> {
    let Payload::Json(map) = payload else {
        return Ok(None);
    };
    let Some(value) = map.get(NESTED_USER) else {
        return Ok(None);
    };
    let Value::Object(inner) = value else {
        let message = match value {
            Value::Null => "This field may not be null.".to_owned(),
            // The body's own rule names the type as DRF does.
            other => match Payload::parse(Some("application/json"), other.to_string().as_bytes()) {
                Err(tollgate_core::body::BodyError::NonField(message)) => message,
                _ => "Invalid data.".to_owned(),
            },
        };
        return Err(ServiceError::InvalidNestedFields {
            nested: NESTED_USER,
            inner: vec![("non_field_errors".to_owned(), vec![message])],
            outer: Vec::new(),
        });
    };
    let mut flat = map.clone();
    flat.remove(NESTED_USER);
    let outside = flat.keys().cloned().collect();
    flat.extend(inner.clone());
    Ok(Some(Unnested {
        payload: Payload::Json(flat),
        inside: inner.keys().cloned().collect(),
        outside,
    }))
}

/// A boolean field (`is_active`, `is_staff`...) read as DRF's `BooleanField` reads it: JSON
/// `true`/`false`, or `true`, `yes`, `on`, `1` and their opposites in any case; `None` when
/// absent or refused (the refusal added to `errors`).
pub(crate) fn flag(payload: &Payload, field: &str, errors: &mut Problems) -> Option<bool> {
    let value = payload.value(field)?;
    let read = match &value {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
            "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
            _ => None,
        },
        Value::Null => {
            errors.add(field, "This field may not be null.".to_owned());
            return None;
        }
        _ => None,
    };
    if read.is_none() {
        errors.add(field, "Must be a valid boolean.".to_owned());
    }
    read
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
pub(crate) async fn check_identifiers(
    ctx: &Context<'_>,
    fields: &UserFields,
    own: Option<&User>,
    errors: &mut Problems,
) -> Result<(), ServiceError> {
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
        if let Some(other) = ctx.store.find_user(field, value).await? {
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
    if let Some(clash) = ctx.store.identifier_clash(identifiers, own_id).await? {
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
            ctx.login_fields,
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
pub(crate) fn duplicate_error(err: StoreError) -> ServiceError {
    match err {
        StoreError::Duplicate { field } => {
            ServiceError::InvalidFields(vec![(field.to_owned(), vec![duplicate_message(field)])])
        }
        StoreError::Clash(clash) => {
            ServiceError::InvalidFields(vec![(clash.field.to_owned(), vec![clash_message(clash)])])
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
}
