//! Tollgate's one typed `Settings`, with simplejwt's names and defaults.
//!
//! Every setting is declared once in the `settings!` table below: its key (the name simplejwt
//! uses, e.g. `ACCESS_TOKEN_LIFETIME`), its type, its default and its meaning. From that table
//! come the struct, the parser (TOML keys and `TOLLGATE_*` environment variables) and the
//! configuration reference, so the three cannot drift apart.

mod choice;
mod django;
mod sources;
mod value;

use std::time::Duration;

pub use choice::{
    AuthenticationClass, ClaimsHookFailure, EmailVerification, LogFormat, LoginField,
    LoginResponse, MfaRequired, UserIdField, UsernameField,
};
pub use django::{django_name, DjangoName, IgnoredSetting};
use ipnet::IpNet;
pub use sources::{looks_like_path, Loaded, RenamedSetting, UnknownVariable, FILE_SUFFIX};
pub use value::{format_duration, RawValue, Secret, SettingValue};

use crate::keys::Algorithm;
use crate::token::TokenType;

/// The prefix of every setting's environment variable: `TOLLGATE_ACCESS_TOKEN_LIFETIME`.
pub const ENV_PREFIX: &str = "TOLLGATE_";

/// A setting that could not be read or failed validation; the message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A key that is not a Tollgate setting.
    #[error("unknown setting {key}{hint}")]
    Unknown {
        /// The key as written.
        key: String,
        /// A suggestion, if the key looks like a known one.
        hint: String,
    },
    /// One setting given twice in one source: as `X` and `X_FILE`, or in two letter cases.
    #[error("{first} and {second} are both set; give only one")]
    Conflict {
        /// One name, as written.
        first: String,
        /// The other name, as written.
        second: String,
    },
    /// A value of the wrong shape.
    #[error("setting {key}: {message}")]
    Invalid {
        /// The setting's name.
        key: &'static str,
        /// What is wrong with the value.
        message: String,
    },
}

/// One row of the configuration reference.
#[derive(Debug, Clone, Copy)]
pub struct SettingInfo {
    /// The key, in TOML and (with the `TOLLGATE_` prefix) in the environment.
    pub key: &'static str,
    /// What values look like.
    pub expected: &'static str,
    /// What the setting does.
    pub doc: &'static str,
    /// Whether the value is secret.
    pub secret: bool,
}

