//! HTTP/2 connections (prior knowledge, no TLS) to the live backends and the shadows, on the h2 crate directly: one
//! multiplexed connection per address, replaced when it fails, has been idle too long or is [`MAX_AGE`] old;
//! requests that arrive while it is being opened wait for it rather than open their own.
//!
//! Why not hyper's client: it sends a request's head, then waits until the connection has written it before it
//! hands over the first bytes of the body, so every request with a body costs the backend two writes to read (and
//! the router two to send). Here the first [`EAGER_BYTES`](super::h2wire::EAGER_BYTES) of a body go into the same write as the head; only a
//! longer body waits for the backend's flow-control window, chunk by chunk. The answer is read by the caller's task
//! itself, with no task of its own in between (docs/router-benchmark.md, run 8).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::{self, SendRequest};
use http::header::{self, HeaderValue};
use http::uri::Authority;
use http::{Method, Request, Response};
use hyper::body::Body;

use super::h2wire::{H2Body, Pipe, strip_connection_headers};
use super::lock;
use super::pool::{PoolError, dial};

/// A connection not used for this long is closed and a new one opened for the next request (as hyper's pool did).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection older than this takes no new requests; the next one opens a new connection and the old one closes
/// when the requests it carries are done. Behind a Kubernetes Service each connection reaches one pod, so this is
/// how the router's HTTP/2 traffic moves onto pods added since (like Envoy's `max_connection_duration`).
pub const MAX_AGE: Duration = Duration::from_secs(300);
/// Flow-control windows the router grants a backend's answers (hyper's client defaults).
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
/// The most the router buffers per stream before a backend's window opens (hyper's client default).
const MAX_SEND_BUFFER: usize = 1024 * 1024;

/// The outcome of one connection attempt, shared by every request that waited for it.
type Attempt = tokio::sync::OnceCell<Result<SendRequest<Bytes>, (io::ErrorKind, String)>>;

/// An address's connection, or the attempt under way to open one.
enum Slot {
    /// `id` tells connections apart (h2's handles have no identity of their own).
    Open {
        sender: SendRequest<Bytes>,
        used: Instant,
        id: u64,
        /// When it was opened.
        born: Instant,
    },
    Connecting(Arc<Attempt>),
}

/// The connections, by address.
pub struct H2Pool {
    conns: Mutex<HashMap<Box<str>, Slot>>,
    /// Connections opened so far (the next one's id).
    opened: std::sync::atomic::AtomicU64,
    /// [`MAX_AGE`], shorter in tests.
    max_age: Duration,
}

impl Default for H2Pool {
    fn default() -> Self {
        H2Pool { conns: Mutex::default(), opened: Default::default(), max_age: MAX_AGE }
    }
}

