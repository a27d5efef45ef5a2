//! What the templates are given: accounts, times and page links as plain values, and the
//! query parameters of a page.

use serde_json::{json, Value};
use tollgate_store::User;

use crate::service::admin::page::Page;

/// The query parameters of a page: the last value of each, trimmed; a query that cannot be
/// read is no parameters (a page then shows its defaults).
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn of(query: Option<&str>) -> Params {
        let pairs = query
            .and_then(|query| serde_urlencoded::from_str(query).ok())
            .unwrap_or_default();
        Params(pairs)
    }

    /// A parameter's value, if sent and not blank.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }
}

/// A time as pages show it: `{"iso", "text"}` (`2026-12-07T10:02:11Z`, `2026-12-07 10:02
/// UTC`), or null.
pub(super) fn time(at: Option<i64>) -> Value {
    match crate::api::users::timestamp(at) {
        Value::String(iso) => {
            let text = format!("{} UTC", iso.get(..16).unwrap_or(&iso).replace('T', " "));
            json!({ "iso": iso, "text": text })
        }
        _ => Value::Null,
    }
}

/// An account as its row and page show it.
pub(super) fn user(user: &User) -> Value {
    let name = format!("{} {}", user.first_name, user.last_name);
    json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "phone": user.phone,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "name": name.trim(),
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "date_joined": time(Some(user.date_joined)),
        "last_login": time(user.last_login),
    })
}

/// The links of a page of a list at `path`: `{"number", "pages", "count", "previous",
/// "next"}`, each link the page's own query (`kept`) with `parameter` set to its number.
pub(super) fn pagination<T>(
    page: &Page<T>,
    path: &str,
    kept: &[(&str, Option<&str>)],
    parameter: &str,
) -> Value {
    let link = |number: i64| {
        let mut query: Vec<(&str, String)> = kept
            .iter()
            .filter_map(|(key, value)| value.map(|value| (*key, value.to_owned())))
            .collect();
        query.push((parameter, number.to_string()));
        let encoded = serde_urlencoded::to_string(&query).unwrap_or_default();
        format!("{path}?{encoded}")
    };
    json!({
        "number": page.number,
        "pages": page.pages,
        "count": page.count,
        "previous": page.previous().map(link),
        "next": page.next().map(link),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::admin::page::PageRequest;

    #[test]
    fn page_links_keep_the_query_and_set_the_page() {
        let page = PageRequest::parse(Some("2"), Some("10"))
            .window(35)
            .expect("exists")
            .page(vec![()]);
        let links = pagination(
            &page,
            "/admin/users/",
            &[("search", Some("ann lee")), ("is_active", None)],
            "page",
        );
        assert_eq!(
            links,
            json!({
                "number": 2,
                "pages": 4,
                "count": 35,
                "previous": "/admin/users/?search=ann+lee&page=1",
                "next": "/admin/users/?search=ann+lee&page=3",
            })
        );
    }

    #[test]
    fn times_are_shown_to_the_minute_in_utc() {
        assert_eq!(
            time(Some(1_700_000_000)),
            json!({ "iso": "2023-11-14T22:13:20Z", "text": "2023-11-14 22:13 UTC" })
        );
        assert_eq!(time(None), Value::Null);
        let params = Params::of(Some("a=1&a=%20two%20&b="));
        assert_eq!(params.get("a"), Some("two"));
        assert_eq!(params.get("b"), None);
        assert_eq!(Params::of(Some("%zz")).get("a"), None);
    }
}
