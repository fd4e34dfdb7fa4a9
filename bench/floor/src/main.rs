//! The floor: the least an HTTP/1 reverse proxy on tokio can do per request,
//! to tell how much of Portico's gap to nginx is Pingora's and how much is
//! tokio's and this machine's. One single-threaded tokio runtime, as Portico
//! runs at `threads: 1`; each client connection keeps one upstream
//! connection; a request head is parsed (httparse) and forwarded as read, a
//! response is read to its Content-Length and written back. No routing, no
//! header rewriting, no timeouts, no pool: less than nginx does, so its rate
//! bounds any gateway on this runtime from above.
//!
//! `floor run -c <ignored>` serves 127.0.0.1:19000 → 127.0.0.1:19080 (the
//! benchmark's ports), so `bench/ab.py floor=bench/floor/target/release/floor`
//! measures it side by side with nginx. Only bodiless requests and
//! Content-Length responses: anything else closes the connection.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LISTEN: &str = "127.0.0.1:19000";
const UPSTREAM: &str = "127.0.0.1:19080";

fn main() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(LISTEN).await?;
        loop {
            let (client, _) = listener.accept().await?;
            tokio::spawn(async move {
                let _ = serve(client).await;
            });
        }
    })
}

/// Length of a complete request head without a body, or `None` while incomplete.
fn request_head(buf: &[u8]) -> std::io::Result<Option<usize>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let has_body = req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("transfer-encoding")
                    || (h.name.eq_ignore_ascii_case("content-length") && h.value != b"0")
            });
            if has_body {
                Err(std::io::ErrorKind::Unsupported.into())
            } else {
                Ok(Some(n))
            }
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(std::io::ErrorKind::InvalidData.into()),
    }
}

/// Length of a complete response (head and Content-Length body), or `None`
/// while incomplete.
fn response_len(buf: &[u8]) -> std::io::Result<Option<usize>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let length = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                .ok_or(std::io::ErrorKind::Unsupported)?;
            Ok((buf.len() >= n + length).then_some(n + length))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(std::io::ErrorKind::InvalidData.into()),
    }
}

async fn serve(mut client: TcpStream) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut upstream: Option<TcpStream> = None;
    let mut req = Vec::with_capacity(4096);
    let mut resp = Vec::with_capacity(32 * 1024);
    loop {
        req.clear();
        let head = loop {
            if client.read_buf(&mut req).await? == 0 {
                return Ok(());
            }
            if let Some(n) = request_head(&req)? {
                break n;
            }
        };
        let up = match &mut upstream {
            Some(up) => up,
            None => {
                let up = TcpStream::connect(UPSTREAM).await?;
                up.set_nodelay(true)?;
                upstream.insert(up)
            }
        };
        up.write_all(&req[..head]).await?;
        resp.clear();
        let total = loop {
            if up.read_buf(&mut resp).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if let Some(n) = response_len(&resp)? {
                break n;
            }
        };
        client.write_all(&resp[..total]).await?;
    }
}
