//! API keys: what trusted backends present to have tokens issued to users they name. Only a
//! hash of each key is stored, and a key is found by its hash; a revoked key keeps its row.

use crate::{with_pool, with_writer, Store, StoreError};

/// A key to store.
#[derive(Debug, Clone, Copy)]
pub struct NewApiKey<'a> {
    /// Who holds it; unique among live keys.
    pub name: &'a str,
    /// What it may do (`tokens:issue`).
    pub scopes: &'a [String],
    /// The key's hash (hex SHA-256).
    pub key_hash: &'a str,
    /// When it was made, epoch seconds.
    pub created_at: i64,
}

/// A stored key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id.
    pub id: i64,
    /// Who holds it.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<String>,
    /// When it was made, epoch seconds.
    pub created_at: i64,
    /// When it was last presented and accepted.
    pub last_used_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    scopes: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<Row> for ApiKey {
    fn from(row: Row) -> ApiKey {
        ApiKey {
            id: row.id,
            name: row.name,
            scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

const COLUMNS: &str = "id, name, scopes, created_at, last_used_at, revoked_at";

impl Store {
    /// Stores a key; a live key of the same name gives [`StoreError::Duplicate`] on `name`.
    pub async fn create_api_key(&self, key: &NewApiKey<'_>) -> Result<ApiKey, StoreError> {
        let sql = format!(
            "INSERT INTO api_keys (name, scopes, key_hash, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING {COLUMNS}"
        );
        let row: Row = with_writer!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(key.name)
                .bind(key.scopes.join(" "))
                .bind(key.key_hash)
                .bind(key.created_at)
                .fetch_one(pool)
                .await
        })
        .map_err(duplicate_name)?;
        Ok(row.into())
    }

    /// Every key, live and revoked, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY id");
        let rows: Vec<Row> =
            with_pool!(self, |pool| { sqlx::query_as(&sql).fetch_all(pool).await })?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// The live key with this hash, if any.
    pub async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL");
        let row: Option<Row> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(key_hash)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(ApiKey::from))
    }

    /// Records that key `id` was used at `now`.
    pub async fn touch_api_key(&self, id: i64, now: i64) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Revokes the live key `id`; returns it, or `None` if no live key has that id.
    pub async fn revoke_api_key(&self, id: i64, now: i64) -> Result<Option<ApiKey>, StoreError> {
        let sql = format!(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             RETURNING {COLUMNS}"
        );
        let row: Option<Row> = with_writer!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(now)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(ApiKey::from))
    }
}

/// A unique violation of the live keys' names as [`StoreError::Duplicate`]. PostgreSQL names
/// the index; SQLite names the column in its message.
fn duplicate_name(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
        if db.is_unique_violation()
            && (text.contains("api_keys_name_key") || text.contains("api_keys.name"))
        {
            return StoreError::Duplicate { field: "name" };
        }
    }
    err.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory_store;

    fn key<'a>(name: &'a str, hash: &'a str, scopes: &'a [String]) -> NewApiKey<'a> {
        NewApiKey {
            name,
            scopes,
            key_hash: hash,
            created_at: 100,
        }
    }

    #[tokio::test]
    async fn keys_are_found_by_hash_until_revoked_and_names_are_unique_among_live_keys() {
        let store = memory_store().await;
        let scopes = vec!["tokens:issue".to_owned()];
        let made = store
            .create_api_key(&key("shop", "aa", &scopes))
            .await
            .expect("stored");
        assert_eq!(made.scopes, scopes);
        assert_eq!(made.revoked_at, None);
        let found = store.find_api_key("aa").await.expect("query");
        assert_eq!(found.as_ref().map(|k| k.id), Some(made.id));
        assert_eq!(store.find_api_key("bb").await.expect("query"), None);
        let taken = store.create_api_key(&key("shop", "bb", &scopes)).await;
        assert!(
            matches!(taken, Err(StoreError::Duplicate { field: "name" })),
            "{taken:?}"
        );

        store.touch_api_key(made.id, 150).await.expect("touched");
        let revoked = store
            .revoke_api_key(made.id, 200)
            .await
            .expect("query")
            .expect("was live");
        assert_eq!(
            (revoked.last_used_at, revoked.revoked_at),
            (Some(150), Some(200))
        );
        assert_eq!(store.find_api_key("aa").await.expect("query"), None);
        assert_eq!(
            store.revoke_api_key(made.id, 300).await.expect("query"),
            None
        );
        // The name is free again once its key is revoked.
        store
            .create_api_key(&key("shop", "bb", &scopes))
            .await
            .expect("a new key of the name");
        assert_eq!(store.api_keys().await.expect("list").len(), 2);
    }
}
