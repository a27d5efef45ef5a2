//! The claims hook (CLAIMS_HOOK_URL): the application's endpoint, asked at every login and
//! refresh what to add to the tokens about to be signed and to the login's answer.
//!
//! The call is a POST of `{"event": "login" | "refresh", "user", "claims"}`, signed as webhooks
//! are (the Standard Webhooks headers, with CLAIMS_HOOK_SECRET or else WEBHOOK_SECRET), and the
//! answer is `{"claims": {...}, "response": {...}}`, both optional. Registered claims cannot be
//! changed through it: a hook that tries is ignored for those claims and logged, and the login
//! goes on. A hook that fails (no answer within CLAIMS_HOOK_TIMEOUT, a status other than 2xx,
//! an answer of another shape) fails the login or refresh with CLAIMS_HOOK_FAILURE = `deny`,
//! and is skipped with a warning with `allow`.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tollgate_core::settings::ClaimsHookFailure;
use tollgate_core::{Claims, Settings, SettingsError};
use tollgate_store::User;

use super::tokens::ORIG_IAT_CLAIM;
use super::ServiceError;
use crate::state::{AppState, SID_CLAIM};
use crate::webhooks::{check_url, error_chain, parse_keys, signature_header, user_data};

/// The claim of the authentication methods of a login (set by Tollgate, never by the hook).
const AMR_CLAIM: &str = "amr";
/// The largest answer read from the hook: an answer is a few claims, not a document.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why the hook is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookEvent {
    /// Tokens issued to a user who logged in (or whom a command or an API key names).
    Login,
    /// Tokens issued for a refresh or sliding token, or djangorestframework-jwt's token.
    Refresh,
}

impl HookEvent {
    fn as_str(self) -> &'static str {
        match self {
            HookEvent::Login => "login",
            HookEvent::Refresh => "refresh",
        }
    }
}

/// What the hook added: claims for the tokens (registered ones already left out) and fields
/// for the login's answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct HookAnswer {
    claims: Map<String, Value>,
    response: Map<String, Value>,
}

impl HookAnswer {
    /// Adds the hook's claims to `claims`, replacing claims of the same name that are not
    /// registered (TOKEN_USER_CLAIMS, the claim sources').
    pub(crate) fn add_claims_to(&self, claims: &mut Claims) {
        for (name, value) in &self.claims {
            claims.insert(name.clone(), value.clone());
        }
    }

    /// Adds the hook's response fields to a login's answer `body`, leaving the answer's own
    /// fields (`access`, `refresh`, `token`, `user`) as they are.
    pub(crate) fn add_fields_to(&self, body: &mut Map<String, Value>) {
        for (name, value) in &self.response {
            if body.contains_key(name) || OWN_FIELDS.contains(&name.as_str()) {
                tracing::warn!(
                    field = %name,
                    "claims hook: a field of the login's own answer cannot be replaced; ignored"
                );
                continue;
            }
            body.insert(name.clone(), value.clone());
        }
    }
}

/// The fields of a login's answer, whichever LOGIN_RESPONSE and LOGIN_RESPONSE_USER write.
const OWN_FIELDS: &[&str] = &["access", "refresh", "token", "user", "recovery_codes"];

/// CLAIMS_HOOK_URL and its settings, checked, with the one HTTP client of its calls.
pub(crate) struct ClaimsHook {
    url: String,
    keys: Vec<Vec<u8>>,
    failure: ClaimsHookFailure,
    /// The claims the hook cannot set, with the names the settings give them.
    registered: Vec<String>,
    client: reqwest::Client,
}

impl std::fmt::Debug for ClaimsHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimsHook")
            .field("url", &self.url)
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .field("failure", &self.failure)
            .finish()
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        key,
        message: message.into(),
    }
}

