//! The one test harness: a real Tollgate server on an ephemeral port, on its own database.
//!
//! Tests written with [`on_both_backends!`] run twice: on SQLite (a file in a fresh temporary
//! directory) and on PostgreSQL (a fresh database on `TOLLGATE_TEST_POSTGRES_URL`, by default
//! the local server, dropped when the test ends). Without a reachable PostgreSQL the PostgreSQL
//! half is skipped with a message, unless `CI=true`, where it fails.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate::state::AppState;
use tollgate_core::settings::Secret;
use tollgate_core::{unix_now, Settings};
use tollgate_store::{NewUser, Store, User};

/// The HMAC key every test server signs with.
pub(crate) const TEST_KEY: &str = "tollgate-test-signing-key-0123456789-abcdefghijklmnopqrstuvwxyz";

/// The local PostgreSQL server that the machine runs.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

pub(crate) fn postgres_admin_url() -> String {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

/// Whether the PostgreSQL half of a test should run. Unreachable PostgreSQL skips it with a
/// message, except under `CI=true`, where it is a failure.
pub(crate) async fn postgres_available() -> bool {
    use sqlx::Connection;
    let url = postgres_admin_url();
    let attempt =
        tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&url)).await;
    match attempt {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            true
        }
        outcome => {
            let reason = match outcome {
                Ok(Err(err)) => err.to_string(),
                _ => "timed out".to_owned(),
            };
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("CI=true and PostgreSQL at {url} is unreachable: {reason}");
            }
            eprintln!("SKIPPED (PostgreSQL at {url} is unreachable: {reason}; set TOLLGATE_TEST_POSTGRES_URL)");
            false
        }
    }
}

/// Declares tests that run once on SQLite and once on PostgreSQL, as `name::sqlite` and
/// `name::postgres`. Each body gets the backend to start its server on.
#[macro_export]
macro_rules! on_both_backends {
    ($( $(#[doc = $doc:literal])* async fn $name:ident($backend:ident) $body:block )*) => {
        $(
            $(#[doc = $doc])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($backend: $crate::common::Backend) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run($crate::common::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::common::postgres_available().await {
                        run($crate::common::Backend::Postgres).await
                    }
                }
            }
        )*
    };
}

/// A running server and a client that talks to it.
pub(crate) struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub settings: Settings,
    /// Held for its drop, which removes the database after the server stopped.
    _database: TestDatabase,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A database of a test's own: a SQLite file in a temporary directory, or a fresh PostgreSQL
/// database dropped when this is dropped.
pub(crate) enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

/// Settings every test starts from: simplejwt's defaults, a known key, a cheap password hash.
pub(crate) fn test_settings() -> Settings {
    Settings {
        signing_key: Secret(TEST_KEY.to_owned()),
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        argon2_parallelism: 1,
        ..Settings::default()
    }
}

impl TestServer {
    /// A server on SQLite with the test settings.
    pub(crate) async fn start() -> TestServer {
        TestServer::start_on(Backend::Sqlite, |_| {}).await
    }

    /// A server on SQLite with the test settings as changed by `edit`.
    pub(crate) async fn start_with(edit: impl FnOnce(&mut Settings)) -> TestServer {
        TestServer::start_on(Backend::Sqlite, edit).await
    }

    /// A server on `backend` with the test settings as changed by `edit`.
    pub(crate) async fn start_on(backend: Backend, edit: impl FnOnce(&mut Settings)) -> TestServer {
        TestServer::start_on_with(backend, edit, |state| state).await
    }

    /// Like [`TestServer::start_on`], with the state changed by `wrap` before the server starts.
    pub(crate) async fn start_on_with(
        backend: Backend,
        edit: impl FnOnce(&mut Settings),
        wrap: impl FnOnce(AppState) -> AppState,
    ) -> TestServer {
        TestServer::start_routed(backend, edit, wrap, |url| url).await
    }

