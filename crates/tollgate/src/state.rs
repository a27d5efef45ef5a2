//! What every request handler shares: settings, the token codec, the store, the password pool.

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use tollgate_core::password::{FailureFloor, PasswordCheck, PasswordHasher, PasswordPolicy};
use tollgate_core::settings::{LoginField, UserIdField, UsernameField};
use tollgate_core::{Claims, Settings, TokenCodec};
use tollgate_store::{AccessClaims, Revocation, Store, StoreError, User, UserField};

use crate::keyring::EncryptionKeys;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::service::claims_hook::ClaimsHook;
use crate::throttle::{ActionThrottle, LoginThrottle};
use crate::user_cache::UserCache;

/// The claim naming the login session a token belongs to; access tokens carry their refresh
/// token's.
pub const SID_CLAIM: &str = "sid";

/// The claim that says how the user signed in (RFC 8176 values: `pwd`, `otp`, `hwk`...), on
/// every token of a login and of its session.
pub const AMR_CLAIM: &str = "amr";

/// The application state, cloned into every handler and middleware: one shared pointer, so a
/// clone per request costs one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`AppState`] points to; its fields are read through the state.
#[derive(Clone)]
pub struct SharedState {
    /// The validated settings.
    pub settings: Arc<Settings>,
    /// Mints and checks tokens.
    pub codec: Arc<TokenCodec>,
    /// Users and tokens.
    pub store: Store,
    /// Password hashing off the async runtime.
    pub passwords: PasswordPool,
    /// USER_ID_FIELD, parsed.
    pub(crate) user_id_field: UserField,
    /// AUTH_HEADER_NAME as an HTTP header name.
    pub(crate) auth_header: HeaderName,
    /// The `WWW-Authenticate` value for 401s: `Bearer realm="api"`.
    pub(crate) challenge: HeaderValue,
    /// LOGIN_FIELDS parsed (USERNAME_FIELD alone when the setting is empty).
    pub(crate) login_fields: Vec<UserField>,
    /// Code that adds claims to every new token, after TOKEN_USER_CLAIMS.
    pub(crate) claim_sources: Vec<Arc<dyn ClaimSource>>,
    /// The rules a new password must pass.
    pub(crate) policy: Arc<PasswordPolicy>,
    /// Prometheus metrics (a no-op handle when METRICS_ENABLED is off).
    pub(crate) metrics: Metrics,
    /// Users recently loaded for authentication (USER_CACHE_TTL).
    pub(crate) user_cache: UserCache,
    /// Failed-login counters (LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ADDRESS).
    pub(crate) login_throttle: Arc<LoginThrottle>,
    /// Registration attempts per client address.
    pub(crate) registration_throttle: Arc<ActionThrottle>,
    /// Password reset requests per client address and per account.
    pub(crate) reset_throttle: Arc<ActionThrottle>,
    /// Messages delivered after their request: mail, webhooks.
    pub(crate) outbox: Arc<crate::outbox::Outbox>,
    /// With JWK_URL, verifies the tokens that authenticate requests with that issuer's keys.
    pub(crate) foreign_tokens: Option<tollgate_axum::Verifier>,
    /// The WebAuthn relying party of passkeys (PASSKEY_RP_ID); `None` when they are off.
    pub(crate) passkeys: Option<Arc<webauthn_rs::Webauthn>>,
    /// KEYS_ENCRYPTION_KEY and KEYS_PREVIOUS_ENCRYPTION_KEY: they seal and open the stored
    /// signing keys and TOTP secrets.
    pub(crate) encryption_keys: Arc<EncryptionKeys>,
    /// With CLAIMS_HOOK_URL, the application's hook asked at every login and refresh.
    pub(crate) claims_hook: Option<Arc<ClaimsHook>>,
}