impl H2Pool {
    /// Sends `req` (its URI absolute: scheme and authority become the `:scheme` and `:authority` pseudo-headers)
    /// to `authority` on the shared connection, or on a new one. A request the connection refused before anything
    /// of it was written (it had just failed or been closed) is sent once more on a new connection; one that was
    /// written is never repeated.
    pub async fn send<B>(&self, authority: &Authority, req: Request<B>) -> Result<Response<H2Body>, PoolError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let (mut parts, body) = req.into_parts();
        strip_connection_headers(&mut parts.headers);
        if !parts.headers.contains_key(header::CONTENT_LENGTH)
            && let Some(len) = body.size_hint().exact()
            && (len > 0 || matches!(parts.method, Method::POST | Method::PUT | Method::PATCH))
        {
            parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        let eos = body.is_end_stream();
        let (sender, reused) = self.sender(authority, None).await?;
        let mut sender = match sender.ready().await {
            Ok(s) => s,
            // The shared connection had failed or been closed: nothing was written yet, so try a new one.
            Err(_) if reused.is_some() => {
                self.sender(authority, reused).await?.0.ready().await.map_err(PoolError::H2)?
            }
            Err(e) => return Err(PoolError::H2(e)),
        };
        let (response, tx) = sender.send_request(Request::from_parts(parts, ()), eos).map_err(PoolError::H2)?;
        let mut cancel = None;
        if !eos {
            let mut pipe = Pipe::new(body, tx);
            // Polled once here, before this task yields: the body already received (most requests to a model) is
            // then handed over before the connection's task writes the head, and goes out in the same write.
            let done = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut pipe).poll(cx).is_ready())).await;
            if !done {
                cancel = Some(pipe.cancel_with_sender());
                tokio::spawn(pipe);
            }
        }
        let response = response.await.map_err(PoolError::H2)?;
        let (parts, recv) = response.into_parts();
        let body = H2Body::new(recv, &parts.headers, cancel);
        Ok(Response::from_parts(parts, body))
    }

    /// Closes the connections to every address but these (after a configuration change).
    pub fn keep_only<'a>(&self, addresses: impl Iterator<Item = &'a Authority>) {
        let keep: Vec<&str> = addresses.map(Authority::as_str).collect();
        lock(&self.conns).retain(|a, _| keep.contains(&&**a));
    }

    /// The connection to `authority`, with its id when it was open already. A new one is opened when there is
    /// none, when it has been idle too long or is older than `max_age`, or when it is the one that `failed`;
    /// requests that need one while it is being opened wait for that attempt instead of opening their own.
    async fn sender(
        &self,
        authority: &Authority,
        failed: Option<u64>,
    ) -> Result<(SendRequest<Bytes>, Option<u64>), PoolError> {
        let attempt = {
            let now = Instant::now();
            let mut conns = lock(&self.conns);
            match conns.get_mut(authority.as_str()) {
                Some(Slot::Open { sender, used, id, born })
                    if now.duration_since(*used) < IDLE_TIMEOUT
                        && now.duration_since(*born) < self.max_age
                        && failed != Some(*id) =>
                {
                    *used = now;
                    return Ok((sender.clone(), Some(*id)));
                }
                Some(Slot::Connecting(attempt)) => attempt.clone(),
                _ => {
                    let attempt = Arc::new(Attempt::new());
                    conns.insert(authority.as_str().into(), Slot::Connecting(attempt.clone()));
                    attempt
                }
            }
        };
        let opened = attempt
            .get_or_init(|| async {
                // Boxed: opening a connection is rare, and its future would otherwise make every request's bigger.
                let opened = Box::pin(connect(authority)).await.map_err(|e| match e {
                    PoolError::Connect(e) => (e.kind(), e.to_string()),
                    other => (io::ErrorKind::Other, format!("{other:?}")),
                });
                let mut conns = lock(&self.conns);
                // Unless the configuration dropped the address meanwhile, the attempt's slot takes its outcome; a
                // failure is not kept, so the next request tries again.
                if let Some(Slot::Connecting(a)) = conns.get(authority.as_str())
                    && Arc::ptr_eq(a, &attempt)
                {
                    match &opened {
                        Ok(sender) => {
                            let id = self.opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let now = Instant::now();
                            conns.insert(
                                authority.as_str().into(),
                                Slot::Open { sender: sender.clone(), used: now, id, born: now },
                            );
                        }
                        Err(_) => {
                            conns.remove(authority.as_str());
                        }
                    }
                }
                opened
            })
            .await;
        match opened {
            Ok(sender) => Ok((sender.clone(), None)),
            Err((kind, message)) => Err(PoolError::Connect(io::Error::new(*kind, message.clone()))),
        }
    }
}