    /// A server on a PostgreSQL database of its own that it reaches only through `relay`.
    pub(crate) async fn start_through(
        relay: &Relay,
        edit: impl FnOnce(&mut Settings),
    ) -> TestServer {
        let port = relay.port();
        TestServer::start_routed(
            Backend::Postgres,
            edit,
            |state| state,
            |url| url.replacen(&authority(&url), &format!("127.0.0.1:{port}"), 1),
        )
        .await
    }

    /// Starts a server whose database URL is the test database's as changed by `route`.
    async fn start_routed(
        backend: Backend,
        edit: impl FnOnce(&mut Settings),
        wrap: impl FnOnce(AppState) -> AppState,
        route: impl FnOnce(String) -> String,
    ) -> TestServer {
        let mut settings = test_settings();
        edit(&mut settings);
        settings.validate().expect("test settings are valid");
        let database = TestDatabase::create(backend).await;
        settings.database_url = route(database.url());
        let store = Store::connect(
            &settings.database_url,
            tollgate::cli::pool_config(&settings),
        )
        .await
        .expect("database opens");
        store.migrate().await.expect("database migrates");
        let store = match &settings.redis_url {
            Some(url) => store
                .with_redis(url, &settings.redis_key_prefix)
                .await
                .expect("REDIS_URL parses"),
            None => store,
        };
        let state = wrap(AppState::new(settings.clone(), store).expect("state builds"));
        state.start_sync().await.expect("revocations load");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let base = format!("http://{}", listener.local_addr().expect("has an address"));
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(tollgate::server::run(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client builds");
        TestServer {
            base,
            client,
            state,
            settings,
            _database: database,
            shutdown: Some(shutdown),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.state.store
    }

    /// Creates an active user with a password.
    pub(crate) async fn create_user(&self, username: &str, password: &str) -> User {
        self.create_user_with(username, password, |_| {}).await
    }

    /// Creates an active user with a password, as changed by `edit` (a staff member...).
    pub(crate) async fn create_user_with(
        &self,
        username: &str,
        password: &str,
        edit: impl FnOnce(&mut NewUser),
    ) -> User {
        let mut new = NewUser {
            username: username.to_owned(),
            email: format!("{username}@example.com"),
            password_hash: self.state.passwords.hash(password.to_owned()).await,
            is_active: true,
            ..NewUser::default()
        };
        edit(&mut new);
        self.store()
            .create_user(&new, unix_now())
            .await
            .expect("user created")
    }

    pub(crate) async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request sent");
        read(response).await
    }

    pub(crate) async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let body = serde_urlencoded::to_string(fields).expect("form encodes");
        self.post_raw(
            path,
            Some("application/x-www-form-urlencoded"),
            body.into_bytes(),
        )
        .await
    }

    pub(crate) async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        read(request.send().await.expect("request sent")).await
    }

    /// GET with an optional `Authorization` header value.
    pub(crate) async fn get(&self, path: &str, authorization: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.get(self.url(path));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        read(request.send().await.expect("request sent")).await
    }