/// Adds claims to the tokens Tollgate mints, for applications that embed Tollgate as a library
/// and need claims that settings cannot express. Claims added to a refresh token carry over to
/// the access tokens made from it.
///
/// ```
/// use std::sync::Arc;
/// use tollgate::state::ClaimSource;
/// use tollgate_core::Claims;
/// use tollgate_store::User;
///
/// struct Tenant;
/// impl ClaimSource for Tenant {
///     fn add_claims(&self, user: &User, claims: &mut Claims) {
///         claims.insert("tenant", if user.is_staff { "staff" } else { "public" });
///     }
/// }
/// # fn wire(state: tollgate::state::AppState) -> tollgate::state::AppState {
/// state.with_claim_source(Arc::new(Tenant))
/// # }
/// ```
pub trait ClaimSource: Send + Sync {
    /// Adds or changes claims of a token being minted for `user` at login.
    fn add_claims(&self, user: &User, claims: &mut Claims);
}

/// The settings could not be turned into a running state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A setting is unusable.
    #[error(transparent)]
    Settings(#[from] tollgate_core::SettingsError),
    /// The argon2 cost is unusable.
    #[error("setting ARGON2_*: {0}")]
    Password(#[from] tollgate_core::password::PasswordParamsError),
    /// The mail settings do not describe a usable server, sender or templates.
    #[error("{0}")]
    Mail(String),
}

/// Everything the state is built from that needs no store: the settings turned into the
/// objects the server uses. Building it makes every check of the settings that the running
/// server depends on, so `tollgate check` builds it too, without opening the database.
pub(crate) struct Prepared {
    settings: Settings,
    codec: TokenCodec,
    hasher: PasswordHasher,
    user_id_field: UserField,
    login_fields: Vec<UserField>,
    auth_header: HeaderName,
    challenge: HeaderValue,
    foreign_tokens: Option<tollgate_axum::Verifier>,
    outbox: Outbox,
    passkeys: Option<webauthn_rs::Webauthn>,
    claims_hook: Option<ClaimsHook>,
    encryption_keys: EncryptionKeys,
}

/// The argon2id hasher at the cost ARGON2_* set.
pub(crate) fn password_hasher(settings: &Settings) -> Result<PasswordHasher, StateError> {
    Ok(PasswordHasher::new(
        settings.argon2_memory_kib,
        settings.argon2_iterations,
        settings.argon2_parallelism,
    )?)
}

/// The outbox of the mail (SMTP_URL, EMAIL_*) and webhook (WEBHOOK_*) settings.
pub(crate) fn outbox(settings: &Settings) -> Result<Outbox, StateError> {
    let mailer = crate::mail::Mailer::from_settings(settings)
        .map_err(|err| StateError::Mail(err.to_string()))?;
    let webhooks = crate::webhooks::Webhooks::from_settings(settings)?;
    Ok(Outbox::new(mailer, webhooks))
}

impl Prepared {
    /// Builds the parts from validated settings; the error names the setting at fault.
    pub(crate) fn new(settings: Settings) -> Result<Prepared, StateError> {
        let invalid = |key: &'static str, message: &str| tollgate_core::SettingsError::Invalid {
            key,
            message: message.to_owned(),
        };
        let codec = TokenCodec::new(&settings)?;
        let hasher = password_hasher(&settings)?;
        let user_id_field = id_field(settings.user_id_field);
        let login_fields = login_fields(&settings);
        let auth_header = tollgate_core::auth::header_name(&settings.auth_header_name)
            .and_then(|name| HeaderName::try_from(name).ok())
            .ok_or_else(|| invalid("AUTH_HEADER_NAME", "must be a header name"))?;
        // The first of AUTHENTICATION_CLASSES names the scheme, as DRF does.
        let scheme = match settings.authentication_classes.first() {
            Some(tollgate_core::settings::AuthenticationClass::Basic) => "Basic",
            _ => settings.auth_header_types[0].as_str(),
        };
        let challenge = HeaderValue::try_from(format!("{scheme} realm=\"api\""))
            .map_err(|_| invalid("AUTH_HEADER_TYPES", "must be printable ASCII"))?;
        let foreign_tokens = match &settings.jwk_url {
            Some(url) => {
                let jwks = tollgate_axum::JwksClient::new(url.as_str())
                    .map_err(|err| invalid("JWK_URL", &err.to_string()))?;
                Some(tollgate_axum::Verifier::with_jwks(&settings, jwks)?)
            }
            None => None,
        };
        let outbox = outbox(&settings)?;
        let passkeys = crate::service::mfa::passkeys::relying_party(&settings)?;
        let claims_hook = ClaimsHook::from_settings(&settings)?;
        let encryption_keys = EncryptionKeys::from_settings(&settings)?;
        Ok(Prepared {
            encryption_keys,
            outbox,
            passkeys,
            claims_hook,
            settings,
            codec,
            hasher,
            user_id_field,
            login_fields,
            auth_header,
            challenge,
            foreign_tokens,
        })
    }

    /// The settings the parts were built from.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }
}

