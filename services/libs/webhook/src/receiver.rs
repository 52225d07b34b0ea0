//! The receiving end, for the receivers Zhida runs itself (the demo's association and the
//! relay bench): one HTTP/1.1 request at a time off a stream, keep-alive, and its Standard
//! Webhooks check. Real receivers use their own web framework and any Standard Webhooks
//! library; the integration tests use PyPI's, not this.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{
    DEFAULT_TOLERANCE_SECS, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret, VerifyError,
    verify,
};

/// Largest request head plus body read; a delivery is a few KiB.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// One request: its headers (names in lower case) and body.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (lower case), empty when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Its `webhook-id`.
    pub fn webhook_id(&self) -> &str {
        self.header(HEADER_ID)
    }

    /// Checks its signature with `secrets` at `now` (Unix seconds), within the default
    /// tolerance.
    pub fn verify(&self, secrets: &[Secret], now: i64) -> Result<(), VerifyError> {
        verify(
            secrets,
            self.header(HEADER_ID),
            self.header(HEADER_TIMESTAMP),
            self.header(HEADER_SIGNATURE),
            &self.body,
            now,
            DEFAULT_TOLERANCE_SECS,
        )
    }
}

/// The next request on `stream`; `buffer` keeps what was read past it for the next call.
/// `None` when the connection ended, or sent something that is not a request within
/// [`MAX_REQUEST_BYTES`].
pub async fn read_request(
    stream: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
) -> Option<Request> {
    let mut chunk = [0u8; 16 * 1024];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > MAX_REQUEST_BYTES {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buffer[..end]).ok()?;
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if end + length > MAX_REQUEST_BYTES {
        return None;
    }
    while buffer.len() < end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = buffer[end..end + length].to_vec();
    buffer.drain(..end + length);
    Some(Request { headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign;

    #[tokio::test]
    async fn requests_are_read_one_after_another_and_verified() {
        let secret = Secret::generate();
        let body = br#"{"type":"policy.relayed"}"#;
        let signature = sign(std::slice::from_ref(&secret), "msg_1", 1_700_000_000, body);
        let one = format!(
            "POST /hooks HTTP/1.1\r\nWebhook-Id: msg_1\r\nwebhook-timestamp: 1700000000\r\n\
             webhook-signature: {signature}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let mut wire = one.into_bytes();
        wire.extend_from_slice(body);
        wire.extend_from_slice(b"POST /hooks HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}");
        let mut stream = wire.as_slice();
        let mut buffer = Vec::new();
        let first = read_request(&mut stream, &mut buffer).await.expect("first");
        assert_eq!(first.webhook_id(), "msg_1");
        assert_eq!(first.body, body);
        assert!(
            first
                .verify(std::slice::from_ref(&secret), 1_700_000_010)
                .is_ok()
        );
        assert!(first.verify(&[Secret::generate()], 1_700_000_010).is_err());
        let second = read_request(&mut stream, &mut buffer)
            .await
            .expect("second");
        assert_eq!(second.body, b"{}");
        assert!(second.verify(&[secret], 1_700_000_010).is_err());
        assert!(read_request(&mut stream, &mut buffer).await.is_none());
    }

    #[tokio::test]
    async fn an_oversized_request_is_not_read() {
        let wire = format!(
            "POST / HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
            MAX_REQUEST_BYTES + 1
        );
        let mut stream = wire.as_bytes();
        assert!(read_request(&mut stream, &mut Vec::new()).await.is_none());
    }
}
