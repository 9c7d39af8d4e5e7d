//! Reading JSON request bodies: every endpoint that takes a JSON body reads it
//! here, so each answers alike: 415 when not sent as `application/json`, 400
//! when the text is not JSON, 422 when it is JSON but not an object (an array
//! is never read as a positional form of the object's fields).

use serde_json::{Map, Value};

use crate::http::errors::ApiError;
use crate::http::request::Request;

/// Checks that the body is sent as `application/json` (parameters allowed).
///
/// # Errors
/// 415 otherwise.
pub(crate) fn require_json(req: &Request) -> Result<(), ApiError> {
    let media = req
        .header("Content-Type")
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    match media {
        Some(m) if m.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::new(
            415,
            "unsupported_media_type",
            "the body must be sent as Content-Type: application/json",
        )),
    }
}

/// The body (sent as `application/json`) as a JSON object.
///
/// # Errors
/// 415 for another content type; 400 `malformed_json` when the text is not
/// JSON; 422 `validation_failed` when it is JSON but not an object.
pub(crate) fn json_object(req: &Request) -> Result<Map<String, Value>, ApiError> {
    require_json(req)?;
    let value: Value = serde_json::from_slice(&req.body).map_err(|e| {
        let reason = crate::new_job::malformed(&req.body, &e);
        ApiError::bad_request("malformed_json", format!("malformed JSON: {reason}"))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(not_an_object(&other)),
    }
}

/// Checks, as [`json_object`] does, that the body is sent as `application/json`
/// and is a JSON object, for an endpoint that reads the text itself (the job
/// request keeps the text to refuse a field given twice). A body whose first
/// character is `{` is left to that reader, so it is not parsed twice.
///
/// # Errors
/// As [`json_object`].
pub(crate) fn require_json_object(req: &Request) -> Result<(), ApiError> {
    require_json(req)?;
    match req.body.iter().copied().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => json_object(req).map(drop),
    }
}

/// The body (sent as `application/json`) as a JSON object's entries in order,
/// with the first key given twice, for an endpoint that refuses repeated
/// fields (the bulk filters, as the job request does).
///
/// # Errors
/// As [`json_object`].
pub(crate) fn json_fields(req: &Request) -> Result<crate::new_job::Fields, ApiError> {
    require_json_object(req)?;
    serde_json::from_slice(&req.body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::unprocessable(e.to_string()),
        _ => {
            let reason = crate::new_job::malformed(&req.body, &e);
            ApiError::bad_request("malformed_json", format!("malformed JSON: {reason}"))
        }
    })
}

/// An optional body's fields: none when the body is empty or blank; else
/// the body as [`json_fields`] reads it, a field given twice refused (422),
/// as in a job request or a bulk filter.
///
/// # Errors
/// As [`json_fields`]; 422 for a repeated field.
pub(crate) fn object(req: &Request) -> Result<Map<String, Value>, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let fields = json_fields(req)?;
    if let Some(key) = fields.duplicate {
        let shown: String = key.chars().take(64).collect();
        return Err(ApiError::unprocessable(format!(
            "invalid {shown}: given more than once"
        )));
    }
    Ok(fields.entries.into_iter().collect())
}

/// Refuses the first field left in `rest` once the known ones were taken
/// out (422 `unknown field`).
///
/// # Errors
/// 422 naming the field (its first 64 characters).
pub(crate) fn only_known(rest: &Map<String, Value>) -> Result<(), ApiError> {
    match rest.keys().next() {
        Some(k) => Err(ApiError::unprocessable(format!(
            "invalid field: unknown field {:?}",
            k.chars().take(64).collect::<String>()
        ))),
        None => Ok(()),
    }
}

/// The 422 for JSON that is not an object, naming what it is.
fn not_an_object(value: &Value) -> ApiError {
    let what = match value {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Object(_) => "an object",
    };
    ApiError::unprocessable(format!(
        "invalid body: the body must be a JSON object, not {what}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(body: &str) -> Request {
        let mut req = Request::new("POST", "/");
        req.headers = vec![("Content-Type".into(), "application/json".into())];
        req.body = body.as_bytes().to_vec();
        req
    }

    #[test]
    fn only_json_content_types_are_accepted() {
        let mut req = Request::new("POST", "/");
        assert_eq!(require_json(&req).unwrap_err().status, 415);
        req.headers = vec![("content-type".into(), "text/plain".into())];
        assert_eq!(require_json(&req).unwrap_err().status, 415);
        req.headers = vec![(
            "Content-Type".into(),
            "Application/JSON; charset=utf-8".into(),
        )];
        assert!(require_json(&req).is_ok());
    }

    #[test]
    fn only_objects_are_read() {
        assert_eq!(json_object(&json(r#" {"a": 1} "#)).unwrap().len(), 1);
        for (body, what) in [
            ("[]", "an array"),
            (r#"[null, "q"]"#, "an array"),
            (r#""x""#, "a string"),
            ("1", "a number"),
            ("true", "a boolean"),
            ("null", "null"),
        ] {
            for err in [
                json_object(&json(body)).unwrap_err(),
                require_json_object(&json(body)).unwrap_err(),
            ] {
                assert_eq!((err.status, err.code), (422, "validation_failed"), "{body}");
                assert!(err
                    .message
                    .ends_with(&format!("must be a JSON object, not {what}")));
            }
        }
    }

    #[test]
    fn text_that_is_not_json_is_malformed() {
        for body in ["", "  ", "[", "{", "nul"] {
            assert_eq!(json_object(&json(body)).unwrap_err().code, "malformed_json");
        }
        for body in ["", "[", "nul"] {
            let err = require_json_object(&json(body)).unwrap_err();
            assert_eq!((err.status, err.code), (400, "malformed_json"), "{body}");
        }
        // An object's text is left to the endpoint's own reader.
        assert!(require_json_object(&json("{")).is_ok());
    }

    #[test]
    fn the_content_type_is_checked_first() {
        let mut req = json("[]");
        req.headers.clear();
        assert_eq!(json_object(&req).unwrap_err().status, 415);
        assert_eq!(require_json_object(&req).unwrap_err().status, 415);
    }
}