    /// Any method, with an optional bearer token and an optional JSON body.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("request sent")).await
    }

    /// Sends every request at once, each on a connection of its own opened beforehand, and
    /// returns each answer (status and JSON body, `Null` if it has none) in order: how a rule
    /// about concurrency is tested, since requests sent one after another prove nothing about
    /// it. Build the requests with [`raw_request`].
    pub(crate) async fn send_together(&self, requests: Vec<Vec<u8>>) -> Vec<(StatusCode, Value)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.base.trim_start_matches("http://").to_owned();
        let mut streams = Vec::new();
        for _ in &requests {
            let stream = tokio::net::TcpStream::connect(&address)
                .await
                .expect("connects");
            stream.set_nodelay(true).expect("sets nodelay");
            streams.push(stream);
        }
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(requests.len()));
        let sent: Vec<_> = streams
            .into_iter()
            .zip(requests)
            .map(|(mut stream, request)| {
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    stream.write_all(&request).await.expect("request sent");
                    let mut answer = Vec::new();
                    stream.read_to_end(&mut answer).await.expect("answer read");
                    parse_response(&answer)
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in sent {
            answers.push(task.await.expect("request task"));
        }
        answers
    }

    /// Logs in and returns (refresh, access).
    pub(crate) async fn obtain_pair(&self, username: &str, password: &str) -> (String, String) {
        let (status, body) = self
            .post_json(
                "/api/token/",
                json!({ "username": username, "password": password }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login failed: {body}");
        (token_field(&body, "refresh"), token_field(&body, "access"))
    }

    /// Signs any payload with the test key and the configured algorithm (HS*).
    pub(crate) fn sign(&self, payload: Value) -> String {
        sign_with(TEST_KEY, &self.settings, payload)
    }

    /// Stops the server and drops its database.
    pub(crate) async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Closing waits for every connection to come back: one held forever is a bug.
        tokio::time::timeout(Duration::from_secs(30), self.state.store.close())
            .await
            .expect("the store closed within 30 s");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // The database is dropped with the fields, after the server was told to stop.
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        self.drop_now();
    }
}

impl TestDatabase {
    pub(crate) async fn create(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("tollgate_test_{}", tollgate_core::new_jti());
                admin_query(&admin_url, &format!("CREATE DATABASE {name}")).await;
                TestDatabase::Postgres { admin_url, name }
            }
            Backend::Sqlite => TestDatabase::Sqlite(tempfile::tempdir().expect("temp dir")),
        }
    }

    pub(crate) fn url(&self) -> String {
        match self {
            TestDatabase::Sqlite(dir) => format!("sqlite://{}/tollgate.db", dir.path().display()),
            TestDatabase::Postgres { admin_url, name } => {
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(base, _)| base);
                format!("{base}/{name}")
            }
        }
    }

    /// Drops a PostgreSQL test database (forcing off the server's connections). Runs on a
    /// thread of its own because `Drop` cannot await.
    fn drop_now(&self) {
        if let TestDatabase::Postgres { admin_url, name } = self {
            let (admin_url, sql) = (
                admin_url.clone(),
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(admin_query(&admin_url, &sql));
            })
            .join();
            if dropped.is_err() {
                eprintln!("warning: could not drop the test database {name}");
            }
        }
    }
}

async fn admin_query(admin_url: &str, sql: &str) {
    use sqlx::Connection;
    let mut connection = match sqlx::PgConnection::connect(admin_url).await {
        Ok(connection) => connection,
        Err(err) => panic!(
            "PostgreSQL at {admin_url} is unreachable ({err}); start it or set TOLLGATE_TEST_POSTGRES_URL"
        ),
    };
    sqlx::query(sql)
        .execute(&mut connection)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
    let _ = connection.close().await;
}

/// The `host:port` of a PostgreSQL URL.
pub(crate) fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split('/').next().unwrap_or(rest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// A TCP relay from a port of its own to another address (the test PostgreSQL server), which
/// a test cuts or freezes to play the network or the database going away, and restores. Ends
/// when dropped.
pub(crate) struct Relay {
    port: u16,
    state: tokio::sync::watch::Sender<Path>,
    task: tokio::task::JoinHandle<()>,
}

/// What a [`Relay`] does with the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Accepts and relays.
    Open,
    /// Accepts nothing, and has dropped every connection relayed.
    Cut,
    /// Accepts nothing, and keeps every connection relayed open without passing on a byte, as
    /// a network that drops packets does.
    Frozen,
}

impl Relay {
    /// A relay to the PostgreSQL server of the test databases, open.
    pub(crate) async fn to_postgres() -> Relay {
        Relay::start(authority(&postgres_admin_url())).await
    }

    /// A relay to `target` (`host:port`) on a free port, open.
    pub(crate) async fn start(target: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("relay binds");
        let port = listener.local_addr().expect("relay address").port();
        let (state, mut watch) = tokio::sync::watch::channel(Path::Open);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                // Unless open, nothing is accepted: a client's connect completes in the
                // kernel's backlog and then hears nothing, as behind a dead route.
                if watch.wait_for(|path| *path == Path::Open).await.is_err() {
                    return;
                }
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = watch.changed() => continue,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let target = target.clone();
                let mut path = watch.clone();
                connections.spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
                        _ = path.wait_for(|path| *path != Path::Open) => {}
                    }
                    // Frozen: both ends stay open, silent, until the relay is cut or restored;
                    // then they are dropped.
                    let _ = path.wait_for(|path| *path != Path::Frozen).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Relay { port, state, task }
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Stops accepting connections and drops every connection relayed.
    pub(crate) fn cut(&self) {
        self.state.send_replace(Path::Cut);
    }