impl AppState {
    /// Builds the state from validated settings and a migrated store.
    pub fn new(settings: Settings, store: Store) -> Result<AppState, StateError> {
        Ok(AppState::from_prepared(Prepared::new(settings)?, store))
    }

    /// The state of parts already checked: starts the password threads and the throttles.
    pub(crate) fn from_prepared(prepared: Prepared, store: Store) -> AppState {
        let Prepared {
            settings,
            codec,
            hasher,
            user_id_field,
            login_fields,
            auth_header,
            challenge,
            foreign_tokens,
            outbox,
            passkeys,
            claims_hook,
            encryption_keys,
        } = prepared;
        // With REDIS_URL the throttles count across instances.
        let shared = settings.redis_url.is_some().then(|| store.clone());
        AppState(Arc::new(SharedState {
            foreign_tokens,
            passkeys: passkeys.map(Arc::new),
            encryption_keys: Arc::new(encryption_keys),
            claims_hook: claims_hook.map(Arc::new),
            metrics: Metrics::new(settings.metrics_enabled),
            user_cache: UserCache::new(settings.user_cache_ttl),
            login_throttle: Arc::new(LoginThrottle::new(
                settings.login_failures_per_account,
                settings.login_failures_per_address,
                settings.login_failure_window,
                shared.clone(),
            )),
            outbox: Arc::new(outbox),
            registration_throttle: Arc::new(ActionThrottle::new(
                "register",
                settings.registrations_per_address,
                0,
                settings.registration_window,
                shared.clone(),
            )),
            reset_throttle: Arc::new(ActionThrottle::new(
                "reset",
                settings.password_resets_per_address,
                settings.password_resets_per_account,
                settings.password_reset_window,
                shared,
            )),
            policy: Arc::new(PasswordPolicy::from_settings(&settings)),
            login_fields,
            claim_sources: Vec::new(),
            codec: Arc::new(codec),
            passwords: PasswordPool::new(hasher),
            settings: Arc::new(settings),
            store,
            user_id_field,
            auth_header,
            challenge,
        }))
    }
}

/// ACCESS_TOKEN_REVOCATION after a password change: revokes every token of the user (named by
/// the value of its user-id claim) issued up to now, then waits for the next whole second.
/// `iat` counts whole seconds, so the cut-off is the next second: a token issued in the same
/// second as the change cannot be told from one issued before it. Waiting for that second
/// means a login with the new password, once the change has been answered, gets a token that
/// is not revoked. Does nothing when the setting is off.
pub(crate) async fn revoke_earlier_tokens(
    store: &Store,
    settings: &Settings,
    user_id: &str,
) -> Result<bool, StoreError> {
    if !settings.access_token_revocation {
        return Ok(false);
    }
    let now = tollgate_core::unix_now();
    let issued_before = now + 1;
    let revocation = Revocation::UserBefore {
        user_id,
        issued_before,
    };
    store
        .revoke_access(&revocation, settings.access_token_lifetime, now)
        .await?;
    wait_for_second(issued_before).await;
    Ok(true)
}

