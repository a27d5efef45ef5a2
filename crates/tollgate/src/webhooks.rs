//! Event webhooks: what happened to users and sessions, POSTed to the application's endpoints
//! (WEBHOOK_URLS) in the Standard Webhooks format, so that its libraries verify them.
//!
//! The operations in [`crate::service`] name the event; [`crate::outbox::Outbox::emit`] puts
//! one message per endpoint in the outbox, and the outbox's sender delivers it later through
//! [`Webhooks::deliver`]: the request that caused an event never waits for its delivery.
//!
//! A delivery is a POST of the stored body, `{"type", "timestamp", "data"}`, with the headers
//! `webhook-id` (`msg_` and the outbox id: the same on every retry, so that the receiver can
//! drop duplicates), `webhook-timestamp` (the attempt's time, epoch seconds) and
//! `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under
//! each key of WEBHOOK_SECRET, separated by spaces.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tollgate_core::{Settings, SettingsError};
use tollgate_store::User;

/// The outbox channel of webhooks.
pub(crate) const WEBHOOK: &str = "webhook";

/// How long one delivery may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest key WEBHOOK_SECRET accepts (the Standard Webhooks minimum).
const MIN_KEY_BYTES: usize = 24;
/// What every key of WEBHOOK_SECRET starts with.
const KEY_PREFIX: &str = "whsec_";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// An account was registered.
    UserCreated,
    /// A user changed their fields, or was activated or deactivated.
    UserUpdated,
    /// A user obtained tokens with their password.
    UserLoggedIn,
    /// A login was refused (wrong password, inactive, unknown or locked account).
    UserLoginFailed,
    /// Repeated failures locked an identifier (LOGIN_LOCKOUT_THRESHOLD).
    UserLocked,
    /// A password was changed by its user or an administrator.
    PasswordChanged,
    /// A password was changed through a reset link.
    PasswordReset,
    /// An administrator deleted an account.
    UserDeleted,
    /// A session ended: logout, revocation, or logout everywhere.
    SessionRevoked,
    /// A rotated refresh token came back after its grace period: its family was revoked.
    TokenReuseDetected,
    /// A user enrolled a second factor.
    MfaEnabled,
    /// A second factor was removed, by its user or (every one) by an administrator.
    MfaDisabled,
}

impl Event {
    const ALL: [Event; 12] = [
        Event::UserCreated,
        Event::UserUpdated,
        Event::UserLoggedIn,
        Event::UserLoginFailed,
        Event::UserLocked,
        Event::PasswordChanged,
        Event::PasswordReset,
        Event::UserDeleted,
        Event::SessionRevoked,
        Event::TokenReuseDetected,
        Event::MfaEnabled,
        Event::MfaDisabled,
    ];

    /// The event's `type`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Event::UserCreated => "user.created",
            Event::UserUpdated => "user.updated",
            Event::UserLoggedIn => "user.logged_in",
            Event::UserLoginFailed => "user.login_failed",
            Event::UserLocked => "user.locked",
            Event::PasswordChanged => "user.password_changed",
            Event::PasswordReset => "user.password_reset",
            Event::UserDeleted => "user.deleted",
            Event::SessionRevoked => "session.revoked",
            Event::TokenReuseDetected => "token.reuse_detected",
            Event::MfaEnabled => "user.mfa_enabled",
            Event::MfaDisabled => "user.mfa_disabled",
        }
    }
}

/// Why a delivery did not succeed.
#[derive(Debug)]
pub(crate) struct DeliveryError {
    /// Retrying cannot help (a 4xx other than 408 and 429).
    pub(crate) permanent: bool,
    /// What went wrong, for the outbox's listing.
    pub(crate) message: String,
}

/// The webhook settings, checked: endpoints, signing keys, the events sent.
pub(crate) struct Webhooks {
    urls: Vec<String>,
    keys: Vec<Vec<u8>>,
    /// Empty: every event.
    events: Vec<Event>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("urls", &self.urls)
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .field("events", &self.events)
            .finish()
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        key,
        message: message.into(),
    }
}