macro_rules! settings {
    ($( $(#[doc = $doc:literal])+ $field:ident $key:literal : $ty:ty = $default:expr; )*) => {
        /// Every Tollgate setting, typed. Build it with [`Settings::from_sources`] or start from
        /// [`Settings::default`] (simplejwt's defaults).
        #[derive(Debug, Clone)]
        pub struct Settings {
            $( $(#[doc = $doc])+ pub $field: $ty, )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $( $field: $default, )* }
            }
        }

        impl Settings {
            /// Every setting's key, type and meaning, in declaration order.
            pub const REFERENCE: &'static [SettingInfo] = &[
                $( SettingInfo {
                    key: $key,
                    expected: <$ty as SettingValue>::EXPECTED,
                    doc: concat!($($doc, "\n"),+),
                    secret: false,
                }, )*
            ];

            fn set(&mut self, key: &str, raw: &RawValue) -> Result<bool, SettingsError> {
                match key {
                    $( $key => {
                        self.$field = <$ty as SettingValue>::parse(raw)
                            .map_err(|message| SettingsError::Invalid { key: $key, message })?;
                        Ok(true)
                    } )*
                    _ => Ok(false),
                }
            }

            /// Each setting's key and its value as TOML would write it; secrets are redacted.
            pub fn effective(&self) -> Vec<(&'static str, String)> {
                vec![ $( ($key, SettingValue::render(&self.$field)), )* ]
            }

            fn secret_keys() -> Vec<&'static str> {
                let mut keys = Vec::new();
                $( if <$ty as SettingValue>::is_secret() { keys.push($key); } )*
                keys
            }
        }
    };
}

settings! {
    /// Lifetime of an access token: its `exp` is the issue time plus this.
    access_token_lifetime "ACCESS_TOKEN_LIFETIME": Duration = Duration::from_secs(5 * 60);
    /// Lifetime of a refresh token (also of each rotated refresh token).
    refresh_token_lifetime "REFRESH_TOKEN_LIFETIME": Duration = Duration::from_secs(24 * 3600);
    /// Lifetime of a sliding token's `exp`.
    sliding_token_lifetime "SLIDING_TOKEN_LIFETIME": Duration = Duration::from_secs(5 * 60);
    /// How long a sliding token may be refreshed after it was first issued (`refresh_exp`).
    sliding_token_refresh_lifetime "SLIDING_TOKEN_REFRESH_LIFETIME": Duration = Duration::from_secs(24 * 3600);
    /// The refresh endpoint also returns a new refresh token.
    rotate_refresh_tokens "ROTATE_REFRESH_TOKENS": bool = false;
    /// When rotating, blacklist the refresh token that was presented; also makes the verify
    /// endpoint check the blacklist, as simplejwt does.
    blacklist_after_rotation "BLACKLIST_AFTER_ROTATION": bool = false;
    /// Record `last_login` when a user obtains tokens with a password (one database write).
    update_last_login "UPDATE_LAST_LOGIN": bool = false;
    /// The signing algorithm; tokens signed with any other algorithm are refused.
    algorithm "ALGORITHM": Algorithm = Algorithm::HS256;
    /// The HMAC secret (HS*) or the PEM private key (RS*, PS*, ES*, EdDSA). When empty, `serve`
    /// generates a random secret, stores it beside the database and warns that it is for
    /// development only.
    signing_key "SIGNING_KEY": Secret = Secret::default();
    /// The PEM public key for asymmetric algorithms; ignored for HS*.
    verifying_key "VERIFYING_KEY": String = String::new();
    /// The key that encrypts (AES-256-GCM) the signing keys `tollgate keys rotate` stores in
    /// the database: 64 hexadecimal characters (`openssl rand -hex 32`), the same on every
    /// instance. Required once keys have been rotated; keep it apart from the database, whose
    /// copy alone then cannot mint tokens.
    keys_encryption_key "KEYS_ENCRYPTION_KEY": Secret = Secret::default();
    /// The KEYS_ENCRYPTION_KEY used before the current one, while it is being replaced: stored
    /// keys that do not open with KEYS_ENCRYPTION_KEY are tried with this one, and
    /// `tollgate keys reseal` encrypts them again with the current one. Empty (the default)
    /// once every stored key is resealed.
    keys_previous_encryption_key "KEYS_PREVIOUS_ENCRYPTION_KEY": Secret = Secret::default();
    /// How often `serve` reads the stored signing keys again, so that a rotation reaches every
    /// instance without a restart (SIGHUP reloads at once). 0 turns the polling off.
    keys_reload_interval "KEYS_RELOAD_INTERVAL": Duration = Duration::from_secs(30);
    /// When set, tokens carry this `aud` and tokens without a matching `aud` are refused.
    audience "AUDIENCE": Vec<String> = Vec::new();
    /// When set, tokens carry this `iss` and tokens with another issuer are refused.
    issuer "ISSUER": Option<String> = None;
    /// Clock skew allowed when checking `exp`, `nbf`, `iat` and `refresh_exp`.
    leeway "LEEWAY": Duration = Duration::ZERO;
    /// A JWKS URL of another issuer (simplejwt's JWK_URL), e.g.
    /// `https://issuer.example.com/.well-known/jwks.json`. When set, the tokens that authenticate
    /// requests to protected endpoints (and `/ws/echo/`) are verified with that issuer's public
    /// keys, picked by `kid`, instead of Tollgate's own, with AUDIENCE, ISSUER and LEEWAY; the
    /// user is still found by USER_ID_CLAIM. The set is cached and fetched again when a token
    /// names an unknown `kid`, at most once every 10 seconds. The token endpoints keep signing
    /// and checking Tollgate's own tokens.
    jwk_url "JWK_URL": Option<String> = None;
    /// Accepted words before the token in the authorization header; the first one is sent in
    /// `WWW-Authenticate`. Case-sensitive, as in simplejwt.
    auth_header_types "AUTH_HEADER_TYPES": Vec<String> = vec!["Bearer".to_owned()];
    /// The header that carries the token, as a header name (`Authorization`) or in Django's
    /// META form (`HTTP_AUTHORIZATION`, `HTTP_X_ACCESS_TOKEN`).
    auth_header_name "AUTH_HEADER_NAME": String = "HTTP_AUTHORIZATION".to_owned();
    /// The user field written into tokens and used to find the user: `id`, `username` or `email`.
    user_id_field "USER_ID_FIELD": UserIdField = UserIdField::Id;
    /// The claim that holds the user's id.
    user_id_claim "USER_ID_CLAIM": String = "user_id".to_owned();
    /// The claim that holds the token type; "" turns type checking off.
    token_type_claim "TOKEN_TYPE_CLAIM": Option<String> = Some("token_type".to_owned());
    /// The claim that holds the token's unique id; "" turns the "has id" check off.
    jti_claim "JTI_CLAIM": Option<String> = Some("jti".to_owned());
    /// The claim that holds the end of a sliding token's refresh window.
    sliding_token_refresh_exp_claim "SLIDING_TOKEN_REFRESH_EXP_CLAIM": String = "refresh_exp".to_owned();
    /// Token types that authenticate a request, tried in order (simplejwt's AUTH_TOKEN_CLASSES).
    auth_token_classes "AUTH_TOKEN_CLASSES": Vec<TokenType> = vec![TokenType::Access];
    /// Refuse tokens of users who are no longer active.
    check_user_is_active "CHECK_USER_IS_ACTIVE": bool = true;
    /// The user field that the login form names (`username` or `email`).
    username_field "USERNAME_FIELD": UsernameField = UsernameField::Username;
    /// The database: `sqlite://path/to/file.db` (created on first start) or `postgres://…`.
    /// Also read from the plain `DATABASE_URL` environment variable.
    database_url "DATABASE_URL": String = "sqlite://tollgate.db".to_owned();
    /// The address `tollgate serve` listens on.
    bind "BIND": String = "127.0.0.1:8000".to_owned();
    /// Proxies whose `X-Forwarded-For` is believed for the client's address (used by
    /// throttling, sessions and login records): addresses or networks, e.g. `127.0.0.1,10.0.0.0/8`.
    /// Empty (the default): the TCP peer is the client.
    trusted_proxies "TRUSTED_PROXIES": Vec<IpNet> = Vec::new();
    /// Largest accepted request body, in bytes.
    max_body_bytes "MAX_BODY_BYTES": usize = 64 * 1024;
    /// Argon2id memory cost in KiB for new password hashes (OWASP's recommendation by default).
    argon2_memory_kib "ARGON2_MEMORY_KIB": u32 = 19_456;
    /// Argon2id iterations for new password hashes.
    argon2_iterations "ARGON2_ITERATIONS": u32 = 2;
    /// Argon2id parallelism for new password hashes.
    argon2_parallelism "ARGON2_PARALLELISM": u32 = 1;
    /// Path of the obtain-pair endpoint.
    token_obtain_path "TOKEN_OBTAIN_PATH": String = "/api/token/".to_owned();
    /// Path of the refresh endpoint.
    token_refresh_path "TOKEN_REFRESH_PATH": String = "/api/token/refresh/".to_owned();
    /// Path of the verify endpoint.
    token_verify_path "TOKEN_VERIFY_PATH": String = "/api/token/verify/".to_owned();
    /// Path of the blacklist (logout) endpoint.
    token_blacklist_path "TOKEN_BLACKLIST_PATH": String = "/api/token/blacklist/".to_owned();
    /// Path of the sliding-token obtain endpoint.
    token_sliding_path "TOKEN_SLIDING_PATH": String = "/api/token/sliding/".to_owned();
    /// Path of the sliding-token refresh endpoint.
    token_sliding_refresh_path "TOKEN_SLIDING_REFRESH_PATH": String = "/api/token/sliding/refresh/".to_owned();
    /// Path of the protected index endpoint, which answers the authenticated user's id and name.
    index_path "INDEX_PATH": String = "/api/index/".to_owned();

    // Browser sessions: the refresh cookie and deleted or inactive users.
    /// Carry the refresh token in a `Secure; HttpOnly; SameSite=Strict` cookie instead of the JSON
    /// body: login and refresh set the cookie and leave `refresh` out of their answers; refresh and
    /// blacklist (logout) read the cookie when the body has no `refresh`; logout clears the cookie.
    /// Login, refresh and logout first check that the request comes from an allowed origin (see
    /// CSRF_TRUSTED_ORIGINS), whatever the body holds, and a request with two refresh cookies is
    /// refused. Off by default: tokens travel in JSON bodies, as with simplejwt.
    refresh_cookie "REFRESH_COOKIE": bool = false;
    /// The refresh cookie's name.
    refresh_cookie_name "REFRESH_COOKIE_NAME": String = "tollgate_refresh".to_owned();
    /// The refresh cookie's `Path`. Empty (the default): the longest common folder of
    /// TOKEN_REFRESH_PATH and TOKEN_BLACKLIST_PATH (`/api/token/` with the default paths), so
    /// browsers send the cookie to refresh and logout, and to no endpoint outside that folder.
    refresh_cookie_path "REFRESH_COOKIE_PATH": Option<String> = None;
    /// The refresh cookie's `Domain`. Empty (the default): no `Domain` attribute, so the cookie
    /// goes back to the exact host that set it.
    refresh_cookie_domain "REFRESH_COOKIE_DOMAIN": Option<String> = None;
    /// Origins (`https://app.example.com`, scheme, host and port) allowed to log in, refresh and
    /// log out with the refresh cookie, besides Tollgate's own (an `Origin` whose host and port
    /// equal the request's `Host`). With REFRESH_COOKIE, a request to those endpoints whose
    /// `Origin` (or, without one, `Referer`) is neither is refused with 403 `CSRF Failed: ...`.
    csrf_trusted_origins "CSRF_TRUSTED_ORIGINS": Vec<String> = Vec::new();
    /// The verify endpoint also refuses, with 401, a token whose user was deleted or deactivated
    /// (as refresh does). simplejwt's verify checks the signature and claims only; false restores
    /// that.
    verify_checks_user "VERIFY_CHECKS_USER": bool = true;
    /// Path of the sessions list (`GET`: the caller's sessions, the current one marked;
    /// `DELETE`: log out everywhere). One session is `<SESSIONS_PATH><id>/` (`DELETE` revokes it).
    sessions_path "SESSIONS_PATH": String = "/api/sessions/".to_owned();
    /// Path of the log-out-everywhere endpoint (`POST`, authenticated): revokes every session of
    /// the caller and blacklists all their refresh and sliding tokens.
    token_blacklist_all_path "TOKEN_BLACKLIST_ALL_PATH": String = "/api/token/blacklist/all/".to_owned();
    /// Refresh-token reuse detection, with ROTATE_REFRESH_TOKENS and BLACKLIST_AFTER_ROTATION:
    /// a refresh token that was already rotated and comes back after REFRESH_TOKEN_REUSE_GRACE
    /// was stolen or leaked, so its whole family (the session and every token rotated from it)
    /// is revoked, and the answer is 401 `Token is blacklisted`. Off by default: the replay is
    /// refused and nothing else happens, as in simplejwt.
    refresh_token_reuse_detection "REFRESH_TOKEN_REUSE_DETECTION": bool = false;
    /// With REFRESH_TOKEN_REUSE_DETECTION, how long after a rotation the old refresh token may
    /// come back (a client retrying after a lost answer, or two tabs refreshing at once) and be
    /// answered with the family's current tokens instead of revoking the family.
    refresh_token_reuse_grace "REFRESH_TOKEN_REUSE_GRACE": Duration = Duration::from_secs(10);
    /// With ROTATE_REFRESH_TOKENS and BLACKLIST_AFTER_ROTATION, how long after a rotation the
    /// old refresh token may be presented again and get the token that replaced it (signed
    /// again from what is stored) and a fresh access token, whether or not reuse detection is
    /// on: a client whose answer was lost (a dropped connection, a mobile app sent to the
    /// background) simply retries instead of being logged out. After it, the token is refused
    /// as blacklisted. `0s` (the default) refuses at once, as simplejwt does. Recommended for
    /// mobile clients: a few seconds to a minute.
    refresh_token_retry_grace "REFRESH_TOKEN_RETRY_GRACE": Duration = Duration::ZERO;

    // Database, Redis and running many instances.
    /// Most database connections each Tollgate process holds open at once. On PostgreSQL each
    /// process also holds one for writing refresh-token rotations and one for listening; with N
    /// instances on one server, N times (this + 2) must stay under its `max_connections`.
    database_max_connections "DATABASE_MAX_CONNECTIONS": u32 = 10;
    /// How long a request waits for a database connection (a free one, or a new one to open)
    /// before it fails with 503 `service_unavailable`. Also bounds the wait of refresh-token
    /// rotations for their writer's connection.
    database_acquire_timeout "DATABASE_ACQUIRE_TIMEOUT": Duration = Duration::from_secs(5);
    /// How long one database statement may run before the database cancels it and the request
    /// fails with 503 `service_unavailable`: PostgreSQL's `statement_timeout` on every
    /// connection (migrations run without it); on SQLite, the wait for a write lock held by
    /// another process. With the acquire timeout, it bounds how long a request waits on a database that is down or
    /// overloaded: about DATABASE_ACQUIRE_TIMEOUT plus this. Must be longer than zero.
    database_statement_timeout "DATABASE_STATEMENT_TIMEOUT": Duration = Duration::from_secs(5);
    /// How long a command keeps retrying, with growing pauses, to reach a database that is still
    /// starting before it gives up with an error. 0 tries once.
    database_connect_timeout "DATABASE_CONNECT_TIMEOUT": Duration = Duration::from_secs(30);
    /// A Redis server for the denylist, e.g. `redis://127.0.0.1:6379/0`. When set, blacklisted
    /// token ids are also kept in Redis (expiring with their tokens) and checked there; the
    /// database stays the source of truth, and is asked whenever Redis is down.
    redis_url "REDIS_URL": Option<String> = None;
    /// The prefix of every Redis key Tollgate writes, so that several deployments can share one
    /// Redis.
    redis_key_prefix "REDIS_KEY_PREFIX": String = "tollgate:".to_owned();
    /// After SIGTERM or Ctrl-C, how long `serve` lets requests in flight finish before it exits
    /// anyway. New connections are refused from the signal on.
    shutdown_timeout "SHUTDOWN_TIMEOUT": Duration = Duration::from_secs(30);

    // Connections: how long a client may hold one, and how many it may hold.
    /// How long a client has to send a request's headers: on a new connection from its accept,
    /// on a kept-alive one from the request's first byte. A connection that has not sent its
    /// headers by then (a half-sent request line, headers dribbled byte by byte) is closed.
    /// Must be at least one second.
    header_read_timeout "HEADER_READ_TIMEOUT": Duration = Duration::from_secs(10);
    /// How long a kept-alive connection may stay idle after a response before the first byte
    /// of its next request; then it is closed. Must be at least one second. Keep it longer
    /// than the idle timeout of a proxy or client pool in front (often 60 s), so that Tollgate
    /// is not the side that closes a connection just as a request is sent on it.
    keepalive_timeout "KEEPALIVE_TIMEOUT": Duration = Duration::from_secs(75);
    /// Most connections open at once (WebSocket connections included). At the cap, new
    /// connections are not accepted: they wait in the kernel's listen queue, using no file
    /// descriptor of Tollgate's, until one closes (the two timeouts above bound how long an
    /// idle or stalled one holds its place). Start-up warns when the open-file limit cannot
    /// hold this many; at least 1.
    max_connections "MAX_CONNECTIONS": usize = 4096;
    /// Most connections open at once from one client address (an IPv6 client counts by its
    /// /64 network, which one host usually holds whole); past it, a new connection is closed
    /// at once. The address is the TCP peer: a peer in TRUSTED_PROXIES carries many clients'
    /// requests and is not held to this cap (only to MAX_CONNECTIONS), so the proxy must limit
    /// its clients itself. 0 turns the cap off.
    max_connections_per_address "MAX_CONNECTIONS_PER_ADDRESS": usize = 256;

    // Security.
    /// Password checks allowed per account within LOGIN_FAILURE_WINDOW, counted before the
    /// password is checked and taken back when it matches, so that requests sent together get
    /// no more checks than this. An account is counted whichever identifier names it, and each
    /// identifier (in any letter case or Unicode width) is counted too, whether or not it names
    /// an account: past the limit of an identifier, logins with it get 429 with `Retry-After`;
    /// past the limit of the account alone (reached through its other identifiers), they are
    /// answered as a wrong password would be, without a check, so that the answer tells
    /// nothing about which identifiers belong together. 0 turns it off. With REDIS_URL the
    /// attempts are counted across every instance on that Redis; without it (or while it does
    /// not answer), each process counts alone, so N instances allow N times this.
    login_failures_per_account "LOGIN_FAILURES_PER_ACCOUNT": u32 = 10;
    /// Password checks allowed per client address (see TRUSTED_PROXIES; IPv6 clients by their
    /// /64 network) within LOGIN_FAILURE_WINDOW, counted as LOGIN_FAILURES_PER_ACCOUNT is; past
    /// it, logins from that address get 429. 0 turns it off. Shared across instances through
    /// REDIS_URL.
    login_failures_per_address "LOGIN_FAILURES_PER_ADDRESS": u32 = 100;
    /// The window over which failed logins are counted.
    login_failure_window "LOGIN_FAILURE_WINDOW": Duration = Duration::from_secs(60);
    /// Consecutive failed logins that lock an account (and, alike, each identifier, whether or
    /// not it names an account, so that a lock reveals nothing): a locked identifier gets 403
    /// `account_locked` without its password being checked; an account locked through its other
    /// identifiers is answered as a wrong password would be, without a check. Each check takes
    /// its place under the threshold before the password is checked, so requests sent together
    /// get no more. A successful login resets the count. Counted in the database, so all
    /// instances share it. 0 (the default) turns lockout off.
    login_lockout_threshold "LOGIN_LOCKOUT_THRESHOLD": u32 = 0;
    /// How long a lock lasts; 0 keeps it until an administrator runs `tollgate unlock`.
    login_lockout_duration "LOGIN_LOCKOUT_DURATION": Duration = Duration::from_secs(15 * 60);
    /// How long login events (every attempt on an existing account, listed by
    /// `tollgate events`) are kept; `flushexpiredtokens` deletes older ones. 0 keeps them.
    login_events_retention "LOGIN_EVENTS_RETENTION": Duration = Duration::from_secs(90 * 24 * 3600);
    /// Rows that `flushexpiredtokens` deletes per statement, each its own transaction (expired
    /// tokens, old login events). Smaller batches hold the database for less time each, so
    /// requests that meet one wait less; with FLUSH_BATCH_PAUSE they set how fast a flush goes.
    flush_batch_size "FLUSH_BATCH_SIZE": u32 = 2_000;
    /// The pause between two batches of `flushexpiredtokens`. The deletes of a large flush
    /// (millions of rows: WAL, page writes, index upkeep) compete with the traffic of the same
    /// database; pausing spreads them out, so that the flush takes longer and requests
    /// meanwhile keep their latency. 0: no pause.
    flush_batch_pause "FLUSH_BATCH_PAUSE": Duration = Duration::from_millis(40);
    /// Development mode, for local work only (the server warns at start-up): allows an HMAC
    /// SIGNING_KEY shorter than the algorithm's hash (32 bytes for HS256, 48 for HS384, 64 for
    /// HS512), which is otherwise refused, and sends the refresh cookie without `Secure`, for
    /// hosts served over plain HTTP. The key `serve` generates when SIGNING_KEY is empty is
    /// long enough without it; `localhost` needs no `Secure` exception either. Never turn it on
    /// in production. `DEVELOPMENT_MODE` is accepted as another name, with a warning.
    development "DEVELOPMENT": bool = false;
    /// Origins allowed to call the API from a browser (CORS), e.g.
    /// `https://app.example.com`; `*` allows any origin (not with CORS_ALLOW_CREDENTIALS).
    /// Empty (the default): no CORS headers are sent, so browsers refuse cross-origin calls.
    cors_allowed_origins "CORS_ALLOWED_ORIGINS": Vec<String> = Vec::new();
    /// Lets browsers send cookies on cross-origin calls from CORS_ALLOWED_ORIGINS and read the
    /// answers (`Access-Control-Allow-Credentials: true`): what a page on a trusted sibling
    /// origin (`https://app.example.com` calling `https://auth.example.com`) needs to log in,
    /// refresh and log out with the refresh cookie (REFRESH_COOKIE; list the page's origin in
    /// CSRF_TRUSTED_ORIGINS too). Needs CORS_ALLOWED_ORIGINS, and is refused at start-up with
    /// `*` there: any site could then act with a visitor's cookie.
    cors_allow_credentials "CORS_ALLOW_CREDENTIALS": bool = false;

    // Performance.
    /// How long a user loaded to authenticate a request (or a verify, or a refresh) may be
    /// reused before it is read from the database again. A change of the user drops it sooner,
    /// whoever makes it: at once on the instance that made it, within about a second on the
    /// others (PostgreSQL notifies them; on SQLite they read a change counter each second). So
    /// this is only the bound on staleness if those signals are lost. 0 reads the user on every
    /// request, as simplejwt does, at about a quarter of the throughput.
    user_cache_ttl "USER_CACHE_TTL": Duration = Duration::from_secs(5);

    // Users: accounts API, login identifiers, password policy.
    /// Anyone may create an account with `POST` on USERS_PATH; false answers 404 there.
    registration_enabled "REGISTRATION_ENABLED": bool = true;
    /// Registration attempts (successful or not) allowed per client address (IPv6 by /64)
    /// within REGISTRATION_WINDOW; past it, 429 with `Retry-After`. Bounds account creation and
    /// the "already exists" answers that tell which usernames and emails are taken. Shared
    /// across instances through REDIS_URL. 0 turns it off.
    registrations_per_address "REGISTRATIONS_PER_ADDRESS": u32 = 20;
    /// The window over which registration attempts are counted.
    registration_window "REGISTRATION_WINDOW": Duration = Duration::from_secs(3600);
    /// Path of the registration endpoint.
    users_path "USERS_PATH": String = "/api/users/".to_owned();
    /// Path of the current-user endpoint (`GET`, `PUT`, `PATCH`).
    user_path "USER_PATH": String = "/api/user/".to_owned();
    /// Path of the password-change endpoint.
    user_password_path "USER_PASSWORD_PATH": String = "/api/user/password/".to_owned();
    /// Fields that registration requires besides USERNAME_FIELD and the password, of `email`,
    /// `phone`, `first_name`, `last_name` and USER_PROFILE_FIELDS.
    user_required_fields "USER_REQUIRED_FIELDS": Vec<String> = Vec::new();
    /// Free profile fields (e.g. `nickname`, `avatar`): accepted at registration and update,
    /// shown with the user, stored as JSON so that adding one needs no migration.
    user_profile_fields "USER_PROFILE_FIELDS": Vec<String> = Vec::new();
    /// Also accept, on `PUT` and `PATCH` of USER_PATH, a body with the user's fields in an
    /// object under `user` (`{"user": {"first_name": "Zoe"}, "money": 12.5}`), as a profile
    /// serializer with a nested user serializer takes it in Django REST framework; errors of
    /// the fields sent there are answered under `user` too. Fields outside `user` are read as
    /// usual; a field sent at both levels takes the value inside `user`. The answer is the
    /// user as USER_PATH always shows it.
    user_update_nested "USER_UPDATE_NESTED": bool = false;
    /// The user fields that the login credential (sent under USERNAME_FIELD) is looked up in,
    /// in order: any of `username`, `email` (without regard to case) and `phone`. Empty means
    /// USERNAME_FIELD alone.
    login_fields "LOGIN_FIELDS": Vec<LoginField> = Vec::new();
    /// Put a fingerprint of the user's password hash (simplejwt's: upper-case hex MD5 of the
    /// stored hash) in every new token and refuse tokens whose fingerprint no longer matches,
    /// so that a password change ends every earlier access token at once. Off by default, as
    /// in simplejwt; a password change always blacklists the user's refresh tokens. While it
    /// is on, a login does not rehash a password stored with older parameters (an imported
    /// Django hash stays as it is until the password changes): a new hash string would change
    /// the fingerprint and refuse the user's tokens, those Django issued included.
    check_revoke_token "CHECK_REVOKE_TOKEN": bool = false;
    /// Make logout and password change also end live access tokens (simplejwt only blacklists
    /// refresh tokens, so an access token lives until its `exp`). Logout on TOKEN_BLACKLIST_PATH
    /// revokes the access token in the Authorization header, if any, and every access token of
    /// the refresh token's session (`sid` claim); a password change revokes every token of the
    /// user issued before it (the answer waits for the next second, as `iat` counts whole
    /// seconds). Each instance keeps revocations in memory, loaded from the database and kept
    /// in sync through PostgreSQL notifications, so checking costs no database round trip.
    /// On by default, unlike simplejwt (no response changes shape): otherwise a user who changes
    /// a stolen password leaves the thief's access token working until it expires. Set it to
    /// false for simplejwt's behaviour.
    access_token_revocation "ACCESS_TOKEN_REVOCATION": bool = true;
    /// The claim that holds the password fingerprint.
    revoke_token_claim "REVOKE_TOKEN_CLAIM": String = "hash_password".to_owned();
    /// User fields copied into every new token as claims of the same name: built-in fields
    /// (`username`, `email`, `first_name`, `last_name`, `phone`, `is_staff`, `is_superuser`)
    /// or USER_PROFILE_FIELDS. Claims set on a refresh token carry over to its access tokens.
    token_user_claims "TOKEN_USER_CLAIMS": Vec<String> = Vec::new();
    /// The shape of a successful login on TOKEN_OBTAIN_PATH: `pair` (`{"refresh", "access"}`,
    /// as simplejwt answers) or `token` (`{"token": <access token>}`, as the older
    /// djangorestframework-jwt answered; no refresh token is issued). With `token`, the refresh
    /// and verify endpoints also speak djangorestframework-jwt: refresh takes `{"token"}`, a
    /// still-valid token, and answers `{"token"}`, a new one, for REFRESH_TOKEN_LIFETIME (its
    /// JWT_REFRESH_EXPIRATION_DELTA) from the login (the `orig_iat` claim); verify answers
    /// `{"token"}`, the token echoed. Refusals keep simplejwt's bodies.
    login_response "LOGIN_RESPONSE": LoginResponse = LoginResponse::Pair;
    /// Add the user, as USER_PATH shows it, to the login response under `user`.
    login_response_user "LOGIN_RESPONSE_USER": bool = false;
    /// How protected endpoints authenticate a request, tried in order (DRF's
    /// DEFAULT_AUTHENTICATION_CLASSES): `jwt` (a bearer token, its user read from the database),
    /// `jwt_stateless` (a bearer token trusted alone, as simplejwt's
    /// JWTStatelessUserAuthentication: no database read, so no user, active or password check;
    /// the user is made of the token's claims, `username` from a `username` claim or empty) and
    /// `basic` (HTTP Basic with a username and password, for scripts; one password hash per
    /// request). The first names the scheme of `WWW-Authenticate`. The account endpoints
    /// (USER_PATH, USER_PASSWORD_PATH) always read the user from the database.
    authentication_classes "AUTHENTICATION_CLASSES": Vec<AuthenticationClass> = vec![AuthenticationClass::Jwt];
    /// Minimum password length in characters (Django's MinimumLengthValidator); 0 turns it off.
    password_min_length "PASSWORD_MIN_LENGTH": usize = 8;
    /// Refuse passwords too similar to the username, names or email address: the similarity
    /// allowed, in percent (70 is Django's UserAttributeSimilarityValidator default of 0.7);
    /// 0 turns it off.
    password_max_similarity "PASSWORD_MAX_SIMILARITY": u32 = 70;
    /// Refuse passwords in Django's list of 20,000 common passwords (CommonPasswordValidator).
    password_reject_common "PASSWORD_REJECT_COMMON": bool = true;
    /// Refuse passwords made only of digits (NumericPasswordValidator).
    password_reject_numeric "PASSWORD_REJECT_NUMERIC": bool = true;

    /// Whether the admin API (`/api/admin/`) requires a second factor: the access token must
    /// carry an `amr` claim naming a method other than `pwd` (such as `otp` or `hwk`), or the
    /// request is refused (403, code `mfa_required`).
    admin_requires_mfa "ADMIN_REQUIRES_MFA": bool = false;
    /// Serve the web console at `/admin/`: staff members and superusers sign in with their
    /// password (and second factor) and manage accounts, sessions, keys and the audit log with
    /// the admin API's rules. False answers 404 there; the admin API stays.
    admin_console_enabled "ADMIN_CONSOLE_ENABLED": bool = true;

    // Observability.
    /// What to log: a level (`info`, `debug`) or a filter such as `info,tollgate=debug`.
    log "LOG": String = "info".to_owned();
    /// Log line format: `text` for people, `json` for log collectors.
    log_format "LOG_FORMAT": LogFormat = LogFormat::Text;
    /// Serve the OpenAPI description at `/api/schema/` and its docs page at `/api/docs/`.
    api_docs_enabled "API_DOCS_ENABLED": bool = true;
    /// Serve Prometheus metrics at `/metrics`.
    metrics_enabled "METRICS_ENABLED": bool = false;
    /// When set, `/metrics` requires `Authorization: Bearer <this token>`.
    metrics_token "METRICS_TOKEN": Secret = Secret::default();
    /// The SMTP server that sends mail (password reset): `smtps://user:pass@host:465` (TLS from
    /// the start), `smtp://user:pass@host:587?tls=required` (STARTTLS), or `smtp://host:25`
    /// (no encryption: a local relay only). User and password are URL-encoded. Unset: mail is
    /// off, and the endpoints that need it answer 400. Mail waits in the outbox (the
    /// database) until the server takes it, so nothing is lost while it is down.
    smtp_url "SMTP_URL": Secret = Secret::default();
    /// The sender of every mail: an address, or `Name <address>`.
    email_from "EMAIL_FROM": String = "Tollgate <noreply@localhost>".to_owned();
    /// A folder of mail templates that replace the built-in ones, file by file (e.g.
    /// `password_reset.subject.txt`, `password_reset.txt`, `password_reset.html`; see the
    /// email documentation). Unset: the built-in templates.
    email_templates_dir "EMAIL_TEMPLATES_DIR": Option<String> = None;
    /// The frontend page a password reset mail links to, with `{uid}` and `{token}` in it
    /// (djoser's PASSWORD_RESET_CONFIRM_URL, as an absolute URL), e.g.
    /// `https://app.example.com/password/reset/confirm/{uid}/{token}`. The page posts both, with
    /// the new password, to PASSWORD_RESET_CONFIRM_PATH. Unset: password reset is off.
    password_reset_url "PASSWORD_RESET_URL": Option<String> = None;
    /// How long a password reset link works (Django's PASSWORD_RESET_TIMEOUT). A link also
    /// stops working once used, once a newer one is sent, and once the password changes.
    password_reset_timeout "PASSWORD_RESET_TIMEOUT": Duration = Duration::from_secs(3600);
    /// Password reset requests accepted per client address (IPv6 by /64) within
    /// PASSWORD_RESET_WINDOW; more get 429. 0 turns the limit off.
    password_resets_per_address "PASSWORD_RESETS_PER_ADDRESS": u32 = 10;
    /// Password reset mails sent to one account within PASSWORD_RESET_WINDOW; requests beyond
    /// it are answered as usual (204) but send nothing, so that nobody can flood an inbox.
    password_resets_per_account "PASSWORD_RESETS_PER_ACCOUNT": u32 = 3;
    /// The window of PASSWORD_RESETS_PER_ADDRESS and PASSWORD_RESETS_PER_ACCOUNT.
    password_reset_window "PASSWORD_RESET_WINDOW": Duration = Duration::from_secs(3600);
    /// Whether a registration confirms its email address: `none` (the address is taken as
    /// given), `optional` (registration mails an activation link to ACTIVATION_URL; logins work
    /// before it is followed) or `mandatory` (until the link is followed, a correct password
    /// answers 401 `email_not_verified`). Accounts that existed before count as confirmed.
    /// Needs SMTP_URL and ACTIVATION_URL.
    email_verification "EMAIL_VERIFICATION": EmailVerification = EmailVerification::None;
    /// The frontend page an activation mail links to, with `{uid}` and `{token}` in it
    /// (djoser's ACTIVATION_URL, as an absolute URL), e.g.
    /// `https://app.example.com/activate/{uid}/{token}`. The page posts both to ACTIVATION_PATH.
    activation_url "ACTIVATION_URL": Option<String> = None;
    /// The frontend page an email change mail links to, with `{uid}` and `{token}` in it, e.g.
    /// `https://app.example.com/email/confirm/{uid}/{token}`; the page posts both to
    /// EMAIL_CHANGE_PATH. With EMAIL_VERIFICATION on, a user's new address takes effect only
    /// once that link is followed; unset, such a change is refused (`not_configured`).
    email_change_url "EMAIL_CHANGE_URL": Option<String> = None;
    /// Path of the email change confirmation endpoint (`POST {"uid", "token"}`).
    email_change_path "EMAIL_CHANGE_PATH": String = "/api/users/confirm_email/".to_owned();
    /// How long an activation link works; RESEND_ACTIVATION_PATH sends a new one.
    activation_timeout "ACTIVATION_TIMEOUT": Duration = Duration::from_secs(3 * 24 * 3600);
    /// Path of the activation endpoint (`POST {"uid", "token"}`, djoser's `activation`).
    activation_path "ACTIVATION_PATH": String = "/api/users/activation/".to_owned();
    /// Path of the endpoint that mails a new activation link (`POST {"email"}`, djoser's
    /// `resend_activation`): 204 whether or not the address waits for one.
    resend_activation_path "RESEND_ACTIVATION_PATH": String = "/api/users/resend_activation/".to_owned();
    /// Path of the password reset request endpoint (`POST {"email"}`, djoser's
    /// `reset_password`): 204 whether or not the address has an account.
    password_reset_path "PASSWORD_RESET_PATH": String = "/api/users/reset_password/".to_owned();
    /// Path of the password reset confirmation endpoint (`POST {"uid", "token",
    /// "new_password"}`, djoser's `reset_password_confirm`).
    password_reset_confirm_path "PASSWORD_RESET_CONFIRM_PATH": String = "/api/users/reset_password_confirm/".to_owned();

    // Multi-factor authentication.
    /// Who must have a second factor: `off` (whoever enrols one), `staff` (staff and
    /// superusers) or `all`. A user it covers who has none yet gets, for a right password, 401
    /// `mfa_enrollment_required` with an `mfa_token` that enrols a factor (and nothing else);
    /// confirming it answers what the login would have.
    mfa_required "MFA_REQUIRED": MfaRequired = MfaRequired::Off;
    /// How long the `mfa_token` of a login's second step works.
    mfa_token_lifetime "MFA_TOKEN_LIFETIME": Duration = Duration::from_secs(5 * 60);
    /// The name authenticator apps show beside a TOTP code (the `issuer` of the `otpauth://`
    /// URL).
    mfa_issuer "MFA_ISSUER": String = "Tollgate".to_owned();
    /// The WebAuthn relying party id of passkeys: the domain of the pages that register and
    /// use them (`example.com` serves `app.example.com` too). Empty: passkeys are off. A
    /// passkey works only under the id it was registered with: changing it voids them all.
    passkey_rp_id "PASSKEY_RP_ID": String = String::new();
    /// The origins of the pages that use passkeys (`https://app.example.com`); empty:
    /// `https://<PASSKEY_RP_ID>`. A browser reports the page's origin, which must be one of
    /// these.
    passkey_origins "PASSKEY_ORIGINS": Vec<String> = Vec::new();
    /// Whether a passkey alone signs a user in (a discoverable credential, no password):
    /// `POST <TOKEN_OBTAIN_PATH>passkey/begin/` then `<TOKEN_OBTAIN_PATH>passkey/`. Off: passkeys
    /// are a second factor only.
    passkey_login "PASSKEY_LOGIN": bool = false;

    // Webhooks.
    /// Endpoints (`https://` or `http://` URLs) that receive events as they happen, in the
    /// Standard Webhooks format: a signed POST of `{"type", "timestamp", "data"}` with the
    /// headers `webhook-id`, `webhook-timestamp` and `webhook-signature`. Every endpoint gets
    /// every event WEBHOOK_EVENTS lets through. Events wait in the outbox (the database) and
    /// are delivered after the request that caused them, at least once: a failed delivery is
    /// tried again after 2 s, then twice as long each time, for up to a day (with the same
    /// `webhook-id`); a 4xx answer other than 408 and 429 is final. Empty: no webhooks.
    webhook_urls "WEBHOOK_URLS": Vec<String> = Vec::new();
    /// The key that signs webhooks: `whsec_` and a base64 key of at least 24 bytes (e.g.
    /// `whsec_$(openssl rand -base64 32)`). Several keys, separated by spaces, while rotating:
    /// each signs, and `webhook-signature` lists every signature. Required with WEBHOOK_URLS.
    webhook_secret "WEBHOOK_SECRET": Secret = Secret::default();
    /// The events sent to WEBHOOK_URLS; empty: all of them. Events: `user.created`,
    /// `user.updated`, `user.logged_in`, `user.login_failed`, `user.locked`,
    /// `user.password_changed`, `user.password_reset`, `user.deleted`, `session.revoked`,
    /// `token.reuse_detected`.
    webhook_events "WEBHOOK_EVENTS": Vec<String> = Vec::new();

    // The claims hook and API keys.
    /// An endpoint of the application (`https://` or `http://` URL) called at every login and
    /// refresh, before tokens are signed: a signed POST (as webhooks are signed) of `{"event":
    /// "login" | "refresh", "user", "claims"}`, answered with `{"claims": {...}, "response":
    /// {...}}`, both optional: claims added to the tokens, and fields added to the login
    /// response. Registered claims (`exp`, `iat`, `jti`, `token_type`, the user id claim, `sid`,
    /// ...) cannot be changed: the hook's values for them are ignored, with a warning. Unset: no
    /// hook.
    claims_hook_url "CLAIMS_HOOK_URL": Option<String> = None;
    /// The key that signs calls to CLAIMS_HOOK_URL: `whsec_` and a base64 key of at least 24
    /// bytes; several, separated by spaces, while rotating. Empty: WEBHOOK_SECRET's keys.
    claims_hook_secret "CLAIMS_HOOK_SECRET": Secret = Secret::default();
    /// How long a login or refresh waits for CLAIMS_HOOK_URL, connection included.
    claims_hook_timeout "CLAIMS_HOOK_TIMEOUT": Duration = Duration::from_secs(2);
    /// What a login or refresh does when CLAIMS_HOOK_URL does not answer in time, answers other
    /// than 2xx, or answers something other than the expected JSON: `deny` (it fails with 503
    /// `claims_hook_failed` and no token is issued) or `allow` (tokens are issued without the
    /// hook's claims and fields, and a warning is logged).
    claims_hook_failure "CLAIMS_HOOK_FAILURE": ClaimsHookFailure = ClaimsHookFailure::Deny;
    /// Path of the endpoint that issues tokens to a user named by a trusted backend
    /// (`POST {"user_id"}` or `{"username"}`, authenticated by `Authorization: Api-Key <key>`
    /// with a key of scope `tokens:issue`, made by `tollgate apikey create`).
    token_issue_path "TOKEN_ISSUE_PATH": String = "/api/token/issue/".to_owned();
}

/// The user's own columns, which profile fields may not shadow.
const BUILTIN_USER_FIELDS: &[&str] = &[
    "id",
    "username",
    "email",
    "phone",
    "first_name",
    "last_name",
    "password",
    "is_active",
    "is_staff",
    "is_superuser",
    "date_joined",
    "last_login",
    "profile",
];

impl Settings {
    /// Checks the settings as a whole; the error names the setting at fault.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key: &'static str, message: &str| {
            Err(SettingsError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        for (key, lifetime) in [
            ("ACCESS_TOKEN_LIFETIME", self.access_token_lifetime),
            ("REFRESH_TOKEN_LIFETIME", self.refresh_token_lifetime),
            ("SLIDING_TOKEN_LIFETIME", self.sliding_token_lifetime),
            (
                "SLIDING_TOKEN_REFRESH_LIFETIME",
                self.sliding_token_refresh_lifetime,
            ),
        ] {
            if lifetime.as_secs() == 0 {
                return invalid(key, "must be at least one second");
            }
        }
        if self.auth_header_types.is_empty() {
            return invalid(
                "AUTH_HEADER_TYPES",
                "must name at least one header type, e.g. Bearer",
            );
        }
        if self
            .auth_header_types
            .iter()
            .any(|t| t.is_empty() || t.contains(char::is_whitespace))
        {
            return invalid("AUTH_HEADER_TYPES", "header types must be single words");
        }
        if crate::auth::header_name(&self.auth_header_name).is_none() {
            return invalid(
                "AUTH_HEADER_NAME",
                "must be a header name such as Authorization or HTTP_AUTHORIZATION",
            );
        }
        if self.user_id_claim.is_empty() {
            return invalid("USER_ID_CLAIM", "must not be empty");
        }
        if self.auth_token_classes.is_empty() {
            return invalid("AUTH_TOKEN_CLASSES", "must name at least one token type");
        }
        if self.auth_token_classes.contains(&TokenType::Refresh) {
            return invalid(
                "AUTH_TOKEN_CLASSES",
                "refresh tokens cannot authenticate requests; use access or sliding",
            );
        }
        if !self.algorithm.is_hmac() {
            for (key, value) in [
                ("SIGNING_KEY", self.signing_key.expose()),
                ("VERIFYING_KEY", self.verifying_key.as_str()),
            ] {
                if looks_like_path(value) {
                    let message = format!(
                        "holds a file path, not a PEM key: to read the key from that file, set \
                         {key}_FILE to the path instead"
                    );
                    return invalid(key, &message);
                }
            }
        }
        if !self.algorithm.is_hmac() && self.verifying_key.trim().is_empty() {
            return invalid(
                "VERIFYING_KEY",
                "is required for asymmetric algorithms (a PEM public key)",
            );
        }
        let key_len = self.signing_key.expose().len();
        let min_len = self.algorithm.min_hmac_key_len();
        if self.algorithm.is_hmac() && key_len > 0 && key_len < min_len && !self.development {
            let message = format!(
                "is {key_len} bytes; {} needs at least {min_len} (its hash size): use a longer \
                 random secret (`openssl rand -hex 64`), or set DEVELOPMENT = true for local use",
                self.algorithm.as_str()
            );
            return invalid("SIGNING_KEY", &message);
        }
        for (key, value) in [
            ("KEYS_ENCRYPTION_KEY", &self.keys_encryption_key),
            (
                "KEYS_PREVIOUS_ENCRYPTION_KEY",
                &self.keys_previous_encryption_key,
            ),
        ] {
            if !value.is_empty() {
                if let Err(message) = crate::KeysEncryptionKey::parse(value.expose()) {
                    if looks_like_path(value.expose()) {
                        let message = format!(
                            "{message}; it holds a file path: to read the key from that file, \
                             set {key}_FILE to the path instead"
                        );
                        return invalid(key, &message);
                    }
                    return invalid(key, &message);
                }
            }
        }
        if let Some(origin) = self
            .cors_allowed_origins
            .iter()
            .find(|o| *o != "*" && !(o.starts_with("http://") || o.starts_with("https://")))
        {
            let message = format!("{origin:?} is not an origin such as https://app.example.com");
            return invalid("CORS_ALLOWED_ORIGINS", &message);
        }
        if self.cors_allow_credentials {
            if self.cors_allowed_origins.is_empty() {
                return invalid(
                    "CORS_ALLOW_CREDENTIALS",
                    "needs CORS_ALLOWED_ORIGINS: list the origins allowed to send cookies",
                );
            }
            if self.cors_allowed_origins.iter().any(|o| o == "*") {
                return invalid(
                    "CORS_ALLOW_CREDENTIALS",
                    "cannot be used with CORS_ALLOWED_ORIGINS = \"*\": any site could act with \
                     a visitor's cookies; list the trusted origins instead",
                );
            }
        }
        if let Some(url) = &self.jwk_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                let message = format!("{url:?} is not an http:// or https:// URL");
                return invalid("JWK_URL", &message);
            }
        }
        if !is_listen_address(&self.bind) {
            let message = format!("{:?} is not HOST:PORT, e.g. 127.0.0.1:8000", self.bind);
            return invalid("BIND", &message);
        }
        if !["sqlite:", "postgres:", "postgresql:"]
            .iter()
            .any(|scheme| self.database_url.starts_with(scheme))
        {
            // The URL itself is not repeated: it may hold a password.
            if looks_like_path(&self.database_url) {
                return invalid(
                    "DATABASE_URL",
                    "must be sqlite://path/to/file.db or postgres://user@host/db, and holds a \
                     file path: for a SQLite file, write sqlite:// before it; to read the URL \
                     from a file, set DATABASE_URL_FILE to the path instead",
                );
            }
            return invalid(
                "DATABASE_URL",
                "must be sqlite://path/to/file.db or postgres://user@host/db",
            );
        }
        if !self.algorithm.is_hmac() && self.signing_key.is_empty() {
            return invalid(
                "SIGNING_KEY",
                "is required for asymmetric algorithms (a PEM private key)",
            );
        }
        if self.argon2_memory_kib < 8 * self.argon2_parallelism.max(1)
            || self.argon2_iterations == 0
        {
            return invalid(
                "ARGON2_MEMORY_KIB",
                "argon2 needs at least 8 KiB per lane and one iteration",
            );
        }
        if self.database_max_connections == 0 {
            return invalid("DATABASE_MAX_CONNECTIONS", "must be at least 1");
        }
        if self.flush_batch_size == 0 {
            return invalid("FLUSH_BATCH_SIZE", "must be at least 1");
        }
        for (key, timeout) in [
            ("HEADER_READ_TIMEOUT", self.header_read_timeout),
            ("KEEPALIVE_TIMEOUT", self.keepalive_timeout),
        ] {
            if timeout < Duration::from_secs(1) {
                return invalid(key, "must be at least one second");
            }
        }
        if self.max_connections == 0 {
            return invalid("MAX_CONNECTIONS", "must be at least 1");
        }
        if self.database_acquire_timeout.is_zero() {
            return invalid("DATABASE_ACQUIRE_TIMEOUT", "must be longer than zero");
        }
        if self.database_statement_timeout.is_zero() {
            return invalid("DATABASE_STATEMENT_TIMEOUT", "must be longer than zero");
        }
        if self.password_max_similarity > 100
            || (self.password_max_similarity > 0 && self.password_max_similarity < 10)
        {
            return invalid(
                "PASSWORD_MAX_SIMILARITY",
                "must be 0 (off) or a percentage from 10 to 100",
            );
        }
        for field in &self.user_required_fields {
            let builtin = matches!(
                field.as_str(),
                "email" | "phone" | "first_name" | "last_name"
            );
            if !builtin && !self.user_profile_fields.contains(field) {
                return invalid(
                    "USER_REQUIRED_FIELDS",
                    "fields must be email, phone, first_name, last_name or in USER_PROFILE_FIELDS",
                );
            }
        }
        if self.authentication_classes.is_empty() {
            return invalid(
                "AUTHENTICATION_CLASSES",
                "must name one or more of jwt, jwt_stateless and basic",
            );
        }
        if self.check_revoke_token && self.revoke_token_claim.is_empty() {
            return invalid("REVOKE_TOKEN_CLAIM", "must not be empty");
        }
        for claim in &self.token_user_claims {
            let builtin = matches!(
                claim.as_str(),
                "username"
                    | "email"
                    | "phone"
                    | "first_name"
                    | "last_name"
                    | "is_staff"
                    | "is_superuser"
            );
            if !builtin && !self.user_profile_fields.contains(claim) {
                return invalid(
                    "TOKEN_USER_CLAIMS",
                    "claims must be built-in user fields or in USER_PROFILE_FIELDS",
                );
            }
        }
        for field in &self.user_profile_fields {
            if field.is_empty() || BUILTIN_USER_FIELDS.contains(&field.as_str()) {
                return invalid(
                    "USER_PROFILE_FIELDS",
                    "names must be non-empty and not those of built-in user fields",
                );
            }
        }
        for (key, path) in self.paths() {
            if !path.starts_with('/') {
                return invalid(key, "must start with /");
            }
        }
        if !self.sessions_path.ends_with('/') {
            // One session lives at <SESSIONS_PATH><id>/.
            return invalid("SESSIONS_PATH", "must end with /");
        }
        if self.refresh_cookie_name.is_empty()
            || !self
                .refresh_cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return invalid(
                "REFRESH_COOKIE_NAME",
                "must be a cookie name: letters, digits and !#$%&'*+-.^_`|~",
            );
        }
        let attribute_ok = |value: &str| {
            value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        };
        if let Some(path) = &self.refresh_cookie_path {
            if !path.starts_with('/') || !attribute_ok(path) {
                return invalid(
                    "REFRESH_COOKIE_PATH",
                    "must start with / and hold no spaces, commas or semicolons",
                );
            }
        }
        if let Some(domain) = &self.refresh_cookie_domain {
            if !attribute_ok(domain) {
                return invalid(
                    "REFRESH_COOKIE_DOMAIN",
                    "must be a domain name without spaces, commas or semicolons",
                );
            }
        }
        for origin in &self.csrf_trusted_origins {
            let well_formed = origin.split_once("://").is_some_and(|(scheme, host)| {
                matches!(scheme, "http" | "https") && !host.is_empty() && !host.contains('/')
            });
            if !well_formed {
                return invalid(
                    "CSRF_TRUSTED_ORIGINS",
                    "each origin must be scheme://host[:port], e.g. https://app.example.com, without a path",
                );
            }
        }
        let link_page = |link: &Option<String>| {
            link.as_ref().is_none_or(|link| {
                let absolute = link.starts_with("https://") || link.starts_with("http://");
                absolute && link.contains("{uid}") && link.contains("{token}")
            })
        };
        if !link_page(&self.password_reset_url) {
            return invalid(
                "PASSWORD_RESET_URL",
                "must be an absolute http(s) URL with {uid} and {token} in it, e.g. \
                 https://app.example.com/password/reset/confirm/{uid}/{token}",
            );
        }
        if !link_page(&self.activation_url) {
            return invalid(
                "ACTIVATION_URL",
                "must be an absolute http(s) URL with {uid} and {token} in it, e.g. \
                 https://app.example.com/activate/{uid}/{token}",
            );
        }
        if !link_page(&self.email_change_url) {
            return invalid(
                "EMAIL_CHANGE_URL",
                "must be an absolute http(s) URL with {uid} and {token} in it, e.g. \
                 https://app.example.com/email/confirm/{uid}/{token}",
            );
        }
        if self.email_verification != EmailVerification::None
            && (self.smtp_url.is_empty() || self.activation_url.is_none())
        {
            return invalid(
                "EMAIL_VERIFICATION",
                "needs a mail server (SMTP_URL) and the page activation links open (ACTIVATION_URL)",
            );
        }
        Ok(())
    }

    /// Settings that are valid but probably not what was meant, for the server to log.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.development {
            warnings.push(
                "DEVELOPMENT is on: short HMAC signing keys are accepted and the refresh cookie is \
                 sent without Secure; never use it in production"
                    .to_owned(),
            );
        }
        if self.blacklist_after_rotation && !self.rotate_refresh_tokens {
            // simplejwt accepts this silently; Django settings copied from its docs often have it.
            warnings.push(
                "BLACKLIST_AFTER_ROTATION is true but ROTATE_REFRESH_TOKENS is false: refresh never \
                 blacklists; only the verify endpoint checks the blacklist"
                    .to_owned(),
            );
        }
        if self.refresh_token_reuse_detection
            && !(self.rotate_refresh_tokens && self.blacklist_after_rotation)
        {
            warnings.push(
                "REFRESH_TOKEN_REUSE_DETECTION is on but needs ROTATE_REFRESH_TOKENS and \
                 BLACKLIST_AFTER_ROTATION: without them no token is ever reused, and nothing is detected"
                    .to_owned(),
            );
        }
        if self.algorithm.is_hmac() && looks_like_path(self.signing_key.expose()) {
            warnings.push(
                "SIGNING_KEY looks like a file path, and is used as the HMAC secret itself; to \
                 read the secret from that file, set SIGNING_KEY_FILE to the path instead"
                    .to_owned(),
            );
        }
        if self.algorithm.is_hmac()
            && self.signing_key.expose().len() < self.algorithm.min_hmac_key_len()
        {
            warnings.push(format!(
                "SIGNING_KEY is shorter than {} bytes, the output size of {}; use a longer random secret",
                self.algorithm.min_hmac_key_len(),
                self.algorithm.as_str()
            ));
        }
        warnings
    }

    /// Each endpoint path setting with its key.
    pub fn paths(&self) -> [(&'static str, &str); 18] {
        [
            ("TOKEN_OBTAIN_PATH", &self.token_obtain_path),
            ("TOKEN_REFRESH_PATH", &self.token_refresh_path),
            ("TOKEN_VERIFY_PATH", &self.token_verify_path),
            ("TOKEN_BLACKLIST_PATH", &self.token_blacklist_path),
            ("TOKEN_SLIDING_PATH", &self.token_sliding_path),
            (
                "TOKEN_SLIDING_REFRESH_PATH",
                &self.token_sliding_refresh_path,
            ),
            ("INDEX_PATH", &self.index_path),
            ("USERS_PATH", &self.users_path),
            ("USER_PATH", &self.user_path),
            ("USER_PASSWORD_PATH", &self.user_password_path),
            ("PASSWORD_RESET_PATH", &self.password_reset_path),
            (
                "PASSWORD_RESET_CONFIRM_PATH",
                &self.password_reset_confirm_path,
            ),
            ("ACTIVATION_PATH", &self.activation_path),
            ("RESEND_ACTIVATION_PATH", &self.resend_activation_path),
            ("EMAIL_CHANGE_PATH", &self.email_change_path),
            ("SESSIONS_PATH", &self.sessions_path),
            ("TOKEN_BLACKLIST_ALL_PATH", &self.token_blacklist_all_path),
            ("TOKEN_ISSUE_PATH", &self.token_issue_path),
        ]
    }

    /// The reference with each secret setting marked.
    pub fn reference() -> Vec<SettingInfo> {
        let secret = Settings::secret_keys();
        Settings::REFERENCE
            .iter()
            .map(|info| SettingInfo {
                secret: secret.contains(&info.key),
                ..*info
            })
            .collect()
    }
}

