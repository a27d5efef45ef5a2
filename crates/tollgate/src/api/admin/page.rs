//! Paginated answers in Django REST framework's shape, `{"count", "next", "previous",
//! "results"}`, with `next` and `previous` as absolute URLs: the request's own, its `page`
//! parameter replaced (removed for the first page) and its parameters in sorted order, as
//! DRF's `replace_query_param` writes them.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::HOST;
use axum::http::request::Parts;
use serde_json::{json, Value};

use crate::service::admin::page::{Page, PageRequest};
use crate::state::AppState;

/// The query of a list request: its parameters, and where the request was sent.
pub(super) struct ListQuery {
    /// `scheme://host/path`.
    base: String,
    params: Vec<(String, String)>,
}

impl FromRequestParts<AppState> for ListQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let params = parts
            .uri
            .query()
            .and_then(|query| serde_urlencoded::from_str(query).ok())
            .unwrap_or_default();
        let host = parts
            .headers
            .get(HOST)
            .and_then(|host| host.to_str().ok())
            .filter(|host| !host.is_empty())
            .unwrap_or("localhost");
        Ok(ListQuery {
            base: format!("{}://{host}{}", scheme(parts, state), parts.uri.path()),
            params,
        })
    }
}

/// `https` when a trusted proxy (TRUSTED_PROXIES) says the client used it
/// (`X-Forwarded-Proto`), else `http`: Tollgate itself speaks plain HTTP.
fn scheme(parts: &Parts, state: &AppState) -> &'static str {
    let peer_trusted = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|peer| {
            let peer = peer.0.ip();
            state
                .settings
                .trusted_proxies
                .iter()
                .any(|net| net.contains(&peer))
        });
    let forwarded_https = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("https"));
    if peer_trusted && forwarded_https {
        "https"
    } else {
        "http"
    }
}

impl ListQuery {
    /// A parameter's value (the last, when repeated), if sent and not blank.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// The page asked for (`page`, `page_size`).
    pub(super) fn page(&self) -> PageRequest {
        PageRequest::parse(self.get("page"), self.get("page_size"))
    }

    /// The answer for `page`: DRF's shape, with links to its neighbours.
    pub(super) fn answer(&self, page: Page<Value>) -> Value {
        json!({
            "count": page.count,
            "next": page.next().map(|number| self.link(Some(number))),
            "previous": page.previous().map(|number| self.link(Some(number).filter(|n| *n > 1))),
            "results": page.results,
        })
    }

    /// This request's URL for page `number` (`None`: without a page parameter).
    fn link(&self, number: Option<i64>) -> String {
        let mut params: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|(key, _)| key != "page")
            .cloned()
            .collect();
        if let Some(number) = number {
            params.push(("page".to_owned(), number.to_string()));
        }
        params.sort_by(|a, b| a.0.cmp(&b.0));
        match serde_urlencoded::to_string(&params) {
            Ok(query) if !query.is_empty() => format!("{}?{query}", self.base),
            _ => self.base.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(params: &[(&str, &str)]) -> ListQuery {
        ListQuery {
            base: "http://example.com/api/admin/users/".to_owned(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn links_replace_the_page_and_keep_the_rest_sorted() {
        let asked = query(&[("search", "ann lee"), ("page", "2"), ("is_active", "true")]);
        let page = PageRequest::parse(Some("2"), Some("1"))
            .window(3)
            .expect("exists")
            .page(vec![json!(2)]);
        let answer = asked.answer(page);
        assert_eq!(
            answer,
            json!({
                "count": 3,
                "next": "http://example.com/api/admin/users/?is_active=true&page=3&search=ann+lee",
                "previous": "http://example.com/api/admin/users/?is_active=true&search=ann+lee",
                "results": [2],
            })
        );
        let first = PageRequest::default()
            .window(1)
            .expect("exists")
            .page(vec![json!(1)]);
        assert_eq!(
            query(&[]).answer(first),
            json!({"count": 1, "next": null, "previous": null, "results": [1]})
        );
    }
}