/// The fields a login identifier is looked up in (LOGIN_FIELDS, else USERNAME_FIELD alone).
pub(crate) fn login_fields(settings: &Settings) -> Vec<UserField> {
    if settings.login_fields.is_empty() {
        return vec![match settings.username_field {
            UsernameField::Username => UserField::Username,
            UsernameField::Email => UserField::Email,
        }];
    }
    let field = |field: &LoginField| match field {
        LoginField::Username => UserField::Username,
        LoginField::Email => UserField::Email,
        LoginField::Phone => UserField::Phone,
    };
    settings.login_fields.iter().map(field).collect()
}

/// The stored field USER_ID_FIELD names.
pub(crate) fn id_field(choice: UserIdField) -> UserField {
    match choice {
        UserIdField::Id => UserField::Id,
        UserIdField::Username => UserField::Username,
        UserIdField::Email => UserField::Email,
    }
}

/// Sleeps until the epoch second `second` has begun: a token issued from then on has an `iat`
/// of at least `second` (`iat` counts whole seconds).
pub(crate) async fn wait_for_second(second: i64) {
    let cut_off =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(second).unwrap_or(0));
    if let Ok(wait) = cut_off.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
}

/// Puts the calling thread below the async runtime's (about nice 10): when logins and token
/// checks compete for the cores, a login waits a little longer and a request with a token does
/// not; when the server has nothing else to do, hashes still get every core.
fn lower_priority() {
    use thread_priority::{set_current_thread_priority, ThreadPriority, ThreadPriorityValue};
    if let Ok(value) = ThreadPriorityValue::try_from(23u8) {
        // Lowering a thread's priority needs no privilege; if it fails anyway, hashing still works.
        let _ = set_current_thread_priority(ThreadPriority::Crossplatform(value));
    }
}

/// A password job: runs on a hashing thread with the hasher.
type Job = Box<dyn FnOnce(&PasswordHasher) + Send>;

impl AppState {
    /// Starts following revocations and user changes made by other instances (see
    /// [`Store::start_sync`]) as the settings need: access revocations with
    /// ACCESS_TOKEN_REVOCATION, user changes with USER_CACHE_TTL. Returns once the revocations in
    /// force are loaded; call it before serving.
    pub async fn start_sync(&self) -> Result<(), StoreError> {
        self.store
            .start_sync(
                self.settings.access_token_revocation,
                !self.settings.user_cache_ttl.is_zero(),
            )
            .await
    }

    /// Revokes live access tokens when ACCESS_TOKEN_REVOCATION is on (and does nothing, with
    /// `Ok(false)`, when it is off): on this instance at once, on the others within about a
    /// second. The entry is kept as long as ACCESS_TOKEN_LIFETIME requires.
    ///
    /// This is the call for anything that ends a login: logout, a password change, revoking a
    /// session (`Revocation::Session { sid }` ends every access token carrying that `sid`).
    ///
    /// ```no_run
    /// # async fn end(state: tollgate::state::AppState, sid: &str) -> Result<(), tollgate_store::StoreError> {
    /// use tollgate_store::Revocation;
    ///
    /// state.revoke_access(Revocation::Session { sid }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_access(&self, revocation: Revocation<'_>) -> Result<bool, StoreError> {
        crate::service::Context::of(self)
            .revoke_access(revocation)
            .await?;
        Ok(self.settings.access_token_revocation)
    }

    /// Whether ACCESS_TOKEN_REVOCATION is on and the token's claims match a revocation: a
    /// lookup in memory.
    pub fn access_revoked(&self, claims: &Claims) -> bool {
        if !self.settings.access_token_revocation {
            return false;
        }
        let user_id = self.codec.user_id(claims);
        self.store.is_access_revoked(&AccessClaims {
            jti: self.codec.jti(claims),
            sid: claims.str(SID_CLAIM),
            user_id: user_id.as_deref(),
            issued_at: claims.timestamp("iat"),
        })
    }

    /// The state with one more source of claims, run after those added before it.
    pub fn with_claim_source(mut self, source: Arc<dyn ClaimSource>) -> AppState {
        Arc::make_mut(&mut self.0).claim_sources.push(source);
        self
    }
}