/// Opens a connection to `authority` and starts the task that drives it.
async fn connect(authority: &Authority) -> Result<SendRequest<Bytes>, PoolError> {
    let stream = dial(authority).await?;
    let (sender, connection) = client::Builder::new()
        .enable_push(false)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .handshake(stream)
        .await
        .map_err(PoolError::H2)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::io;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Context;

    use http::HeaderMap;
    use http_body_util::{BodyExt, Channel, Full};
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::TcpListener;

    use super::*;

    /// What a test backend saw.
    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        /// Requests whose body ended in an error (the stream was reset).
        reset: AtomicUsize,
    }

    /// An HTTP/2 backend with small flow-control windows (16 KiB): it reads the whole body, then answers with its
    /// length and its trailer `x-sum` (or `-`), followed by the trailer `x-served: yes`. After answering `/close` it
    /// closes the connection.
    async fn backend() -> (Authority, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                s.connections.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                let (close_tx, mut close_rx) = tokio::sync::mpsc::channel::<()>(1);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (s, close_tx) = (s.clone(), close_tx.clone());
                        async move {
                            let close = req.uri().path() == "/close";
                            let answer = match req.into_body().collect().await {
                                Ok(c) => {
                                    let sum = c.trailers().and_then(|t| t.get("x-sum")).cloned();
                                    let sum = sum.map_or("-".to_string(), |v| v.to_str().unwrap().to_string());
                                    format!("{} {sum}", c.to_bytes().len())
                                }
                                Err(_) => {
                                    s.reset.fetch_add(1, Ordering::SeqCst);
                                    "reset".to_string()
                                }
                            };
                            let (mut tx, body) = Channel::<Bytes, Infallible>::new(2);
                            tokio::spawn(async move {
                                let mut trailers = HeaderMap::new();
                                trailers.insert("x-served", HeaderValue::from_static("yes"));
                                let _ = tx.send_data(Bytes::from(answer)).await;
                                let _ = tx.send_trailers(trailers).await;
                                if close {
                                    let _ = close_tx.send(()).await;
                                }
                            });
                            Ok::<_, Infallible>(Response::new(body))
                        }
                    });
                    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                    builder.initial_stream_window_size(16 * 1024).initial_connection_window_size(16 * 1024);
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let mut conn = std::pin::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        // Abruptly: the answer is written, then the connection dropped without a GOAWAY.
                        _ = close_rx.recv() => {
                            let _ = tokio::time::timeout(Duration::from_millis(20), conn.as_mut()).await;
                        }
                    }
                });
            }
        });
        (authority, seen)
    }

    fn post<B>(authority: &Authority, path: &str, body: B) -> Request<B> {
        Request::post(format!("http://{authority}{path}")).body(body).unwrap()
    }

    /// Sends `body` to `path` and reads the answer: its text and its `x-served` trailer.
    async fn exchange(pool: &H2Pool, authority: &Authority, path: &str, body: Bytes) -> (String, Option<HeaderValue>) {
        let r = pool.send(authority, post(authority, path, Full::new(body))).await.unwrap();
        let c = r.into_body().collect().await.unwrap();
        let served = c.trailers().and_then(|t| t.get("x-served")).cloned();
        (String::from_utf8(c.to_bytes().to_vec()).unwrap(), served)
    }

    #[tokio::test]
    async fn requests_share_one_connection_and_answers_keep_their_trailers() {
        let (authority, seen) = backend().await;
        let pool = Arc::new(H2Pool::default());
        for _ in 0..3 {
            let (text, served) = exchange(&pool, &authority, "/", Bytes::from_static(b"{\"x\":1}")).await;
            assert_eq!((text.as_str(), served), ("7 -", Some(HeaderValue::from_static("yes"))));
        }
        let (a, b, c) = tokio::join!(
            exchange(&pool, &authority, "/", Bytes::from_static(b"a")),
            exchange(&pool, &authority, "/", Bytes::from_static(b"bb")),
            exchange(&pool, &authority, "/", Bytes::from_static(b"ccc"))
        );
        assert_eq!([a.0, b.0, c.0], ["1 -", "2 -", "3 -"]);
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn requests_arriving_together_wait_for_one_connection() {
        let (authority, seen) = backend().await;
        let pool = H2Pool::default();
        // Joined on a new pool: all four need a connection before any is open.
        let (a, b, c, d) = tokio::join!(
            exchange(&pool, &authority, "/", Bytes::from_static(b"a")),
            exchange(&pool, &authority, "/", Bytes::from_static(b"bb")),
            exchange(&pool, &authority, "/", Bytes::from_static(b"ccc")),
            exchange(&pool, &authority, "/", Bytes::from_static(b"dddd"))
        );
        assert_eq!([a.0, b.0, c.0, d.0], ["1 -", "2 -", "3 -", "4 -"]);
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_larger_than_the_backends_window_arrives_whole_with_its_trailers() {
        let (authority, _) = backend().await;
        let pool = H2Pool::default();
        let (mut tx, body) = Channel::<Bytes, Infallible>::new(4);
        let send = pool.send(&authority, post(&authority, "/", body));
        let feed = async move {
            // 1 MiB in 64 KiB chunks, far beyond the backend's 16 KiB windows and EAGER_BYTES.
            for _ in 0..16 {
                tx.send_data(Bytes::from(vec![b'x'; 64 * 1024])).await.unwrap();
            }
            let mut trailers = HeaderMap::new();
            trailers.insert("x-sum", HeaderValue::from_static("42"));
            tx.send_trailers(trailers).await.unwrap();
        };
        let exchange = async {
            let (r, ()) = tokio::join!(send, feed);
            r.unwrap().into_body().collect().await.unwrap().to_bytes()
        };
        let text =
            tokio::time::timeout(Duration::from_secs(10), exchange).await.expect("the backend read the whole body");
        assert_eq!(text, "1048576 42");
    }

    #[tokio::test]
    async fn a_single_chunk_larger_than_the_window_is_sent_as_the_window_opens() {
        let (authority, _) = backend().await;
        let pool = H2Pool::default();
        let sent = exchange(&pool, &authority, "/", Bytes::from(vec![b'y'; 300 * 1024]));
        let (text, _) =
            tokio::time::timeout(Duration::from_secs(10), sent).await.expect("the backend read the whole body");
        assert_eq!(text, "307200 -");
    }

    /// A TCP stream that counts the writes that carried bytes.
    struct CountWrites {
        inner: tokio::net::TcpStream,
        writes: Arc<AtomicUsize>,
    }

    impl AsyncRead for CountWrites {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for CountWrites {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
            if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
                self.writes.fetch_add(1, Ordering::SeqCst);
            }
            polled
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
            if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
                self.writes.fetch_add(1, Ordering::SeqCst);
            }
            polled
        }

        fn is_write_vectored(&self) -> bool {
            self.inner.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn a_small_body_leaves_in_the_same_write_as_the_head() {
        let (authority, _) = backend().await;
        let pool = H2Pool::default();
        let writes = Arc::new(AtomicUsize::new(0));
        let stream = dial(&authority).await.unwrap();
        let (sender, connection) =
            client::Builder::new().handshake(CountWrites { inner: stream, writes: writes.clone() }).await.unwrap();
        tokio::spawn(connection);
        lock(&pool.conns).insert(
            authority.as_str().into(),
            Slot::Open { sender, used: Instant::now(), id: 0, born: Instant::now() },
        );
        // The first exchange settles the connection (SETTINGS and their acknowledgements).
        exchange(&pool, &authority, "/", Bytes::from_static(b"{\"warm\":1}")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = writes.load(Ordering::SeqCst);
        let (text, _) = exchange(&pool, &authority, "/", Bytes::from_static(b"{\"instances\":[[0.1,0.2]]}")).await;
        assert_eq!(text, "25 -");
        assert_eq!(writes.load(Ordering::SeqCst) - before, 1, "HEADERS and DATA in one write");
    }

    #[tokio::test]
    async fn a_connection_the_backend_closed_is_replaced() {
        let (authority, seen) = backend().await;
        let pool = H2Pool::default();
        assert_eq!(exchange(&pool, &authority, "/close", Bytes::from_static(b"a")).await.0, "1 -");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(exchange(&pool, &authority, "/", Bytes::from_static(b"b")).await.0, "1 -");
        assert_eq!(exchange(&pool, &authority, "/", Bytes::from_static(b"c")).await.0, "1 -");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_past_its_age_takes_no_new_requests() {
        let (authority, seen) = backend().await;
        let pool = H2Pool { max_age: Duration::from_millis(200), ..H2Pool::default() };
        assert_eq!(exchange(&pool, &authority, "/", Bytes::from_static(b"a")).await.0, "1 -");
        assert_eq!(exchange(&pool, &authority, "/", Bytes::from_static(b"b")).await.0, "1 -");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(exchange(&pool, &authority, "/", Bytes::from_static(b"c")).await.0, "1 -");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_answer_no_longer_awaited_resets_the_request_still_being_sent() {
        let (authority, seen) = backend().await;
        let pool = H2Pool::default();
        let (mut tx, body) = Channel::<Bytes, Infallible>::new(1);
        tx.send_data(Bytes::from_static(b"start")).await.unwrap();
        let sent = tokio::time::timeout(Duration::from_millis(100), pool.send(&authority, post(&authority, "/", body)));
        assert!(sent.await.is_err(), "the backend waits for the whole body");
        for _ in 0..50 {
            if seen.reset.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(seen.reset.load(Ordering::SeqCst), 1);
        drop(tx);
    }

    #[tokio::test]
    async fn connections_to_addresses_no_longer_configured_are_closed() {
        let (authority, seen) = backend().await;
        let pool = H2Pool::default();
        exchange(&pool, &authority, "/", Bytes::from_static(b"a")).await;
        pool.keep_only([&authority].into_iter());
        exchange(&pool, &authority, "/", Bytes::from_static(b"a")).await;
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        pool.keep_only(std::iter::empty());
        exchange(&pool, &authority, "/", Bytes::from_static(b"a")).await;
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_backend_nobody_listens_on_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        drop(listener);
        let pool = H2Pool::default();
        let sent = pool.send(&authority, post(&authority, "/", Full::new(Bytes::new()))).await;
        assert!(matches!(sent, Err(PoolError::Connect(_))));
    }
}
