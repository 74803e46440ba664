//! The local stack's HTTP/1.1 servers (API and S3 endpoint): hyper with a header-read
//! timeout and an idle timeout on every connection, `TCP_NODELAY`, the page's origins for
//! CORS, and a graceful stop that waits for the requests in flight.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::Router;
use http::HeaderValue;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

/// How long a client may take to send a request's headers (also the longest a kept-alive
/// connection waits for its next request), and how long a connection may move no byte
/// either way before it is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { header_read: Duration::from_secs(10), idle: Duration::from_secs(60) }
    }
}

/// The origins a browser may read the stack from: the page's own (`http://127.0.0.1:PORT`,
/// `http://localhost:PORT` and the bound address, for the API's port) plus `extra`, each
/// `scheme://host[:port]`.
pub fn origins(api: SocketAddr, extra: &[String]) -> anyhow::Result<Vec<HeaderValue>> {
    let port = api.port();
    let mut all = vec![format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")];
    if !api.ip().is_unspecified() {
        all.push(format!("http://{api}"));
    }
    // Empty entries (an empty variable, a trailing comma) add nothing.
    for o in extra.iter().filter(|o| !o.trim().is_empty()) {
        all.push(parse_origin(o)?);
    }
    let mut unique: Vec<HeaderValue> = Vec::with_capacity(all.len());
    for o in all {
        let o = HeaderValue::try_from(o).context("origin is not a header value")?;
        if !unique.contains(&o) {
            unique.push(o);
        }
    }
    Ok(unique)
}

/// `https://example.com:8080` as a browser sends it in `Origin` (lowercase scheme and
/// host, no path); a trailing `/` is forgiven.
fn parse_origin(s: &str) -> anyhow::Result<String> {
    let trimmed = s.trim().trim_end_matches('/');
    let uri: http::Uri = trimmed.parse().with_context(|| format!("CORS origin {s:?} is not a URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        bail!("CORS origin {s:?} must be scheme://host[:port], such as http://localhost:5173");
    };
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https") {
        bail!("CORS origin {s:?} must be an http or https URL");
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") || authority.as_str().contains('@') {
        bail!("CORS origin {s:?} must be scheme://host[:port], without a path or credentials");
    }
    Ok(format!("{scheme}://{}", authority.as_str().to_ascii_lowercase()))
}

/// Serves `router` on `listener` until `stopped` turns true, then waits for the requests
/// in flight (idle connections close at once).
pub fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<io::Result<()>> {
    tokio::spawn(async move {
        let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
        // Without a timer hyper has no header timeout: a client sending half a request line
        // would hold its connection (and a file descriptor) forever.
        builder.http1().timer(TokioTimer::new()).header_read_timeout(timeouts.header_read);
        let graceful = GracefulShutdown::new();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopped.wait_for(|s| *s) => break,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Without TCP_NODELAY a response written in two parts (headers, then a streamed
            // body: every GET of an object) waits for the peer's delayed ACK, ~40 ms on Linux.
            let _ = tcp.set_nodelay(true);
            let io = TokioIo::new(Idle::new(tcp, timeouts.idle));
            let conn = builder.serve_connection(io, TowerToHyperService::new(router.clone()));
            let conn = graceful.watch(conn.into_owned());
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection closed with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    })
}

/// A stream that fails with `TimedOut` once no byte has moved, in either direction, for
/// `timeout`: a slow reader or writer is fine, a silent one is not. (A read timeout alone
/// would cut long downloads: hyper keeps a read pending while it writes a response.)
struct Idle<S> {
    io: S,
    timeout: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<S> Idle<S> {
    fn new(io: S, timeout: Duration) -> Self {
        let last = Instant::now();
        Self { io, timeout, last, timer: Box::pin(tokio::time::sleep_until(last + timeout)) }
    }

    /// Called when the stream is not ready: ready with the error once the connection has
    /// been idle for the timeout. The timer moves only here, not on every byte.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = self.last + self.timeout;
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        ready!(self.timer.as_mut().poll(cx));
        Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long"))
    }

    fn moved<T>(&mut self, moved: bool, result: T) -> T {
        if moved {
            self.last = Instant::now();
        }
        result
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => this.poll_idle(cx).map(Err),
            Poll::Ready(r) => Poll::Ready(this.moved(buf.filled().len() > before, r)),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => this.poll_idle(cx).map(Err),
            Poll::Ready(r) => Poll::Ready(this.moved(matches!(r, Ok(n) if n > 0), r)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.poll_idle(cx).map(Err),
            Poll::Ready(r) => Poll::Ready(this.moved(matches!(r, Ok(n) if n > 0), r)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.poll_idle(cx).map(Err),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Pending => this.poll_idle(cx).map(Err),
            ready => ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_the_pages_own_plus_those_given() {
        let api: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let given = ["https://Example.COM:8443/".to_owned(), "http://localhost:5173".to_owned(), " ".to_owned()];
        let all = origins(api, &given).unwrap();
        let all: Vec<&str> = all.iter().map(|o| o.to_str().unwrap()).collect();
        assert_eq!(
            all,
            ["http://127.0.0.1:4321", "http://localhost:4321", "https://example.com:8443", "http://localhost:5173"]
        );
        let any: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert_eq!(origins(any, &[]).unwrap().len(), 2);
        for bad in ["*", "localhost:3000", "ftp://x.test", "http://x.test/app", "http://u:p@x.test", "http://x.test?q"]
        {
            assert!(origins(api, &[bad.to_owned()]).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn idle_streams_time_out_and_busy_ones_do_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let timeout = Duration::from_millis(400);
        let (mut client, server) = tokio::io::duplex(64);
        let mut idle = Idle::new(server, timeout);
        let talker = tokio::spawn(async move {
            for _ in 0..4 {
                tokio::time::sleep(timeout / 2).await;
                client.write_all(b"x").await.unwrap();
            }
            client
        });
        let mut buf = [0u8; 1];
        for _ in 0..4 {
            idle.read_exact(&mut buf).await.expect("a byte every half timeout keeps it open");
        }
        let _client = talker.await.unwrap();
        let t0 = Instant::now();
        let e = idle.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t0.elapsed() >= timeout * 9 / 10 && t0.elapsed() < timeout * 3, "{:?}", t0.elapsed());
    }
}
