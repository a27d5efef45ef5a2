//! A JWK Set fetched from a URL, cached, and fetched again when a token names a key it does not
//! hold (a key rotation at the issuer), at most once per refetch interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;
use tollgate_core::KeySet;

/// How long a fetched key set is used before it is fetched again. Defaults to 5 minutes.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The shortest time between two fetches. Defaults to 10 seconds.
const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A JWKS URL could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The HTTP client could not be built.
    #[error("JWKS client: {0}")]
    Client(String),
    /// The URL did not answer with a JWK Set.
    #[error("fetching {url}: {message}")]
    Fetch {
        /// The JWKS URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// The keys of a JWKS URL, shared by clones.
///
/// The set is fetched on first use and kept for `max_age`. A token whose `kid` is not in the set
/// makes it fetch again at once, so keys the issuer adds are picked up without waiting, but at
/// most once per `min_interval`, so tokens with made-up `kid`s cannot make it hammer the issuer.
/// When a fetch fails, the keys fetched before keep verifying.
///
/// ```
/// use std::time::Duration;
/// use tollgate_axum::JwksClient;
///
/// let client = JwksClient::new("https://auth.example.com/.well-known/jwks.json")
///     .unwrap()
///     .min_interval(Duration::from_secs(30));
/// assert_eq!(client.url(), "https://auth.example.com/.well-known/jwks.json");
/// ```
#[derive(Debug, Clone)]
pub struct JwksClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: String,
    http: reqwest::Client,
    max_age: Duration,
    min_interval: Duration,
    cache: RwLock<Cache>,
    /// Held while fetching, so that concurrent requests wait for one fetch.
    fetching: Mutex<()>,
}

#[derive(Debug, Default)]
struct Cache {
    keys: Arc<KeySet>,
    fetched_at: Option<Instant>,
    tried_at: Option<Instant>,
}

impl JwksClient {
    /// A client for `url`, with the default `max_age` (5 minutes) and `min_interval` (10
    /// seconds). Nothing is fetched until a token is verified.
    pub fn new(url: impl Into<String>) -> Result<JwksClient, JwksError> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|err| JwksError::Client(err.to_string()))?;
        Ok(JwksClient {
            inner: Arc::new(Inner {
                url: url.into(),
                http,
                max_age: DEFAULT_MAX_AGE,
                min_interval: DEFAULT_MIN_INTERVAL,
                cache: RwLock::new(Cache::default()),
                fetching: Mutex::new(()),
            }),
        })
    }

    fn with(self, edit: impl FnOnce(&mut Inner)) -> JwksClient {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            url: shared.url.clone(),
            http: shared.http.clone(),
            max_age: shared.max_age,
            min_interval: shared.min_interval,
            cache: RwLock::new(Cache::default()),
            fetching: Mutex::new(()),
        });
        edit(&mut inner);
        JwksClient {
            inner: Arc::new(inner),
        }
    }

    /// How long a fetched set is used before it is fetched again. Defaults to 5 minutes.
    pub fn max_age(self, max_age: Duration) -> JwksClient {
        self.with(|inner| inner.max_age = max_age)
    }

    /// The shortest time between two fetches, whatever tokens arrive. Defaults to 10 seconds.
    pub fn min_interval(self, min_interval: Duration) -> JwksClient {
        self.with(|inner| inner.min_interval = min_interval)
    }

    /// The JWKS URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Fetches the set now, whatever the cache holds, and keeps it.
    pub async fn refresh(&self) -> Result<(), JwksError> {
        let _fetching = self.inner.fetching.lock().await;
        self.fetch().await.map(|_| ())
    }

    /// The keys to verify `token` with: the cached set, fetched again first when it is older
    /// than `max_age` or does not hold the token's key, unless the last fetch was less than
    /// `min_interval` ago.
    pub async fn keys_for(&self, token: &str) -> Arc<KeySet> {
        let now = Instant::now();
        {
            let cache = self.inner.cache.read().await;
            if self.usable(&cache, token, now) {
                return Arc::clone(&cache.keys);
            }
        }
        let _fetching = self.inner.fetching.lock().await;
        {
            // Another request may have fetched while this one waited.
            let cache = self.inner.cache.read().await;
            let rate_limited = cache
                .tried_at
                .is_some_and(|at| at.elapsed() < self.inner.min_interval);
            if self.usable(&cache, token, Instant::now()) || rate_limited {
                return Arc::clone(&cache.keys);
            }
        }
        match self.fetch().await {
            Ok(keys) => keys,
            Err(err) => {
                tracing::warn!(cause = %err, "JWKS fetch failed; keeping the keys fetched before");
                Arc::clone(&self.inner.cache.read().await.keys)
            }
        }
    }

    fn usable(&self, cache: &Cache, token: &str, now: Instant) -> bool {
        let fresh = cache
            .fetched_at
            .is_some_and(|at| now.saturating_duration_since(at) < self.inner.max_age);
        fresh && cache.keys.has_key_for(token)
    }

    async fn fetch(&self) -> Result<Arc<KeySet>, JwksError> {
        self.inner.cache.write().await.tried_at = Some(Instant::now());
        let url = &self.inner.url;
        let failed = |message: String| JwksError::Fetch {
            url: url.clone(),
            message,
        };
        let response = self
            .inner
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|err| failed(err.to_string()))?;
        let body = response
            .bytes()
            .await
            .map_err(|err| failed(err.to_string()))?;
        let keys = Arc::new(KeySet::from_jwks(&body).map_err(|err| failed(err.to_string()))?);
        let mut cache = self.inner.cache.write().await;
        cache.keys = Arc::clone(&keys);
        cache.fetched_at = Some(Instant::now());
        tracing::debug!(url = %url, kids = ?keys.kids().collect::<Vec<_>>(), "JWKS fetched");
        Ok(keys)
    }
}
