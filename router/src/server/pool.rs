//! HTTP/1.1 connections to the live backends and the shadows, kept open and reused: per address a queue of idle
//! connections, the oldest taken first (the most likely to be ready), a connection given back when its answer's body
//! has been read to the end. Leaner than hyper-util's pooled client, which spawns a task per request to give a
//! connection back and whose request future is large enough to cost measurable copying (docs/router-benchmark.md,
//! run 5).

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Uri};
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::lock;

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// An idle connection older than this is closed rather than reused (backends close theirs too).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per address; more are closed when given back.
const MAX_IDLE: usize = 512;

/// Why a request got no answer.
#[derive(Debug)]
pub enum PoolError {
    /// No connection could be opened.
    Connect(std::io::Error),
    /// The connection failed while sending or waiting.
    Http(hyper::Error),
    /// The HTTP/2 connection or stream failed ([`super::h2pool::H2Pool`]).
    H2(h2::Error),
}

struct Idle<B> {
    sender: SendRequest<B>,
    since: Instant,
}

/// Keyed by the authority's text: `Authority`'s own hash lower-cases and hashes it a byte at a time, which cost more
/// than the rest of the pool (callgrind, docs/router-benchmark.md). The configuration's addresses are compared as
/// written.
type Queues<B> = Mutex<HashMap<Box<str>, VecDeque<Idle<B>>>>;

/// The idle connections, by address.
pub struct H1Pool<B> {
    idle: Arc<Queues<B>>,
}

impl<B> Default for H1Pool<B> {
    fn default() -> Self {
        H1Pool { idle: Arc::new(Mutex::new(HashMap::new())) }
    }
}

impl<B> H1Pool<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Sends `req` (origin-form: only its path and query are written) to `authority` on an idle connection, or on
    /// a new one. A request an idle connection could not take (the backend had just closed it) is sent once more on
    /// a new connection; one that was sent is never repeated.
    pub async fn send(&self, authority: &Authority, mut req: Request<B>) -> Result<Response<Pooled<B>>, PoolError> {
        let path = req.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(path);
        if !req.headers().contains_key(header::HOST)
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            req.headers_mut().insert(header::HOST, host);
        }
        // Connecting is boxed: it is rare, and its future would otherwise make every request's future bigger (more
        // bytes copied each time hyper or a timeout moves it; callgrind, docs/router-benchmark.md).
        let mut sender = match self.checkout(authority).await {
            Some(s) => s,
            None => Box::pin(connect(authority)).await?,
        };
        let response = match sender.try_send_request(req).await {
            Ok(r) => r,
            Err(mut e) => match e.take_message() {
                Some(req) => {
                    sender = Box::pin(connect(authority)).await?;
                    sender.send_request(req).await.map_err(PoolError::Http)?
                }
                None => return Err(PoolError::Http(e.into_error())),
            },
        };
        let (parts, body) = response.into_parts();
        let back = Giveback { idle: self.idle.clone(), authority: authority.clone(), sender };
        Ok(Response::from_parts(parts, Pooled { inner: body, back: Some(back) }))
    }

    /// Closes the idle connections to every address but these (after a configuration change).
    pub fn keep_only<'a>(&self, addresses: impl Iterator<Item = &'a Authority>) {
        let keep: Vec<&str> = addresses.map(Authority::as_str).collect();
        lock(&self.idle).retain(|a, _| keep.contains(&&**a));
    }

    async fn checkout(&self, authority: &Authority) -> Option<SendRequest<B>> {
        loop {
            let idle = lock(&self.idle).get_mut(authority.as_str()).and_then(VecDeque::pop_front)?;
            if idle.sender.is_closed() || idle.since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            let mut sender = idle.sender;
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }
}