    /// Stops accepting connections and passing on bytes, keeping every connection open.
    pub(crate) fn freeze(&self) {
        self.state.send_replace(Path::Frozen);
    }

    /// Accepts and relays again, beginning with the connections waiting since the cut; the
    /// connections held by a freeze are dropped.
    pub(crate) fn restore(&self) {
        self.state.send_replace(Path::Open);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Signs a payload with `key` and the settings' algorithm.
pub(crate) fn sign_with(key: &str, settings: &Settings, payload: Value) -> String {
    let algorithm: jsonwebtoken::Algorithm = settings
        .algorithm
        .as_str()
        .parse()
        .expect("known algorithm");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .expect("signs")
}

/// Decodes a token's payload without checking anything.
pub(crate) fn payload(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

pub(crate) fn token_field(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        .to_owned()
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body read");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:?}"));
    (status, body)
}

/// A payload as simplejwt would write it for `user_id`, `token_type`, living `lifetime` seconds.
pub(crate) fn claims(token_type: &str, user_id: &str, lifetime: i64) -> Value {
    let now = unix_now();
    json!({
        "token_type": token_type,
        "exp": now + lifetime,
        "iat": now,
        "jti": tollgate_core::new_jti(),
        "user_id": user_id,
    })
}

/// The token with one character of its signature changed (not the last, whose low bits may be
/// padding).
pub(crate) fn tamper_signature(token: &str) -> String {
    let (head, signature) = token.rsplit_once('.').expect("three parts");
    let mut chars: Vec<char> = signature.chars().collect();
    chars[5] = if chars[5] == 'A' { 'B' } else { 'A' };
    format!("{head}.{}", chars.into_iter().collect::<String>())
}

/// Running the `tollgate` binary as a user does.
pub(crate) mod binary {
    use std::path::Path;
    use std::process::{Command, Output, Stdio};
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::sync::mpsc;

    pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_tollgate");

    /// A command in `dir` with a SQLite database there, created by the first command that
    /// needs it (`--create`: tests start in empty folders), and no TOLLGATE_* from the outer
    /// environment.
    pub(crate) fn tollgate(dir: &Path, args: &[&str]) -> Command {
        let mut command = tollgate_without_create(dir, &[]);
        command.arg("--create").args(args);
        command
    }

    /// [`tollgate`] without `--create`: commands other than `serve` and `migrate` refuse a
    /// database that does not exist.
    pub(crate) fn tollgate_without_create(dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .current_dir(dir)
            .args(args)
            .env("DATABASE_URL", "sqlite://tollgate.db")
            .env("TOLLGATE_LOG", "info");
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("TOLLGATE_")) {
            command.env_remove(name);
        }
        command
            .env("TOLLGATE_ARGON2_MEMORY_KIB", "1024")
            .env("TOLLGATE_ARGON2_ITERATIONS", "1");
        command
    }

    pub(crate) fn run(mut command: impl std::borrow::BorrowMut<Command>) -> Output {
        command
            .borrow_mut()
            .stdin(Stdio::null())
            .output()
            .expect("tollgate runs")
    }

    pub(crate) fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// Runs `createuser --username USERNAME --no-input` with `password` as `command` (a
    /// [`tollgate`] command with no arguments, perhaps with more environment) and checks that
    /// it succeeded.
    pub(crate) fn create_user(mut command: Command, username: &str, password: &str) {
        command
            .args(["createuser", "--username", username, "--no-input"])
            .env("TOLLGATE_USER_PASSWORD", password);
        let created = run(command);
        assert!(created.status.success(), "{}", text(&created.stderr));
    }