impl ClaimsHook {
    /// Checks CLAIMS_HOOK_URL, its secret (CLAIMS_HOOK_SECRET, else WEBHOOK_SECRET) and
    /// CLAIMS_HOOK_TIMEOUT; `None` when no hook is set. The error names the setting at fault
    /// and never shows a key.
    pub(crate) fn from_settings(settings: &Settings) -> Result<Option<ClaimsHook>, SettingsError> {
        let own_keys = parse_keys(settings.claims_hook_secret.expose(), "CLAIMS_HOOK_SECRET")?;
        let Some(url) = &settings.claims_hook_url else {
            return Ok(None);
        };
        check_url(url, "CLAIMS_HOOK_URL")?;
        let keys = if own_keys.is_empty() {
            // WEBHOOK_SECRET's own checks name it, should its keys be unusable.
            parse_keys(settings.webhook_secret.expose(), "WEBHOOK_SECRET")?
        } else {
            own_keys
        };
        if keys.is_empty() {
            return Err(invalid(
                "CLAIMS_HOOK_SECRET",
                "is required with CLAIMS_HOOK_URL (or WEBHOOK_SECRET): `whsec_` and a base64 \
                 key (`whsec_$(openssl rand -base64 32)`)",
            ));
        }
        let timeout = settings.claims_hook_timeout;
        if timeout < Duration::from_millis(1) {
            return Err(invalid("CLAIMS_HOOK_TIMEOUT", "must be more than zero"));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Tollgate-ClaimsHook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| invalid("CLAIMS_HOOK_URL", format!("no HTTP client: {err}")))?;
        Ok(Some(ClaimsHook {
            url: url.clone(),
            keys,
            failure: settings.claims_hook_failure,
            registered: registered_claims(settings),
            client,
        }))
    }

    /// Calls the hook and reads its answer; the error says what went wrong, without the URL
    /// (which may hold a credential).
    async fn call(&self, body: &str) -> Result<Map<String, Value>, String> {
        let id = format!("msg_{}", tollgate_core::new_jti());
        let timestamp = tollgate_core::unix_now();
        let sent = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature_header(&self.keys, &id, timestamp, body),
            )
            .body(body.to_owned())
            .send()
            .await;
        let mut response = sent.map_err(|err| error_chain(&err.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the hook answered {status}"));
        }
        let mut answer = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| error_chain(&err.without_url()))?
        {
            answer.extend_from_slice(&chunk);
            if answer.len() > MAX_ANSWER_BYTES {
                return Err(format!("the answer is over {MAX_ANSWER_BYTES} bytes"));
            }
        }
        if answer.iter().all(u8::is_ascii_whitespace) {
            // A 204, or a 200 with nothing to add.
            return Ok(Map::new());
        }
        match serde_json::from_slice(&answer) {
            Ok(Value::Object(answer)) => Ok(answer),
            Ok(_) => Err("the answer is not a JSON object".to_owned()),
            Err(err) => Err(format!("the answer is not JSON: {err}")),
        }
    }

    /// The answer's claims and fields, each an object when present; registered claims left
    /// out, with a warning.
    fn read(&self, mut answer: Map<String, Value>) -> Result<HookAnswer, String> {
        let mut object = |name: &str| match answer.remove(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map),
            Some(_) => Err(format!("`{name}` is not a JSON object")),
        };
        let mut claims = object("claims")?;
        let response = object("response")?;
        claims.retain(|name, _| {
            let registered = self.registered.iter().any(|claim| claim == name);
            if registered {
                tracing::warn!(claim = %name, "claims hook: a registered claim cannot be set; ignored");
            }
            !registered
        });
        Ok(HookAnswer { claims, response })
    }
}

/// Asks the hook (if CLAIMS_HOOK_URL is set) what to add for `event` to tokens for `user`
/// carrying `claims`. A failed hook is [`ServiceError::ClaimsHookFailed`] with
/// CLAIMS_HOOK_FAILURE = `deny`, and adds nothing (logged) with `allow`.
#[tracing::instrument(skip_all, fields(event = event.as_str(), user_id = user.id))]
pub(crate) async fn ask(
    state: &AppState,
    event: HookEvent,
    user: &User,
    claims: &Claims,
) -> Result<HookAnswer, ServiceError> {
    let Some(hook) = &state.claims_hook else {
        return Ok(HookAnswer::default());
    };
    let body = json!({
        "event": event.as_str(),
        "user": user_data(user),
        "claims": claims.0,
    })
    .to_string();
    let outcome = match hook.call(&body).await {
        Ok(answer) => hook.read(answer),
        Err(cause) => Err(cause),
    };
    match (outcome, hook.failure) {
        (Ok(answer), _) => Ok(answer),
        (Err(cause), ClaimsHookFailure::Deny) => Err(ServiceError::ClaimsHookFailed(cause)),
        (Err(cause), ClaimsHookFailure::Allow) => {
            tracing::warn!(cause = %cause, "claims hook failed; tokens issued without its claims (CLAIMS_HOOK_FAILURE = allow)");
            Ok(HookAnswer::default())
        }
    }
}

