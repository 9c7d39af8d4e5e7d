//! Decoding a `Transfer-Encoding: chunked` body that is (perhaps partly) in a
//! buffer, into the body bytes the endpoints see.

use crate::http::errors::ApiError;

/// A body decoded from chunks, and where the chunked encoding ended in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub body: Vec<u8>,
    pub end: usize,
}

fn bad(message: &str) -> ApiError {
    ApiError::bad_request("bad_request", message)
}

/// The body over the limit.
pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        413,
        "body_too_large",
        format!("the body is over the limit of {limit} bytes"),
    )
}

/// Decodes the chunked body starting at `buf[start..]`. `Ok(None)` when more
/// bytes are needed. Trailer fields are read and dropped.
///
/// # Errors
/// 400 for a malformed encoding; 413 once the body passes `max` bytes.
pub(crate) fn decode(buf: &[u8], start: usize, max: usize) -> Result<Option<Decoded>, ApiError> {
    let mut pos = start;
    let mut body = Vec::new();
    loop {
        let (consumed, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete(c)) => c,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(bad("malformed chunked body")),
        };
        pos += consumed;
        let size = usize::try_from(size).map_err(|_| too_large(max))?;
        if size == 0 {
            return Ok(trailer_end(buf, pos).map(|end| Decoded { body, end }));
        }
        if body.len().saturating_add(size) > max {
            return Err(too_large(max));
        }
        let Some(chunk) = buf.get(pos..pos + size + 2) else {
            return Ok(None);
        };
        if &chunk[size..] != b"\r\n" {
            return Err(bad("malformed chunked body"));
        }
        body.extend_from_slice(&chunk[..size]);
        pos += size + 2;
    }
}

/// Where the trailer section starting at `pos` ends (after its empty line).
fn trailer_end(buf: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let line_end = buf[pos..].windows(2).position(|w| w == b"\r\n")?;
        pos += line_end + 2;
        if line_end == 0 {
            return Some(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_decode_and_partial_input_waits() {
        let raw = b"HEAD4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let got = decode(raw, 4, 100).unwrap().unwrap();
        assert_eq!(got.body, b"Wikipedia");
        assert_eq!(&raw[got.end..], b"NEXT");
        for cut in 4..raw.len() - 4 {
            assert_eq!(decode(&raw[..cut], 4, 100).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn bad_or_big_chunks_are_refused() {
        assert_eq!(decode(b"zz\r\n", 0, 100).unwrap_err().status, 400);
        assert_eq!(decode(b"3\r\nabcX\r\n", 0, 100).unwrap_err().status, 400);
        assert_eq!(decode(b"65\r\n", 0, 100).unwrap_err().status, 413);
        assert_eq!(
            decode(b"ffffffffffffffff\r\n", 0, 100).unwrap_err().status,
            413
        );
    }
}