    /// Logs in at `base` (`http://host:port`) with JSON: (access, refresh).
    pub(crate) async fn log_in(base: &str, username: &str, password: &str) -> (String, String) {
        let body: serde_json::Value = reqwest::Client::new()
            .post(format!("{base}/api/token/"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("JSON");
        (
            super::token_field(&body, "access"),
            super::token_field(&body, "refresh"),
        )
    }

    /// A `tollgate serve` process on a free port, killed when dropped.
    pub(crate) struct Served {
        /// The server process (killed when dropped).
        pub child: tokio::process::Child,
        /// `http://127.0.0.1:PORT`.
        pub base: String,
        /// Every line the server wrote to standard error, as it comes.
        pub logs: mpsc::UnboundedReceiver<String>,
        /// The lines it wrote before it listened, the "listening" line included.
        pub start_logs: Vec<String>,
    }

    impl Served {
        /// Starts `command` with `serve --bind 127.0.0.1:0` and waits for its address, read from
        /// its "listening" log line (text or JSON format).
        pub(crate) async fn start(mut command: Command) -> Served {
            command
                .args(["serve", "--bind", "127.0.0.1:0"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = tokio::process::Command::from(command)
                .kill_on_drop(true)
                .spawn()
                .expect("serve starts");
            let mut lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
            let (sender, mut logs) = mpsc::unbounded_channel();
            // Keep draining the logs so that the server never blocks on a full pipe.
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
            let mut seen = Vec::new();
            let address = tokio::time::timeout(Duration::from_secs(30), async {
                while let Some(line) = logs.recv().await {
                    let found = listening_address(&line);
                    seen.push(line);
                    if found.is_some() {
                        return found;
                    }
                }
                None
            })
            .await
            .ok()
            .flatten();
            let address = address.unwrap_or_else(|| {
                panic!("the server did not announce its address; it wrote: {seen:#?}")
            });
            Served {
                child,
                base: format!("http://{address}"),
                logs,
                start_logs: seen,
            }
        }

        /// Waits (up to 10 s) until `/readyz` answers 200: the database and, with REDIS_URL,
        /// Redis filled and trusted.
        pub(crate) async fn until_ready(&self) {
            let client = reqwest::Client::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let status = client
                    .get(format!("{}/readyz", self.base))
                    .send()
                    .await
                    .expect("sent")
                    .status();
                if status == reqwest::StatusCode::OK {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} never became ready ({status})",
                    self.base
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        /// The lines logged so far that were not yet taken.
        pub(crate) fn drain_logs(&mut self) -> Vec<String> {
            let mut lines = Vec::new();
            while let Ok(line) = self.logs.try_recv() {
                lines.push(line);
            }
            lines
        }
    }

    fn listening_address(line: &str) -> Option<String> {
        if !line.contains("tollgate listening") {
            return None;
        }
        let rest = line
            .split("address=")
            .nth(1)
            .or_else(|| line.split("\"address\":\"").nth(1))?;
        Some(
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
                .collect(),
        )
    }
}

pub(crate) mod authenticator;
pub(crate) mod signed_endpoint;
pub(crate) mod smtp;

/// A private `redis-server` for tests that stop and start Redis: never the machine's shared one.
pub(crate) mod redis_server {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A private Redis on `port`, without persistence; killed when dropped.
    pub(crate) struct PrivateRedis(Child);

    impl PrivateRedis {
        /// A private Redis on a free port, and the URL of its database 0.
        pub(crate) fn start_anywhere() -> (PrivateRedis, String) {
            let port = free_port();
            (
                PrivateRedis::start(port),
                format!("redis://127.0.0.1:{port}/0"),
            )
        }

        pub(crate) fn start(port: u16) -> PrivateRedis {
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts (is it installed?)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            PrivateRedis(child)
        }
    }

    impl Drop for PrivateRedis {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A port nothing listens on now.
    pub(crate) fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port()
    }
}

/// An HTTP/1.1 request as bytes, closing its connection after the answer: `body` is sent as
/// JSON when given.
pub(crate) fn raw_request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Vec<u8> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    request.into_bytes()
}

/// The status and JSON body of a raw HTTP/1.1 answer with a `Content-Length`.
fn parse_response(answer: &[u8]) -> (StatusCode, Value) {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, body)
}
