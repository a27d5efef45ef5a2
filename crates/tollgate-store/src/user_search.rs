//! Listing users for administrators: a search over names and addresses, a filter on the active
//! flag, read a page at a time in a stable order (by id).

use crate::users::USER_COLUMNS;
use crate::{with_pool, Store, StoreError, User};

/// Which users to list; the default lists all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Text found, without regard to case, in the username, email address, first or last name
    /// (as Django's admin searches); empty finds all.
    pub search: String,
    /// Only active (`Some(true)`) or inactive (`Some(false)`) users.
    pub is_active: Option<bool>,
}

/// The WHERE clause of a filter: `$1` a LIKE pattern (or NULL), `$2` the active flag (or NULL).
const WHERE: &str = "WHERE ($1 IS NULL OR lower(username) LIKE $1 ESCAPE '\\' \
     OR lower(email) LIKE $1 ESCAPE '\\' OR lower(first_name) LIKE $1 ESCAPE '\\' \
     OR lower(last_name) LIKE $1 ESCAPE '\\') AND ($2 IS NULL OR is_active = $2)";

impl UserFilter {
    /// The search as a LIKE pattern that matches it anywhere, its wildcards taken literally.
    fn pattern(&self) -> Option<String> {
        let search = self.search.trim();
        if search.is_empty() {
            return None;
        }
        let mut pattern = String::from("%");
        for c in search.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        Some(pattern)
    }
}

impl Store {
    /// How many users `filter` selects.
    pub async fn count_users(&self, filter: &UserFilter) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM users {WHERE}");
        let pattern = filter.pattern();
        let count = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(&sql)
                .bind(&pattern)
                .bind(filter.is_active)
                .fetch_one(pool)
                .await
        })?;
        Ok(count)
    }

    /// The users `filter` selects, by id, `limit` of them after skipping `offset`.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<User>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users {WHERE} ORDER BY id LIMIT $3 OFFSET $4");
        let pattern = filter.pattern();
        let users = with_pool!(self, |pool| {
            sqlx::query_as::<_, User>(&sql)
                .bind(&pattern)
                .bind(filter.is_active)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
        })?;
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory_store;
    use crate::NewUser;

    #[tokio::test]
    async fn users_are_searched_filtered_and_paged() {
        let store = memory_store().await;
        for (username, email, first, active) in [
            ("ann", "ann@example.com", "Ann", true),
            ("bob", "bob@work.example", "Robert", false),
            ("carl_x", "carl@example.com", "Carl", true),
            ("dora", "dora@example.com", "Ann-Marie", true),
        ] {
            let new = NewUser {
                username: username.into(),
                email: email.into(),
                first_name: first.into(),
                password_hash: "x".into(),
                is_active: active,
                ..NewUser::default()
            };
            store.create_user(&new, 1).await.expect("creates");
        }
        let names = |users: Vec<User>| -> Vec<String> {
            users.into_iter().map(|user| user.username).collect()
        };
        let all = UserFilter::default();
        assert_eq!(store.count_users(&all).await.expect("counts"), 4);
        assert_eq!(
            names(store.list_users(&all, 2, 1).await.expect("lists")),
            ["bob", "carl_x"]
        );
        let ann = UserFilter {
            search: " ANN ".into(),
            ..UserFilter::default()
        };
        assert_eq!(
            names(store.list_users(&ann, 10, 0).await.expect("lists")),
            ["ann", "dora"]
        );
        let work = UserFilter {
            search: "WORK.example".into(),
            ..UserFilter::default()
        };
        assert_eq!(
            names(store.list_users(&work, 10, 0).await.expect("lists")),
            ["bob"]
        );
        // A wildcard in the search is a character like any other.
        let underscore = UserFilter {
            search: "_".into(),
            ..UserFilter::default()
        };
        assert_eq!(
            names(store.list_users(&underscore, 10, 0).await.expect("lists")),
            ["carl_x"]
        );
        let inactive = UserFilter {
            is_active: Some(false),
            ..UserFilter::default()
        };
        assert_eq!(store.count_users(&inactive).await.expect("counts"), 1);
        let active_ann = UserFilter {
            search: "ann".into(),
            is_active: Some(true),
        };
        assert_eq!(store.count_users(&active_ann).await.expect("counts"), 2);
    }
}