impl Webhooks {
    /// Checks WEBHOOK_URLS, WEBHOOK_SECRET and WEBHOOK_EVENTS; `None` when no endpoint is set.
    /// The error names the setting at fault and never shows a key.
    pub(crate) fn from_settings(settings: &Settings) -> Result<Option<Webhooks>, SettingsError> {
        let events = settings
            .webhook_events
            .iter()
            .map(|name| {
                Event::ALL
                    .into_iter()
                    .find(|event| event.as_str() == name)
                    .ok_or_else(|| {
                        let known: Vec<&str> = Event::ALL.iter().map(|e| e.as_str()).collect();
                        invalid(
                            "WEBHOOK_EVENTS",
                            format!("unknown event {name:?}; events: {}", known.join(", ")),
                        )
                    })
            })
            .collect::<Result<Vec<Event>, SettingsError>>()?;
        let keys = parse_keys(settings.webhook_secret.expose(), "WEBHOOK_SECRET")?;
        for url in &settings.webhook_urls {
            check_url(url, "WEBHOOK_URLS")?;
        }
        if settings.webhook_urls.is_empty() {
            return Ok(None);
        }
        if keys.is_empty() {
            return Err(invalid(
                "WEBHOOK_SECRET",
                "is required with WEBHOOK_URLS: `whsec_` and a base64 key \
                 (`whsec_$(openssl rand -base64 32)`)",
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Tollgate-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| invalid("WEBHOOK_URLS", format!("no HTTP client: {err}")))?;
        Ok(Some(Webhooks {
            urls: settings.webhook_urls.clone(),
            keys,
            events,
            client,
        }))
    }

    /// Whether WEBHOOK_EVENTS lets `event` through.
    pub(crate) fn wants(&self, event: Event) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }

    /// The endpoints every event goes to.
    pub(crate) fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The value of `webhook-signature` for message `id` sent at `timestamp` with `body`.
    pub(crate) fn signature(&self, id: &str, timestamp: i64, body: &str) -> String {
        signature_header(&self.keys, id, timestamp, body)
    }

    /// POSTs `body`, the stored event of outbox message `id`, to `url`, signed now.
    pub(crate) async fn deliver(
        &self,
        id: i64,
        url: &str,
        body: &str,
    ) -> Result<(), DeliveryError> {
        let webhook_id = format!("msg_{id}");
        let timestamp = tollgate_core::unix_now();
        let signature = self.signature(&webhook_id, timestamp, body);
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await;
        let status = match sent {
            Ok(response) => response.status(),
            // Without the URL: it is in the message's row already, and may hold a token.
            Err(err) => {
                return Err(DeliveryError {
                    permanent: false,
                    message: error_chain(&err.without_url()),
                })
            }
        };
        if status.is_success() {
            return Ok(());
        }
        let retry_helps = !status.is_client_error()
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
        Err(DeliveryError {
            permanent: !retry_helps,
            message: format!("the endpoint answered {status}"),
        })
    }
}

/// The stored body of an event: `{"type", "timestamp", "data"}`, the timestamp in RFC 3339.
pub(crate) fn event_body(event: Event, data: Value, at: SystemTime) -> String {
    json!({
        "type": event.as_str(),
        "timestamp": humantime::format_rfc3339_millis(at).to_string(),
        "data": data,
    })
    .to_string()
}

/// A user as events show them: the account fields, never the password.
pub(crate) fn user_data(user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "phone": user.phone,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
    })
}

/// The value of `webhook-signature` for message `id` sent at `timestamp` with `body`: `v1,`
/// and the signature under each key, separated by spaces.
pub(crate) fn signature_header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &str) -> String {
    let signatures: Vec<String> = keys
        .iter()
        .map(|key| format!("v1,{}", sign(key, id, timestamp, body)))
        .collect();
    signatures.join(" ")
}