/// Whether `text` is an address `serve` can listen on, HOST:PORT: an IP address and a port
/// (`127.0.0.1:8000`, `[::1]:8000`) or a host name and a port (`localhost:8000`). Port 0 picks a
/// free port.
///
/// ```
/// use tollgate_core::settings::is_listen_address;
///
/// assert!(is_listen_address("0.0.0.0:8000") && is_listen_address("localhost:0"));
/// assert!(!is_listen_address("notanaddress") && !is_listen_address("127.0.0.1:99999"));
/// ```
pub fn is_listen_address(text: &str) -> bool {
    if text.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok()
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    #[test]
    fn email_verification_needs_a_mail_server_and_an_activation_page() {
        let mut settings = Settings {
            email_verification: EmailVerification::Mandatory,
            ..Settings::default()
        };
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.contains("EMAIL_VERIFICATION"), "{err}");
        settings.smtp_url = Secret("smtp://127.0.0.1:25".to_owned());
        settings.activation_url = Some("https://app.example.com/activate/{uid}".to_owned());
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.contains("ACTIVATION_URL"), "{err}");
        settings.activation_url = Some("https://app.example.com/activate/{uid}/{token}".to_owned());
        assert!(settings.validate().is_ok());
    }

    use super::*;

    fn load(toml_text: &str, env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let table: toml::Table = toml::from_str(toml_text).expect("test TOML parses");
        let no_files = |_: &str| Err(std::io::ErrorKind::NotFound.into());
        Settings::from_sources(&table, env.iter().copied(), &["CONFIG"], no_files)
            .map(|loaded| loaded.settings)
    }

    #[test]
    fn defaults_are_simplejwts() {
        let s = Settings::default();
        assert_eq!(s.access_token_lifetime, Duration::from_secs(300));
        assert_eq!(s.refresh_token_lifetime, Duration::from_secs(86_400));
        assert_eq!(s.algorithm, Algorithm::HS256);
        assert_eq!(s.auth_header_types, vec!["Bearer"]);
        assert_eq!(s.auth_token_classes, vec![TokenType::Access]);
        assert!(!s.rotate_refresh_tokens && !s.blacklist_after_rotation && s.check_user_is_active);
        s.validate().expect("defaults are valid");
    }

    #[test]
    fn a_flush_batch_of_no_rows_is_refused() {
        let err = load("", &[("TOLLGATE_FLUSH_BATCH_SIZE", "0")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FLUSH_BATCH_SIZE") && err.contains("at least 1"),
            "{err}"
        );
        let s = load("FLUSH_BATCH_SIZE = 500\nFLUSH_BATCH_PAUSE = \"0s\"", &[]).expect("valid");
        assert_eq!(
            (s.flush_batch_size, s.flush_batch_pause),
            (500, Duration::ZERO)
        );
    }

    #[test]
    fn environment_wins_over_toml() {
        let s = load(
            "ACCESS_TOKEN_LIFETIME = 60\nrotate_refresh_tokens = true",
            &[
                ("TOLLGATE_ACCESS_TOKEN_LIFETIME", "5m"),
                ("TOLLGATE_CONFIG", "x.toml"),
                ("HOME", "/root"),
            ],
        )
        .expect("valid");
        assert_eq!(s.access_token_lifetime, Duration::from_secs(300));
        assert!(s.rotate_refresh_tokens);
    }

    #[test]
    fn plain_database_url_loses_to_prefixed_one() {
        let s = load("", &[("DATABASE_URL", "sqlite://a.db")]).expect("valid");
        assert_eq!(s.database_url, "sqlite://a.db");
        let s = load(
            "",
            &[
                ("DATABASE_URL", "sqlite://a.db"),
                ("TOLLGATE_DATABASE_URL", "sqlite://b.db"),
            ],
        )
        .expect("valid");
        assert_eq!(s.database_url, "sqlite://b.db");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = load("", &[("TOLLGATE_ACCESS_TOKEN_LIFETIME", "soon")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("setting ACCESS_TOKEN_LIFETIME:"),
            "{err}"
        );
        let err = load("ALGORITHM = \"HS257\"", &[]).unwrap_err();
        assert!(err.to_string().contains("ALGORITHM"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_with_a_suggestion() {
        let err = load("ACCESS_TOKEN_LIFETME = 5", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown setting ACCESS_TOKEN_LIFETME (did you mean ACCESS_TOKEN_LIFETIME?)"
        );
        let err = load("SECRET_KEY = \"x\"", &[]).unwrap_err();
        assert!(err.to_string().contains("removed"), "{err}");
    }

    #[test]
    fn short_hmac_keys_are_refused_outside_development() {
        let err = load("SIGNING_KEY = \"0123456789abcdef0123456789abcde\"", &[]).unwrap_err();
        assert!(err.to_string().contains("SIGNING_KEY"), "{err}");
        assert!(err.to_string().contains("at least 32"), "{err}");
        let err = load(
            "ALGORITHM = \"HS512\"\nSIGNING_KEY = \"0123456789abcdef0123456789abcdef\"",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("at least 64"), "{err}");
        let dev = load(
            "SIGNING_KEY = \"short\"",
            &[("TOLLGATE_DEVELOPMENT", "true")],
        )
        .expect("allowed in development");
        let warnings = dev.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("DEVELOPMENT is on"), "{warnings:?}");
        assert!(load("", &[]).is_ok(), "an empty key is generated by serve");
    }

    /// DEVELOPMENT_MODE, the former name of DEVELOPMENT, still sets it, with a warning that
    /// names the setting to use in the same source's spelling; both names at once conflict.
    #[test]
    fn development_mode_is_a_former_name_of_development() {
        let table: toml::Table = toml::from_str("DEVELOPMENT_MODE = true").expect("parses");
        let no_files = |_: &str| Err(std::io::ErrorKind::NotFound.into());
        let loaded = Settings::from_sources(&table, [], &[], no_files).expect("loads");
        assert!(loaded.settings.development);
        assert_eq!(
            loaded.renamed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["DEVELOPMENT_MODE is a former name, applied as DEVELOPMENT; rename it to DEVELOPMENT"]
        );
        let env = [("TOLLGATE_DEVELOPMENT_MODE", "true")];
        let loaded =
            Settings::from_sources(&toml::Table::new(), env, &[], no_files).expect("loads");
        assert!(loaded.settings.development && loaded.unknown_env.is_empty());
        assert_eq!(loaded.renamed[0].instead, "TOLLGATE_DEVELOPMENT");
        let err = load(
            "",
            &[
                ("TOLLGATE_DEVELOPMENT", "false"),
                ("TOLLGATE_DEVELOPMENT_MODE", "true"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "TOLLGATE_DEVELOPMENT and TOLLGATE_DEVELOPMENT_MODE are both set; give only one"
        );
        let quiet = Settings::from_sources(&toml::Table::new(), [], &[], no_files).expect("loads");
        assert!(quiet.renamed.is_empty());
    }

    #[test]
    fn keys_encryption_key_must_be_32_hex_bytes_and_is_masked() {
        let err = load("KEYS_ENCRYPTION_KEY = \"not hex\"", &[]).unwrap_err();
        assert!(
            err.to_string().starts_with("setting KEYS_ENCRYPTION_KEY"),
            "{err}"
        );
        let err = load("KEYS_PREVIOUS_ENCRYPTION_KEY = \"abc\"", &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("setting KEYS_PREVIOUS_ENCRYPTION_KEY"),
            "{err}"
        );
        let hex = "0123456789abcdef".repeat(4);
        let ok = load("", &[("TOLLGATE_KEYS_ENCRYPTION_KEY", &hex)]).expect("valid");
        let shown = ok
            .effective()
            .into_iter()
            .find(|(key, _)| *key == "KEYS_ENCRYPTION_KEY")
            .expect("listed");
        assert_eq!(shown.1, "\"<redacted>\"");
        assert!(!format!("{ok:?}").contains(&hex));
    }

    #[test]
    fn blacklist_without_rotation_is_accepted_with_a_warning() {
        let s = load(
            "BLACKLIST_AFTER_ROTATION = true\nSIGNING_KEY = \"0123456789abcdef0123456789abcdef\"",
            &[],
        )
        .expect("valid");
        let warnings = s.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("ROTATE_REFRESH_TOKENS"));
    }

    #[test]
    fn bind_must_be_host_and_port() {
        for good in [
            "127.0.0.1:8000",
            "[::1]:0",
            "0.0.0.0:80",
            "localhost:8000",
            "tollgate.internal:443",
        ] {
            assert!(is_listen_address(good), "{good}");
        }
        for bad in [
            "notanaddress",
            "127.0.0.1",
            ":8000",
            "::1:8000",
            "host:port",
            "127.0.0.1:65536",
            "a b:80",
            "",
        ] {
            assert!(!is_listen_address(bad), "{bad}");
        }
        let err = load("", &[("TOLLGATE_BIND", "notanaddress")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting BIND: \"notanaddress\" is not HOST:PORT, e.g. 127.0.0.1:8000"
        );
    }

    #[test]
    fn database_urls_must_name_a_supported_database_without_being_repeated() {
        let err = load("", &[("DATABASE_URL", "mysql://app:s3cret@db/app")]).unwrap_err();
        assert!(
            err.to_string().starts_with("setting DATABASE_URL:"),
            "{err}"
        );
        assert!(!err.to_string().contains("s3cret"), "{err}");
        for good in [
            "sqlite::memory:",
            "sqlite://t.db",
            "postgres://db/t",
            "postgresql://db/t",
        ] {
            assert!(load("", &[("DATABASE_URL", good)]).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_path_where_a_key_belongs_points_to_the_file_setting() {
        let err = load(
            "ALGORITHM = \"RS256\"",
            &[
                ("TOLLGATE_SIGNING_KEY", "/etc/tollgate/private.pem"),
                ("TOLLGATE_VERIFYING_KEY", "/etc/tollgate/public.pem"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting SIGNING_KEY: holds a file path, not a PEM key: to read the key from that \
             file, set SIGNING_KEY_FILE to the path instead"
        );
        let err = load("", &[("TOLLGATE_KEYS_ENCRYPTION_KEY", "/run/secrets/kek")]).unwrap_err();
        assert!(
            err.to_string().contains("set KEYS_ENCRYPTION_KEY_FILE"),
            "{err}"
        );
        let err = load("", &[("DATABASE_URL", "/var/lib/tollgate/tollgate.db")]).unwrap_err();
        assert!(err.to_string().contains("set DATABASE_URL_FILE"), "{err}");
        // An HMAC secret may be any text: a path-like one is used, with a warning.
        let hmac = load(
            "",
            &[(
                "TOLLGATE_SIGNING_KEY",
                "/run/secrets/tollgate-signing-key.pem",
            )],
        )
        .expect("an HMAC secret of 38 bytes");
        assert!(
            hmac.warnings()
                .iter()
                .any(|w| w.contains("set SIGNING_KEY_FILE")),
            "{:?}",
            hmac.warnings()
        );
    }

    #[test]
    fn reference_lists_every_setting_and_marks_secrets() {
        let reference = Settings::reference();
        assert_eq!(reference.len(), Settings::default().effective().len());
        let signing = reference
            .iter()
            .find(|r| r.key == "SIGNING_KEY")
            .expect("listed");
        assert!(signing.secret);
        assert!(reference.iter().all(|r| !r.doc.trim().is_empty()));
    }
}
