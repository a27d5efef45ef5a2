//! `tollgate createsuperuser` and `tollgate createuser`: accounts made with the admin API's
//! rules ([`admin::users::create`]), recorded in the audit log.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use tollgate_core::body::Payload;
use tollgate_core::settings::UsernameField;
use tollgate_core::Settings;

use crate::service::accounts::PasswordRule;
use crate::service::admin;
use crate::service::audit::Actor;
use crate::service::{ServiceError, Standalone};

/// Options of `createsuperuser` and `createuser`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The username (asked for if missing and input is allowed). With USERNAME_FIELD = email
    /// it is optional and never asked for: the email address is the username, as
    /// registration makes it.
    #[arg(long)]
    username: Option<String>,
    /// The email address.
    #[arg(long)]
    email: Option<String>,
    /// The phone number.
    #[arg(long)]
    phone: Option<String>,
    /// Given name.
    #[arg(long)]
    first_name: Option<String>,
    /// Family name.
    #[arg(long)]
    last_name: Option<String>,
    /// A profile field named in USER_PROFILE_FIELDS, as NAME=VALUE (repeatable). A VALUE that
    /// is JSON keeps its type (`money=12.5` a number, `active=true` a boolean, `code="007"`
    /// the text 007); any other VALUE is text.
    #[arg(long = "profile", value_name = "NAME=VALUE")]
    profile: Vec<String>,
    /// Profile fields as one JSON object, e.g. `{"money": 12.5, "tags": ["a"]}`; --profile
    /// values are added to it.
    #[arg(long = "profile-json", value_name = "OBJECT")]
    profile_json: Option<String>,
    /// Ask nothing: the username comes from --username and the password from
    /// TOLLGATE_SUPERUSER_PASSWORD (createsuperuser) or TOLLGATE_USER_PASSWORD (createuser).
    #[arg(long)]
    no_input: bool,
    /// Make the user a staff member, who may use the admin API on ordinary accounts
    /// (createsuperuser makes staff superusers anyway).
    #[arg(long)]
    staff: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Superuser,
    User,
}

impl Kind {
    fn password_env(self) -> &'static str {
        match self {
            Kind::Superuser => "TOLLGATE_SUPERUSER_PASSWORD",
            Kind::User => "TOLLGATE_USER_PASSWORD",
        }
    }
}

pub(crate) async fn run(settings: Settings, args: Args, kind: Kind) -> anyhow::Result<()> {
    let no_input = args.no_input;
    // Logging in by email, a user needs no username of their own, as with a Django user model
    // whose USERNAME_FIELD is `email`.
    let by_email = settings.username_field == UsernameField::Email;
    let username = match args.username {
        Some(username) => Some(username),
        None if by_email => None,
        None if no_input => bail!("--username is required with --no-input"),
        None => Some(prompt("Username: ")?),
    };
    let mut fields = OtherFields::from_args(
        &settings,
        args.email,
        args.phone,
        args.first_name,
        args.last_name,
        Profile {
            json: args.profile_json.as_deref(),
            pairs: &args.profile,
        },
    )?;
    fields.complete(&settings, no_input)?;
    let password = if no_input {
        std::env::var(kind.password_env())
            .ok()
            .filter(|p| !p.is_empty())
            .with_context(|| format!("set {} to the new user's password", kind.password_env()))?
    } else {
        prompt_password()?
    };
    let superuser = kind == Kind::Superuser;
    let mut body = serde_json::Map::new();
    if let Some(username) = username {
        body.insert("username".into(), username.into());
    }
    body.insert("email".into(), fields.email.into());
    if let Some(phone) = fields.phone {
        body.insert("phone".into(), phone.into());
    }
    body.insert("first_name".into(), fields.first_name.into());
    body.insert("last_name".into(), fields.last_name.into());
    body.extend(fields.profile);
    body.insert("password".into(), password.into());
    body.insert("is_staff".into(), (superuser || args.staff).into());
    body.insert("is_superuser".into(), superuser.into());
    let store = super::open_store(&settings).await?;
    let parts = Standalone::new(settings, store.clone())?;
    // The rules of the admin API's creation, but not the password policy: the operator chose
    // the password, as with Django's createsuperuser.
    let created = admin::users::create(
        &parts.context(),
        &Actor::command(),
        &Payload::Json(body),
        PasswordRule::Unchecked,
    )
    .await;
    store.close().await;
    let user = created.map_err(|err| match err {
        ServiceError::InvalidFields(_) => anyhow::anyhow!("the user was not created: {err}"),
        other => anyhow::Error::new(other).context("cannot create the user"),
    })?;
    let what = match (user.is_superuser, user.is_staff) {
        (true, _) => "Superuser",
        (false, true) => "Staff user",
        (false, false) => "User",
    };
    println!(
        "{what} created successfully: {} (id {})",
        user.username, user.id
    );
    Ok(())
}

/// The profile options: `--profile-json`, then each `--profile NAME=VALUE`.
struct Profile<'a> {
    json: Option<&'a str>,
    pairs: &'a [String],
}

/// The user's fields besides the username and password.
struct OtherFields {
    email: String,
    phone: Option<String>,
    first_name: String,
    last_name: String,
    profile: serde_json::Map<String, serde_json::Value>,
}