/// The claims Tollgate alone sets, under the names the settings give them.
fn registered_claims(settings: &Settings) -> Vec<String> {
    let mut names: Vec<String> = ["exp", "iat", "nbf", "jti", "token_type", "iss", "aud"]
        .into_iter()
        .chain([SID_CLAIM, AMR_CLAIM, ORIG_IAT_CLAIM])
        .map(str::to_owned)
        .collect();
    names.push(settings.user_id_claim.clone());
    names.push(settings.sliding_token_refresh_exp_claim.clone());
    names.push(settings.revoke_token_claim.clone());
    names.extend(settings.token_type_claim.clone());
    names.extend(settings.jti_claim.clone());
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::settings::Secret;

    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn settings(url: Option<&str>, secret: &str, webhook_secret: &str) -> Settings {
        Settings {
            claims_hook_url: url.map(str::to_owned),
            claims_hook_secret: Secret(secret.to_owned()),
            webhook_secret: Secret(webhook_secret.to_owned()),
            ..Settings::default()
        }
    }

    fn hook() -> ClaimsHook {
        ClaimsHook::from_settings(&settings(Some("https://app.example.com/hook"), KEY, ""))
            .expect("valid")
            .expect("on")
    }

    fn answer(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn the_secret_falls_back_to_webhook_secret_and_errors_name_the_setting() {
        let url = Some("https://app.example.com/hook");
        assert!(ClaimsHook::from_settings(&settings(url, "", KEY))
            .expect("valid")
            .is_some());
        assert!(ClaimsHook::from_settings(&settings(None, "", ""))
            .expect("valid")
            .is_none());
        let refused = |s: &Settings| {
            ClaimsHook::from_settings(s)
                .expect_err("refused")
                .to_string()
        };
        let message = refused(&settings(url, "", ""));
        assert!(
            message.starts_with("setting CLAIMS_HOOK_SECRET: is required"),
            "{message}"
        );
        let message = refused(&settings(url, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""));
        assert!(
            message.contains("CLAIMS_HOOK_SECRET") && !message.contains("MfKQ"),
            "{message}"
        );
        let message = refused(&settings(Some("hook.example.com"), KEY, ""));
        assert!(message.starts_with("setting CLAIMS_HOOK_URL:"), "{message}");
        let mut zero = settings(url, KEY, "");
        zero.claims_hook_timeout = Duration::ZERO;
        assert!(refused(&zero).starts_with("setting CLAIMS_HOOK_TIMEOUT:"));
    }

    #[test]
    fn registered_claims_are_left_out_of_the_answer() {
        let read = hook()
            .read(answer(json!({
                "claims": {
                    "nickname": "Ann", "exp": 1, "iat": 1, "jti": "x", "token_type": "access",
                    "user_id": "2", "sid": "s", "amr": ["pwd"], "iss": "me", "aud": "you",
                    "refresh_exp": 1, "hash_password": "x", "orig_iat": 1, "nbf": 1,
                },
                "response": { "cart_total": 3 },
            })))
            .expect("read");
        let mut claims = Claims::default();
        read.add_claims_to(&mut claims);
        assert_eq!(Value::Object(claims.0), json!({ "nickname": "Ann" }));
        assert_eq!(Value::Object(read.response), json!({ "cart_total": 3 }));
    }

    #[test]
    fn answers_of_another_shape_are_refused() {
        let hook = hook();
        assert_eq!(
            hook.read(answer(json!({}))).expect("empty"),
            HookAnswer::default()
        );
        assert_eq!(
            hook.read(answer(json!({ "claims": null }))).expect("null"),
            HookAnswer::default()
        );
        assert!(hook.read(answer(json!({ "claims": [1] }))).is_err());
        assert!(hook.read(answer(json!({ "response": "x" }))).is_err());
    }

    #[test]
    fn response_fields_never_replace_the_answers_own() {
        let read = hook()
            .read(answer(json!({
                "response": { "cart_total": 3, "access": "forged", "token": "forged", "user": 1 },
            })))
            .expect("read");
        let mut body = json!({ "access": "a", "refresh": "r" });
        read.add_fields_to(body.as_object_mut().expect("object"));
        assert_eq!(
            body,
            json!({ "access": "a", "refresh": "r", "cart_total": 3 })
        );
    }
}
