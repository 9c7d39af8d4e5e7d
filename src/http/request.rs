//! The parts of a request the routes use, read once from tiny_http, and the
//! answer they give. Kept free of sockets so routes are plain functions.

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::http::errors::ApiError;

/// A request as the routes see it: the body already read in full.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiRequest {
    /// Upper-case method name.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string's pairs, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// `Authorization` header value.
    pub authorization: Option<String>,
    /// `Content-Type` header value.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl ApiRequest {
    /// Splits `url` (path and query) into the path and decoded query pairs.
    pub fn split_url(url: &str) -> (String, Vec<(String, String)>) {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        (path.to_string(), pairs)
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

/// A successful answer: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply { status: 200, body }
    }
}

/// What a route returns.
pub(crate) type RouteResult = Result<Reply, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_path_and_decoded_pairs() {
        let (path, q) = ApiRequest::split_url("/a/b?x=1&owner=al%20ice&flag&y=a+b");
        assert_eq!(path, "/a/b");
        let want = [("x", "1"), ("owner", "al ice"), ("flag", ""), ("y", "a b")];
        let got: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn repeated_and_unknown_params_are_refused() {
        let (path, query) = ApiRequest::split_url("/x?limit=1&limit=2&colour=red");
        let req = ApiRequest {
            path,
            query,
            ..ApiRequest::default()
        };
        assert_eq!(req.param("limit").unwrap_err().status, 400);
        assert_eq!(req.only_params(&["limit"]).unwrap_err().status, 400);
        assert!(req.param("cursor").unwrap().is_none());
    }
}
