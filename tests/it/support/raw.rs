//! A raw HTTP/1.1 client: bytes in, parsed responses out, for requests no
//! HTTP library would send (malformed, split, oversized, pipelined).

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a raw exchange may take before the test calls it hung.
pub(crate) const RAW_DEADLINE: Duration = Duration::from_secs(20);

/// One parsed HTTP/1.1 response.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A raw client connection: bytes in, responses out.
pub(crate) struct RawConn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    pub closed: bool,
}

impl RawConn {
    /// Writes `bytes`; a server that closes early may make this fail, which is fine.
    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Reads more bytes; false once the connection is closed or reset.
    pub(crate) async fn fill(&mut self, deadline: Instant) -> bool {
        if self.closed {
            return false;
        }
        let mut chunk = [0u8; 16384];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
            Err(_) => panic!(
                "no complete response and no close within {RAW_DEADLINE:?}; got so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.closed = true;
                false
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next complete response, or None when the connection closed first
    /// (the bytes seen are kept in `self.buf`).
    pub(crate) async fn response(&mut self) -> Option<RawResponse> {
        let deadline = Instant::now() + RAW_DEADLINE;
        loop {
            if let Some((resp, used)) = parse_response(&self.buf) {
                self.buf.drain(..used);
                return Some(resp);
            }
            if !self.fill(deadline).await {
                return None;
            }
        }
    }

    /// A complete response if one arrives within `wait`; `None` when none
    /// did yet, or the connection closed (then `closed` is set).
    pub(crate) async fn try_response(&mut self, wait: Duration) -> Option<RawResponse> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some((resp, used)) = parse_response(&self.buf) {
                self.buf.drain(..used);
                return Some(resp);
            }
            if self.closed {
                return None;
            }
            let mut chunk = [0u8; 16384];
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => self.closed = true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Everything the server sends until it closes the connection.
    pub(crate) async fn rest_until_close(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + RAW_DEADLINE;
        while self.fill(deadline).await {}
        std::mem::take(&mut self.buf)
    }
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses one response from the front of `buf`; None while incomplete. Every
/// response in these tests has a Content-Length (a missing one means no body).
pub(crate) fn parse_response(buf: &[u8]) -> Option<(RawResponse, usize)> {
    let end = find(buf, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut resp = RawResponse {
        status,
        head,
        body: Vec::new(),
    };
    if let Some(len) = resp.header("content-length") {
        let len: usize = len.parse().ok()?;
        let body = buf.get(end..end + len)?;
        resp.body = body.to_vec();
        return Some((resp, end + len));
    }
    Some((resp, end))
}

/// Sends `request` on a fresh connection and returns the response, if any.
/// A raw connection to `port`, nothing sent yet.
pub(crate) async fn raw_conn(port: u16) -> RawConn {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    RawConn {
        stream,
        buf: Vec::new(),
        closed: false,
    }
}

pub(crate) async fn raw(port: u16, request: &[u8]) -> (Option<RawResponse>, RawConn) {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let mut c = RawConn {
        stream,
        buf: Vec::new(),
        closed: false,
    };
    c.send(request).await;
    (c.response().await, c)
}