impl OtherFields {
    fn from_args(
        settings: &Settings,
        email: Option<String>,
        phone: Option<String>,
        first_name: Option<String>,
        last_name: Option<String>,
        profile: Profile<'_>,
    ) -> anyhow::Result<OtherFields> {
        let mut fields = OtherFields {
            email: email.unwrap_or_default().trim().to_owned(),
            phone: phone.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()),
            first_name: first_name.unwrap_or_default().trim().to_owned(),
            last_name: last_name.unwrap_or_default().trim().to_owned(),
            profile: serde_json::Map::new(),
        };
        let known = |name: &str| -> anyhow::Result<()> {
            if !settings.user_profile_fields.iter().any(|f| f == name) {
                bail!("{name:?} is not in USER_PROFILE_FIELDS");
            }
            Ok(())
        };
        if let Some(json) = profile.json {
            let serde_json::Value::Object(object) =
                serde_json::from_str(json).context("--profile-json is not valid JSON")?
            else {
                bail!("--profile-json takes a JSON object, such as '{{\"money\": 12.5}}'");
            };
            for (name, value) in object {
                known(&name)?;
                fields.profile.insert(name, value);
            }
        }
        for entry in profile.pairs {
            let Some((name, value)) = entry.split_once('=') else {
                bail!("--profile takes NAME=VALUE, got {entry:?}");
            };
            known(name)?;
            fields.profile.insert(name.to_owned(), profile_value(value));
        }
        Ok(fields)
    }

    /// Asks for the email (unless given) and each USER_REQUIRED_FIELDS field still missing; with
    /// `no_input`, a missing required field is an error naming its option.
    fn complete(&mut self, settings: &Settings, no_input: bool) -> anyhow::Result<()> {
        let required = |field: &str| {
            settings.user_required_fields.iter().any(|f| f == field)
                || (field == "email" && settings.username_field == UsernameField::Email)
        };
        if !no_input && self.email.is_empty() {
            self.email = prompt("Email address: ")?;
        }
        let mut missing = Vec::new();
        for (field, option, question) in [
            ("email", "--email", "Email address: "),
            ("phone", "--phone", "Phone: "),
            ("first_name", "--first-name", "First name: "),
            ("last_name", "--last-name", "Last name: "),
        ] {
            if !required(field) || !self.value(field).is_empty() {
                continue;
            }
            if no_input {
                missing.push(option.to_owned());
                continue;
            }
            let answer = prompt(question)?;
            match field {
                "email" => self.email = answer,
                "phone" => self.phone = Some(answer).filter(|p| !p.is_empty()),
                "first_name" => self.first_name = answer,
                _ => self.last_name = answer,
            }
            if self.value(field).is_empty() {
                bail!(
                    "the {} may not be blank (USER_REQUIRED_FIELDS)",
                    field.replace('_', " ")
                );
            }
        }
        for field in &settings.user_profile_fields {
            if required(field) && !self.profile.contains_key(field) {
                if no_input {
                    missing.push(format!("--profile {field}=…"));
                } else {
                    let answer = prompt(&format!("{field}: "))?;
                    self.profile.insert(field.clone(), profile_value(&answer));
                }
            }
        }
        if !missing.is_empty() {
            bail!(
                "USER_REQUIRED_FIELDS needs {} with --no-input",
                missing.join(", ")
            );
        }
        Ok(())
    }

    fn value(&self, field: &str) -> &str {
        match field {
            "email" => &self.email,
            "phone" => self.phone.as_deref().unwrap_or(""),
            "first_name" => &self.first_name,
            _ => &self.last_name,
        }
    }
}

/// A `--profile` value: JSON when it is JSON (`12.5`, `true`, `"007"`), so that a profile
/// field keeps the type a registration's JSON body would give it; text otherwise.
fn profile_value(value: &str) -> serde_json::Value {
    let value = value.trim();
    serde_json::from_str(value).unwrap_or_else(|_| value.into())
}

fn prompt(question: &str) -> anyhow::Result<String> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{question}")?;
    stderr.flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        bail!("no input: use --no-input with --username and the password variable for scripts");
    }
    Ok(line.trim().to_owned())
}

pub(crate) fn prompt_password() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        // Piped input: read the password and its confirmation as plain lines.
        let password = prompt("Password: ")?;
        let again = prompt("Password (again): ")?;
        return confirm(password, again);
    }
    let password = rpassword::prompt_password("Password: ")?;
    let again = rpassword::prompt_password("Password (again): ")?;
    confirm(password, again)
}

fn confirm(password: String, again: String) -> anyhow::Result<String> {
    if password != again {
        bail!("the two passwords did not match");
    }
    if password.trim().is_empty() {
        bail!("the password may not be blank");
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn profile_values_keep_their_json_type() {
        assert_eq!(profile_value("12.5"), json!(12.5));
        assert_eq!(profile_value("42"), json!(42));
        assert_eq!(profile_value("true"), json!(true));
        assert_eq!(profile_value(r#""12.5""#), json!("12.5"));
        assert_eq!(profile_value("007"), json!("007"), "not a JSON number");
        assert_eq!(profile_value(" Annie "), json!("Annie"));
        assert_eq!(profile_value("[1, 2]"), json!([1, 2]));
        assert_eq!(profile_value(""), json!(""));
    }
}
