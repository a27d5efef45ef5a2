//! API keys, and the tokens a trusted backend has issued with one to a user it names (a user
//! who signed in elsewhere: a social login, a single sign-on, a migration).
//!
//! A key is `tg_` and 32 random bytes (URL-safe base64), shown once when it is made; only its
//! SHA-256 is stored, and a presented key is looked up by that hash. Each key has a name, which
//! the sessions and the login history of the tokens it issues carry (`api-key:<name>`), and
//! scopes: `tokens:issue` lets it call the issue endpoint.

use serde_json::json;
use tollgate_core::account_token::{hash_account_token, new_account_token};
use tollgate_core::auth::{parse_header, HeaderCredentials};
use tollgate_core::body::Payload;
use tollgate_core::settings::LoginResponse;
use tollgate_core::unix_now;
use tollgate_store::{ApiKey, LoginOutcome, NewApiKey, StoreError, User};

use super::tokens::{self, Origin, Pair, Single};
use super::{ApiKeyRefusal, Context, ServiceError};
use crate::state::AppState;
use crate::webhooks::{user_data, Event};

/// The scope that lets a key have tokens issued.
pub(crate) const TOKENS_ISSUE: &str = "tokens:issue";
/// Every scope a key can have.
pub(crate) const SCOPES: &[&str] = &[TOKENS_ISSUE];
/// What every key starts with, so that a key found in a log or a repository is recognised.
pub(crate) const KEY_PREFIX: &str = "tg_";
/// The authorization scheme of API keys: `Authorization: Api-Key <key>`.
pub(crate) const SCHEME: &str = "Api-Key";
/// The longest key name: names are shown in listings and stored with every session.
const MAX_NAME: usize = 100;

