//! Pages of a long list, as Django REST framework's `PageNumberPagination` cuts them: a page
//! number (`page`, 1 by default, or `last`) and a page size (`page_size`, capped at
//! [`MAX_PAGE_SIZE`]; anything but a positive whole number reads as the default).

use super::super::ServiceError;

/// Rows on a page when the request names no size.
pub(crate) const DEFAULT_PAGE_SIZE: i64 = 50;
/// The most rows a page holds, whatever the request asks.
pub(crate) const MAX_PAGE_SIZE: i64 = 100;

/// The page a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRequest {
    number: PageNumber,
    size: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageNumber {
    Number(i64),
    Last,
    /// Not a number: no page has it.
    Invalid,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            number: PageNumber::Number(1),
            size: DEFAULT_PAGE_SIZE,
        }
    }
}

impl PageRequest {
    /// Reads the `page` and `page_size` parameters as DRF does: a page that is not a whole
    /// number is refused once the list is counted ([`PageRequest::window`]); a size that is not
    /// a positive whole number is the default, and a larger one than [`MAX_PAGE_SIZE`] is cut
    /// to it.
    pub(crate) fn parse(page: Option<&str>, page_size: Option<&str>) -> PageRequest {
        let number = match page.map(str::trim) {
            None => PageNumber::Number(1),
            Some("last") => PageNumber::Last,
            Some(text) => text
                .parse::<i64>()
                .map_or(PageNumber::Invalid, PageNumber::Number),
        };
        let size = page_size
            .and_then(|text| text.trim().parse::<i64>().ok())
            .filter(|size| *size > 0)
            .map_or(DEFAULT_PAGE_SIZE, |size| size.min(MAX_PAGE_SIZE));
        PageRequest { number, size }
    }

    /// A request for page `number` of `size` rows (a command walking a whole list).
    pub(crate) fn of(number: i64, size: i64) -> PageRequest {
        PageRequest {
            number: PageNumber::Number(number),
            size: size.clamp(1, MAX_PAGE_SIZE),
        }
    }

    /// Where the page lies in a list of `count` rows; [`ServiceError::InvalidPage`] for a page
    /// that is not a number or past the last one. An empty list has one, empty, page.
    pub(crate) fn window(self, count: i64) -> Result<Window, ServiceError> {
        let pages = if count <= 0 {
            1
        } else {
            (count + self.size - 1) / self.size
        };
        let number = match self.number {
            PageNumber::Number(number) if (1..=pages).contains(&number) => number,
            PageNumber::Last => pages,
            _ => return Err(ServiceError::InvalidPage),
        };
        Ok(Window {
            count,
            number,
            pages,
            limit: self.size,
            offset: (number - 1) * self.size,
        })
    }
}

/// A page's place in its list: the rows to read (`limit` after `offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    count: i64,
    number: i64,
    pages: i64,
    pub(crate) limit: i64,
    pub(crate) offset: i64,
}

impl Window {
    /// The page of these rows.
    pub(crate) fn page<T>(self, results: Vec<T>) -> Page<T> {
        Page {
            count: self.count,
            number: self.number,
            pages: self.pages,
            results,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page<T> {
    /// How many rows the whole list has.
    pub(crate) count: i64,
    /// This page's number, from 1.
    pub(crate) number: i64,
    /// How many pages the list has (at least 1).
    pub(crate) pages: i64,
    /// The page's rows.
    pub(crate) results: Vec<T>,
}

impl<T> Page<T> {
    /// The same page with each row turned into another thing.
    pub(crate) fn map<U>(self, each: impl FnMut(T) -> U) -> Page<U> {
        Page {
            count: self.count,
            number: self.number,
            pages: self.pages,
            results: self.results.into_iter().map(each).collect(),
        }
    }

    /// The next page's number, if there is one.
    pub(crate) fn next(&self) -> Option<i64> {
        (self.number < self.pages).then_some(self.number + 1)
    }

    /// The previous page's number, if there is one.
    pub(crate) fn previous(&self) -> Option<i64> {
        (self.number > 1).then_some(self.number - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(page: Option<&str>, size: Option<&str>, count: i64) -> Option<(i64, i64, i64)> {
        PageRequest::parse(page, size)
            .window(count)
            .ok()
            .map(|w| (w.number, w.limit, w.offset))
    }

    #[test]
    fn pages_are_cut_as_drf_cuts_them() {
        assert_eq!(window(None, None, 120), Some((1, 50, 0)));
        assert_eq!(window(Some("3"), None, 120), Some((3, 50, 100)));
        assert_eq!(window(Some("last"), Some("7"), 20), Some((3, 7, 14)));
        // An empty list has its first page; nothing past it, nothing before the first.
        assert_eq!(window(None, None, 0), Some((1, 50, 0)));
        for page in ["2", "0", "-1", "x", "1.5", ""] {
            assert_eq!(window(Some(page), None, 0), None, "{page}");
        }
        assert_eq!(window(Some("4"), None, 150), None);
        // A size that is no positive number is the default; a big one is capped.
        assert_eq!(window(None, Some("0"), 10), Some((1, 50, 0)));
        assert_eq!(window(None, Some("ten"), 10), Some((1, 50, 0)));
        assert_eq!(window(None, Some("100000"), 10), Some((1, 100, 0)));
    }

    #[test]
    fn a_page_knows_its_neighbours() {
        let page = PageRequest::parse(Some("2"), Some("2"))
            .window(5)
            .expect("exists")
            .page(vec![3, 4]);
        assert_eq!((page.previous(), page.next()), (Some(1), Some(3)));
        let last = PageRequest::parse(Some("last"), Some("2"))
            .window(5)
            .expect("exists")
            .page(vec![5]);
        assert_eq!(
            (last.number, last.previous(), last.next()),
            (3, Some(2), None)
        );
    }
}
