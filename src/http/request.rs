//! A request as the endpoints see it: method, path, decoded query, every
//! header, and the whole body. Kept free of sockets so endpoints are plain
//! functions.

use percent_encoding::percent_decode_str;

use crate::http::errors::ApiError;

/// One request, read in full before any endpoint sees it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request {
    /// Upper-case method name.
    pub method: String,
    /// The path, without the query string (not percent-decoded).
    pub path: String,
    /// The query string's pairs, percent-decoded (`+` is a space), in order.
    pub query: Vec<(String, String)>,
    /// Every header as received (names as sent, values trimmed), in order; a
    /// name may repeat. Look one up with [`Request::header`].
    pub headers: Vec<(String, String)>,
    /// The body (chunked bodies already decoded).
    pub body: Vec<u8>,
}

/// The pairs of a query string or an `application/x-www-form-urlencoded`
/// body, percent-decoded (`+` is a space), in order.
pub(crate) fn pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

impl Request {
    /// A request for `target` (path and query string).
    pub fn new(method: &str, target: &str) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let query = pairs(query);
        Request {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query,
            ..Request::default()
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The one value of query parameter `name`.
    ///
    /// # Errors
    /// 400 when the parameter is given twice.
    pub fn param(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut found = self.query.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("query parameter {name} is given more than once"),
            ));
        }
        Ok(first)
    }

    /// Refuses query parameters not in `known` (a typo must not widen a filter).
    ///
    /// # Errors
    /// 400 naming the first unknown parameter.
    pub fn only_params(&self, known: &[&str]) -> Result<(), ApiError> {
        match self
            .query
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            Some((k, _)) => Err(ApiError::bad_request(
                "bad_query",
                format!("unknown query parameter {:?}", cut(k)),
            )),
            None => Ok(()),
        }
    }
}

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_decode_str(&plus).decode_utf8_lossy().into_owned()
}

/// At most 64 characters of `s`, for messages.
pub(crate) fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_path_and_decoded_pairs() {
        let req = Request::new("get", "/a/b?x=1&owner=al%20ice&flag&y=a+b");
        assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/a/b"));
        let want = [("x", "1"), ("owner", "al ice"), ("flag", ""), ("y", "a b")];
        let got: Vec<(&str, &str)> = req
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn headers_are_found_whatever_their_case() {
        let mut req = Request::new("GET", "/");
        req.headers = vec![
            ("cookie".into(), "a=1".into()),
            ("Sec-Fetch-Site".into(), "same-origin".into()),
            ("Cookie".into(), "b=2".into()),
        ];
        assert_eq!(req.header("COOKIE"), Some("a=1"));
        assert_eq!(req.header("sec-fetch-site"), Some("same-origin"));
        assert_eq!(req.header("Origin"), None);
    }

    #[test]
    fn repeated_and_unknown_params_are_refused() {
        let req = Request::new("GET", "/x?limit=1&limit=2&colour=red");
        assert_eq!(req.param("limit").unwrap_err().status, 400);
        assert_eq!(req.only_params(&["limit"]).unwrap_err().status, 400);
        assert!(req.param("cursor").unwrap().is_none());
    }
}