/// Makes a key named `name` with `scopes`; returns it as stored and the key itself, which
/// exists nowhere else.
pub(crate) async fn create(
    ctx: &Context<'_>,
    name: &str,
    scopes: &[String],
) -> Result<(ApiKey, String), ServiceError> {
    let name = name.trim();
    let mut problems = Vec::new();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        problems.push((
            "name".to_owned(),
            vec![format!(
                "A name of 1 to {MAX_NAME} printable characters is required."
            )],
        ));
    }
    let unknown: Vec<&String> = scopes
        .iter()
        .filter(|scope| !SCOPES.contains(&scope.as_str()))
        .collect();
    if scopes.is_empty() || !unknown.is_empty() {
        problems.push((
            "scope".to_owned(),
            vec![format!(
                "Scopes must be among: {} (unknown: {}).",
                SCOPES.join(", "),
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        ));
    }
    if !problems.is_empty() {
        return Err(ServiceError::InvalidFields(problems));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let (random, _) = new_account_token();
    let key = format!("{KEY_PREFIX}{random}");
    let new = NewApiKey {
        name,
        scopes: &scopes,
        key_hash: &hash_account_token(&key),
        created_at: unix_now(),
    };
    let stored = match ctx.store.create_api_key(&new).await {
        Ok(stored) => stored,
        Err(StoreError::Duplicate { .. }) => {
            let message = format!("A live API key is already named {name:?}; revoke it first.");
            return Err(ServiceError::InvalidFields(vec![(
                "name".to_owned(),
                vec![message],
            )]));
        }
        Err(err) => return Err(err.into()),
    };
    tracing::info!(api_key = %stored.name, id = stored.id, "API key created");
    Ok((stored, key))
}

/// Every key, live and revoked, oldest first.
pub(crate) async fn list(ctx: &Context<'_>) -> Result<Vec<ApiKey>, ServiceError> {
    Ok(ctx.store.api_keys().await?)
}

/// Revokes the live key named `name_or_id` or, failing that, the live key with that id.
/// [`ServiceError::ApiKeyRefused`] when there is none.
pub(crate) async fn revoke(ctx: &Context<'_>, name_or_id: &str) -> Result<ApiKey, ServiceError> {
    let keys = ctx.store.api_keys().await?;
    let live = |key: &&ApiKey| key.revoked_at.is_none();
    let target = keys
        .iter()
        .filter(live)
        .find(|key| key.name == name_or_id)
        .or_else(|| {
            let id: i64 = name_or_id.parse().ok()?;
            keys.iter().filter(live).find(|key| key.id == id)
        })
        .ok_or(ServiceError::ApiKeyRefused(ApiKeyRefusal::Invalid))?;
    let revoked = ctx
        .store
        .revoke_api_key(target.id, unix_now())
        .await?
        .ok_or(ServiceError::ApiKeyRefused(ApiKeyRefusal::Invalid))?;
    tracing::info!(api_key = %revoked.name, id = revoked.id, "API key revoked");
    Ok(revoked)
}

/// The live key an `Authorization` header value presents (`Api-Key <key>`); a bearer token or
/// no header is [`ApiKeyRefusal::Missing`].
pub(crate) async fn authenticate(
    ctx: &Context<'_>,
    authorization: Option<&[u8]>,
) -> Result<ApiKey, ServiceError> {
    let refused = |why| Err(ServiceError::ApiKeyRefused(why));
    let presented = match parse_header(authorization.unwrap_or_default(), &[SCHEME.to_owned()]) {
        HeaderCredentials::Absent => return refused(ApiKeyRefusal::Missing),
        HeaderCredentials::Malformed => return refused(ApiKeyRefusal::Malformed),
        HeaderCredentials::Token(raw) => raw,
    };
    let Some(key) = std::str::from_utf8(presented)
        .ok()
        .filter(|key| key.starts_with(KEY_PREFIX))
    else {
        return refused(ApiKeyRefusal::Invalid);
    };
    // The key has 256 random bits: finding it by its hash needs no constant-time comparison.
    match ctx.store.find_api_key(&hash_account_token(key)).await? {
        Some(key) => Ok(key),
        None => refused(ApiKeyRefusal::Invalid),
    }
}

/// The user an issue request names: by the value of USER_ID_FIELD (as tokens' user id claim
/// carries it), or by username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserRef {
    Id(String),
    Username(String),
}

impl UserRef {
    /// Reads `user_id` or `username` (one of them) from a request body.
    pub(crate) fn from_payload(payload: &Payload) -> Result<UserRef, ServiceError> {
        let field = |name: &str| {
            payload.text(name).map_err(|message| {
                ServiceError::InvalidFields(vec![(name.to_owned(), vec![message.to_owned()])])
            })
        };
        match (field("user_id")?, field("username")?) {
            (Some(id), None) if !id.is_empty() => Ok(UserRef::Id(id)),
            (None, Some(name)) if !name.is_empty() => Ok(UserRef::Username(name)),
            (Some(_), Some(_)) => Err(ServiceError::InvalidFields(vec![(
                "non_field_errors".to_owned(),
                vec!["Send user_id or username, not both.".to_owned()],
            )])),
            (Some(_), None) => Err(blank("user_id")),
            (None, Some(_)) => Err(blank("username")),
            (None, None) => Err(ServiceError::InvalidFields(vec![(
                "non_field_errors".to_owned(),
                vec!["Send user_id or username.".to_owned()],
            )])),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            UserRef::Id(text) | UserRef::Username(text) => text,
        }
    }
}

fn blank(field: &str) -> ServiceError {
    ServiceError::InvalidFields(vec![(
        field.to_owned(),
        vec!["This field may not be blank.".to_owned()],
    )])
}

/// The tokens of a login, in the shape LOGIN_RESPONSE gives.
#[derive(Debug)]
pub(crate) enum LoginTokens {
    Pair(Pair),
    Token(Single),
}

/// Tokens issued with an API key, and the user they were issued to.
#[derive(Debug)]
pub(crate) struct IssuedWithKey {
    pub(crate) user: User,
    pub(crate) tokens: LoginTokens,
}

/// What the session and the login history of tokens issued with `key` record as the client.
pub(crate) fn agent_of(key: &ApiKey) -> String {
    format!("api-key:{}", key.name)
}

/// An issue request: the key of its `Authorization` header, then (for a key with the
/// `tokens:issue` scope) the user its body names, then the tokens (see [`issue`]).
pub(crate) async fn issue_request(
    state: &AppState,
    authorization: Option<&[u8]>,
    payload: &Payload,
    client_addr: std::net::IpAddr,
) -> Result<IssuedWithKey, ServiceError> {
    let key = authenticate(&Context::of(state), authorization).await?;
    if !key.scopes.iter().any(|scope| scope == TOKENS_ISSUE) {
        return Err(ServiceError::ApiKeyScope(TOKENS_ISSUE));
    }
    let target = UserRef::from_payload(payload)?;
    issue(state, &key, &target, client_addr).await
}

/// Issues to the user `target` names what a login issues (LOGIN_RESPONSE's shape, a session,
/// the claims hook asked), for a backend holding `key` at `client_addr`: the session and the
/// login history say `api-key:<name>`, and `user.logged_in` names the key. An unknown user is
/// [`ServiceError::NoSuchUser`], an inactive one [`ServiceError::InactiveUser`].
#[tracing::instrument(skip_all, fields(api_key = %key.name))]
async fn issue(
    state: &AppState,
    key: &ApiKey,
    target: &UserRef,
    client_addr: std::net::IpAddr,
) -> Result<IssuedWithKey, ServiceError> {
    let mut user = find_target(state, target)
        .await?
        .ok_or(ServiceError::NoSuchUser)?;
    if !user.is_active {
        return Err(ServiceError::InactiveUser);
    }
    let agent = agent_of(key);
    let addr = client_addr.to_string();
    let tokens = match state.settings.login_response {
        // How the user signed in elsewhere is the backend's to know: the tokens claim no `amr`.
        LoginResponse::Token => LoginTokens::Token(tokens::issue_access(state, &user, &[]).await?),
        LoginResponse::Pair => {
            let origin = Origin {
                client_addr: &addr,
                user_agent: &agent,
                amr: &[],
            };
            LoginTokens::Pair(tokens::issue_pair(state, &user, origin).await?)
        }
    };
    let now = unix_now();
    state.store.touch_api_key(key.id, now).await?;
    if state.settings.update_last_login {
        state.store.set_last_login(user.id, now).await?;
        user.last_login = Some(now);
    }
    state
        .store
        .record_login(user.id, LoginOutcome::Succeeded, &addr, Some(&agent), now)
        .await?;
    let data = json!({
        "user": user_data(&user),
        "identifier": target.as_str(),
        "ip_address": addr,
        "user_agent": agent,
        "api_key": key.name,
    });
    Context::of(state).emit(Event::UserLoggedIn, data).await;
    tracing::info!(user_id = user.id, "tokens issued with an API key");
    Ok(IssuedWithKey { user, tokens })
}

async fn find_target(state: &AppState, target: &UserRef) -> Result<Option<User>, ServiceError> {
    Ok(match target {
        UserRef::Id(id) => state.store.find_user(state.user_id_field, id).await?,
        // As a login finds it.
        UserRef::Username(name) => super::login::find_by_username(&state.store, name).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(body: serde_json::Value) -> Payload {
        Payload::parse(Some("application/json"), body.to_string().as_bytes()).expect("parses")
    }

    #[test]
    fn a_request_names_its_user_by_id_or_username_not_both() {
        assert_eq!(
            UserRef::from_payload(&payload(json!({ "user_id": 7 }))).expect("id"),
            UserRef::Id("7".to_owned())
        );
        assert_eq!(
            UserRef::from_payload(&payload(json!({ "username": " ann " }))).expect("name"),
            UserRef::Username("ann".to_owned())
        );
        for bad in [
            json!({}),
            json!({ "user_id": 7, "username": "ann" }),
            json!({ "user_id": "" }),
            json!({ "username": null }),
            json!({ "user_id": [1] }),
        ] {
            assert!(
                matches!(
                    UserRef::from_payload(&payload(bad.clone())),
                    Err(ServiceError::InvalidFields(_))
                ),
                "{bad}"
            );
        }
    }
}