async fn connect<B>(authority: &Authority) -> Result<SendRequest<B>, PoolError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = dial(authority).await?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(PoolError::Http)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Opens a TCP connection to `authority` (within 2 s), with Nagle's algorithm off.
pub async fn dial(authority: &Authority) -> Result<TcpStream, PoolError> {
    let addr = (authority.host().trim_start_matches('[').trim_end_matches(']'), authority.port_u16().unwrap_or(80));
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(s) => s.map_err(PoolError::Connect)?,
        Err(_) => return Err(PoolError::Connect(std::io::ErrorKind::TimedOut.into())),
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// What gives a connection back once its answer has been read.
struct Giveback<B> {
    idle: Arc<Queues<B>>,
    authority: Authority,
    sender: SendRequest<B>,
}

impl<B> Giveback<B> {
    fn give(self) {
        let connection = Idle { sender: self.sender, since: Instant::now() };
        let mut idle = lock(&self.idle);
        match idle.get_mut(self.authority.as_str()) {
            Some(queue) if queue.len() < MAX_IDLE => queue.push_back(connection),
            Some(_) => {}
            None => {
                idle.insert(self.authority.as_str().into(), VecDeque::from([connection]));
            }
        }
    }
}

/// An answer's body; the connection goes back to the pool when it ends. Dropped before its end, the connection is
/// closed with it (hyper cannot reuse a connection with an unread body).
pub struct Pooled<B> {
    inner: Incoming,
    back: Option<Giveback<B>>,
}

impl<B> Body for Pooled<B> {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Pooled<B> {
    /// Gives the connection back (the body has ended).
    fn give_back(&mut self) {
        if let Some(back) = self.back.take() {
            back.give();
        }
    }
}

impl<B> Drop for Pooled<B> {
    fn drop(&mut self) {
        // hyper's server may stop polling a body that says it has ended, before its last (empty) frame.
        if self.inner.is_end_stream() {
            self.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use tokio::net::TcpListener;

    use super::*;

    /// A backend answering `/close` with `connection: close`, `/big` with 1 MiB, anything else with `ok`; it
    /// counts the connections it accepted.
    async fn backend() -> (Authority, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = service_fn(|req: Request<Incoming>| async move {
                        let mut r = match req.uri().path() {
                            "/big" => Response::new(Full::new(Bytes::from(vec![b'x'; 1 << 20]))),
                            _ => Response::new(Full::new(Bytes::from_static(b"ok"))),
                        };
                        if req.uri().path() == "/close" {
                            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                        }
                        Ok::<_, Infallible>(r)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (authority, accepted)
    }

    fn get(path: &str) -> Request<Full<Bytes>> {
        Request::get(path).body(Full::new(Bytes::new())).unwrap()
    }

    async fn read(pool: &H1Pool<Full<Bytes>>, authority: &Authority, path: &str) -> Bytes {
        let r = pool.send(authority, get(path)).await.unwrap();
        r.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn answers_read_to_the_end_give_their_connection_back() {
        let (authority, accepted) = backend().await;
        let pool = H1Pool::default();
        for _ in 0..5 {
            assert_eq!(read(&pool, &authority, "/").await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_dropped_before_its_end_takes_its_connection_with_it() {
        let (authority, accepted) = backend().await;
        let pool = H1Pool::default();
        let r = pool.send(&authority, get("/big")).await.unwrap();
        drop(r);
        assert_eq!(read(&pool, &authority, "/").await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_backend_closed_is_not_reused() {
        let (authority, accepted) = backend().await;
        let pool = H1Pool::default();
        assert_eq!(read(&pool, &authority, "/close").await, "ok");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(read(&pool, &authority, "/").await, "ok");
        assert_eq!(read(&pool, &authority, "/").await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn requests_in_parallel_open_connections_side_by_side() {
        let (authority, accepted) = backend().await;
        let pool = Arc::new(H1Pool::default());
        // Joined: all four are under way before any answer is read, so none can reuse another's connection.
        let (a, b, c, d) = tokio::join!(
            pool.send(&authority, get("/")),
            pool.send(&authority, get("/")),
            pool.send(&authority, get("/")),
            pool.send(&authority, get("/"))
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
        for a in [a, b, c, d] {
            assert_eq!(a.unwrap().into_body().collect().await.unwrap().to_bytes(), "ok");
        }
        assert_eq!(read(&pool, &authority, "/").await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn idle_connections_to_addresses_no_longer_configured_are_closed() {
        let (authority, accepted) = backend().await;
        let pool = H1Pool::default();
        assert_eq!(read(&pool, &authority, "/").await, "ok");
        pool.keep_only([&authority].into_iter());
        assert_eq!(read(&pool, &authority, "/").await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        pool.keep_only(std::iter::empty());
        assert_eq!(read(&pool, &authority, "/").await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_backend_nobody_listens_on_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        drop(listener);
        let pool: H1Pool<Full<Bytes>> = H1Pool::default();
        assert!(matches!(pool.send(&authority, get("/")).await, Err(PoolError::Connect(_))));
    }
}
