//! A short-lived cache of the users that tokens name, for the protected-request, verify and
//! refresh hot paths (USER_CACHE_TTL, 5 s by default). A user changed through this instance is
//! read again at once, and one changed anywhere else on the same database within about a
//! second: see `Store::user_epoch`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tollgate_store::{Store, StoreError, User, UserField};

/// Entries kept at most; past this the cache starts over, which bounds memory under a flood of
/// distinct tokens.
const MAX_ENTRIES: usize = 100_000;

/// Each user with the time it was loaded and the store's user epoch when the load began, by
/// the value of USER_ID_FIELD.
type Entries = HashMap<String, (Instant, u64, Arc<User>)>;

/// Users by the value of USER_ID_FIELD, each kept for a fixed time.
#[derive(Clone)]
pub(crate) struct UserCache {
    ttl: Duration,
    entries: Arc<RwLock<Entries>>,
}

impl UserCache {
    /// A cache keeping users for `ttl`; zero disables it.
    pub(crate) fn new(ttl: Duration) -> UserCache {
        UserCache {
            ttl,
            entries: Arc::default(),
        }
    }

    /// The user whose `field` is `value`, from the cache when fresh, else from the store.
    pub(crate) async fn find(
        &self,
        store: &Store,
        field: UserField,
        value: &str,
    ) -> Result<Option<Arc<User>>, StoreError> {
        if self.ttl.is_zero() {
            return Ok(store.find_user(field, value).await?.map(Arc::new));
        }
        // A user changed anywhere (this instance, another, a command) bumps the epoch: entries
        // loaded under an older one are stale. The epoch is read before the load, so a change
        // that lands during the load makes the entry stale too.
        let epoch = store.user_epoch();
        if let Ok(entries) = self.entries.read() {
            if let Some((loaded, loaded_epoch, user)) = entries.get(value) {
                if *loaded_epoch == epoch && loaded.elapsed() < self.ttl {
                    return Ok(Some(Arc::clone(user)));
                }
            }
        }
        let user = store.find_user(field, value).await?.map(Arc::new);
        if let (Some(user), Ok(mut entries)) = (&user, self.entries.write()) {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(value.to_owned(), (Instant::now(), epoch, Arc::clone(user)));
        }
        Ok(user)
    }

    /// Forgets every cached user, after a change this instance made.
    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_store::{NewUser, PoolConfig};

    async fn store_with_user() -> (Store, User) {
        let store = Store::connect("sqlite::memory:", PoolConfig::default())
            .await
            .expect("connects");
        store.migrate().await.expect("migrates");
        let new = NewUser {
            username: "ann".into(),
            password_hash: "x".into(),
            is_active: true,
            ..NewUser::default()
        };
        let user = store.create_user(&new, 1).await.expect("created");
        (store, user)
    }

    #[tokio::test]
    async fn a_cached_user_is_reused_until_it_expires() {
        // Two stores on one file: a change through the other is unseen by this one's epoch, as
        // a change by another process on SQLite is.
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/db.sqlite", dir.path().display());
        let store = Store::connect(&url, PoolConfig::default())
            .await
            .expect("connects");
        store.migrate().await.expect("migrates");
        let other = Store::connect(&url, PoolConfig::default())
            .await
            .expect("connects");
        let new = NewUser {
            username: "ann".into(),
            password_hash: "x".into(),
            is_active: true,
            ..NewUser::default()
        };
        let user = store.create_user(&new, 1).await.expect("created");
        let cache = UserCache::new(Duration::from_millis(200));
        let id = user.id.to_string();
        let active = || async {
            cache
                .find(&store, UserField::Id, &id)
                .await
                .expect("found")
                .expect("exists")
                .is_active
        };
        assert!(active().await);
        other.set_active(user.id, false).await.expect("updated");
        assert!(active().await, "cached");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!active().await, "expired");
        // A change through the cache's own store is seen at once.
        store.set_active(user.id, true).await.expect("updated");
        assert!(active().await, "changed here");
    }

    #[tokio::test]
    async fn without_a_ttl_every_lookup_reads_the_store() {
        let (store, user) = store_with_user().await;
        let cache = UserCache::new(Duration::ZERO);
        let id = user.id.to_string();
        assert!(
            cache
                .find(&store, UserField::Id, &id)
                .await
                .expect("found")
                .expect("exists")
                .is_active
        );
        store.set_active(user.id, false).await.expect("updated");
        assert!(
            !cache
                .find(&store, UserField::Id, &id)
                .await
                .expect("found")
                .expect("exists")
                .is_active
        );
        assert!(cache
            .find(&store, UserField::Id, "999")
            .await
            .expect("query")
            .is_none());
    }
}