/// Runs password hashes on a fixed set of threads, one per core, so that a flood of logins
/// queues here instead of starving token checks on the async runtime. Fixed threads (rather
/// than tokio's growing blocking pool) also bound memory: each argon2 hash needs ARGON2_MEMORY_KIB,
/// and the allocator keeps that much per thread that ever hashed.
///
/// Failed checks are padded to one time whatever the account's hash (see [`FailureFloor`]).
#[derive(Clone)]
pub struct PasswordPool {
    jobs: tokio::sync::mpsc::Sender<Job>,
    failure_floor: Arc<FailureFloor>,
}

/// Logins that may wait for a hashing thread before new ones wait to be queued.
const QUEUED_JOBS: usize = 1024;

impl PasswordPool {
    pub(crate) fn new(hasher: PasswordHasher) -> PasswordPool {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let (jobs, receiver) = tokio::sync::mpsc::channel::<Job>(QUEUED_JOBS);
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        let hasher = Arc::new(hasher);
        for index in 0..threads {
            let (receiver, hasher) = (Arc::clone(&receiver), Arc::clone(&hasher));
            let spawned = std::thread::Builder::new()
                .name(format!("tollgate-hash-{index}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // One thread waits for the next job at a time; the lock is released
                        // before work.
                        let job = match receiver.lock() {
                            Ok(mut receiver) => receiver.blocking_recv(),
                            Err(_) => None,
                        };
                        match job {
                            Some(job) => job(&hasher),
                            None => break, // Every sender is gone: the server is shutting down.
                        }
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(cause = %err, "cannot start a password hashing thread");
            }
        }
        // The floor learns each format's cost from the checks themselves: the first failures
        // run the dummy (an unknown user, an unusable hash) or a current hash at the configured
        // cost. A check made at start-up to learn it sooner left the hash's memory (19 MiB at
        // the default cost) resident in the hashing thread's arena from the start.
        PasswordPool {
            jobs,
            failure_floor: Arc::new(FailureFloor::default()),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> T {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |hasher| {
            let _ = reply.send(work(hasher));
        });
        // The threads live as long as a sender does, and we hold one: sending cannot fail, and
        // every job gets its reply. Should a thread die, the failure is loud, not a hang.
        if self.jobs.send(job).await.is_err() {
            panic!("password hashing threads are gone");
        }
        match result.await {
            Ok(value) => value,
            Err(_) => panic!("a password hashing thread failed"),
        }
    }
    /// Checks a password against a stored hash, or against a dummy hash when there is no user,
    /// so that unknown users cost the same time as wrong passwords. A failure returns no sooner
    /// than the slowest hash format checked so far takes (see [`FailureFloor`]): the wait is a
    /// sleep here, after the hashing thread is free.
    pub async fn verify(&self, password: String, stored: Option<String>) -> PasswordCheck {
        let floor = Arc::clone(&self.failure_floor);
        let (check, padding) = self
            .run(move |hasher| {
                let started = std::time::Instant::now();
                let (check, cost) = match stored {
                    Some(stored) => hasher.verify_costed(&password, &stored),
                    None => hasher.verify_dummy(&password),
                };
                let elapsed = started.elapsed();
                floor.observe(&cost, elapsed);
                let padding = if check.matched() {
                    std::time::Duration::ZERO
                } else {
                    floor.padding(elapsed)
                };
                (check, padding)
            })
            .await;
        if !padding.is_zero() {
            tokio::time::sleep(padding).await;
        }
        check
    }

    /// A new hash of a password.
    pub async fn hash(&self, password: String) -> String {
        self.run(move |hasher| hasher.hash(&password)).await
    }
}