/// Base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under `key`.
fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The keys of `setting` (WEBHOOK_SECRET, CLAIMS_HOOK_SECRET): `whsec_<base64>`, separated by
/// spaces or commas. The error names the setting and never shows a key.
pub(crate) fn parse_keys(
    secret: &str,
    setting: &'static str,
) -> Result<Vec<Vec<u8>>, SettingsError> {
    secret
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|part| !part.is_empty())
        .enumerate()
        .map(|(index, part)| {
            let position = index + 1;
            let encoded = part.strip_prefix(KEY_PREFIX).ok_or_else(|| {
                invalid(
                    setting,
                    format!("key {position} does not start with `{KEY_PREFIX}`"),
                )
            })?;
            let key = STANDARD.decode(encoded).map_err(|_| {
                invalid(
                    setting,
                    format!("key {position} is not base64 after `{KEY_PREFIX}`"),
                )
            })?;
            if key.len() < MIN_KEY_BYTES {
                return Err(invalid(
                    setting,
                    format!(
                        "key {position} is {} bytes; at least {MIN_KEY_BYTES} are needed \
                         (`whsec_$(openssl rand -base64 32)`)",
                        key.len()
                    ),
                ));
            }
            Ok(key)
        })
        .collect()
}

/// Refuses a URL that is not `http://` or `https://` with a host, naming `setting`.
pub(crate) fn check_url(text: &str, setting: &'static str) -> Result<(), SettingsError> {
    let url = url::Url::parse(text)
        .map_err(|err| invalid(setting, format!("{text:?} is not a URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            setting,
            format!("{text:?} is not an http:// or https:// URL with a host"),
        ));
    }
    Ok(())
}

/// An error and its causes, on one line (reqwest's own message alone says little).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(urls: &[&str], secret: &str, events: &[&str]) -> Settings {
        Settings {
            webhook_urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            webhook_secret: tollgate_core::settings::Secret(secret.to_owned()),
            webhook_events: events.iter().map(|e| (*e).to_owned()).collect(),
            ..Settings::default()
        }
    }

    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn error(settings: &Settings) -> String {
        Webhooks::from_settings(settings)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn signs_as_the_standard_webhooks_reference_does() {
        // The test vector of the Standard Webhooks libraries.
        let webhooks = Webhooks::from_settings(&settings(&["https://example.com/"], KEY, &[]))
            .expect("valid")
            .expect("on");
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            webhooks.signature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_key_signs_while_rotating() {
        let other = format!("whsec_{}", STANDARD.encode([7u8; 32]));
        let secret = format!("{KEY} {other}");
        let webhooks = Webhooks::from_settings(&settings(&["https://example.com/"], &secret, &[]))
            .expect("valid")
            .expect("on");
        let header = webhooks.signature("msg_1", 1, "{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|part| part.starts_with("v1,")));
        assert_ne!(parts[0], parts[1]);
    }

    #[test]
    fn bad_settings_are_refused_naming_the_setting_without_the_key() {
        let url = ["https://example.com/hook"];
        let message = error(&settings(&url, "", &[]));
        assert!(
            message.starts_with("setting WEBHOOK_SECRET: is required"),
            "{message}"
        );
        let message = error(&settings(&url, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &[]));
        assert!(
            message.contains("WEBHOOK_SECRET") && !message.contains("MfKQ"),
            "{message}"
        );
        let message = error(&settings(&url, "whsec_not*base64", &[]));
        assert!(
            message.contains("not base64") && !message.contains("not*"),
            "{message}"
        );
        let message = error(&settings(&url, "whsec_c2hvcnQ=", &[]));
        assert!(message.contains("at least 24"), "{message}");
        let message = error(&settings(&["ftp://example.com/"], KEY, &[]));
        assert!(message.starts_with("setting WEBHOOK_URLS:"), "{message}");
        let message = error(&settings(&["example.com/hook"], KEY, &[]));
        assert!(message.starts_with("setting WEBHOOK_URLS:"), "{message}");
        let message = error(&settings(&url, KEY, &["user.signed_up"]));
        assert!(
            message.contains("WEBHOOK_EVENTS") && message.contains("user.created"),
            "{message}"
        );
        assert!(Webhooks::from_settings(&settings(&[], "", &[]))
            .expect("valid")
            .is_none());
    }

    #[test]
    fn the_event_filter_lets_through_what_it_names() {
        let webhooks = Webhooks::from_settings(&settings(
            &["https://example.com/"],
            KEY,
            &["user.created", "session.revoked"],
        ))
        .expect("valid")
        .expect("on");
        assert!(webhooks.wants(Event::UserCreated));
        assert!(webhooks.wants(Event::SessionRevoked));
        assert!(!webhooks.wants(Event::UserLoggedIn));
    }
}
