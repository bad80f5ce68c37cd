//! HTTP/1.1 connections to the live backends and the shadows, kept open and reused: per address a queue of idle
//! connections, the oldest taken first (the most likely to be ready), a connection given back when its answer's body
//! has been read to the end. Each connection is driven by the request that holds it ([`super::h1conn`]): no task per
//! connection and no channel between tasks, which hyper's client connection has and which cost more per request
//! than anything else left on the HTTP/1.1 path (callgrind, docs/router-benchmark.md, run 10).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http::Response;
use http::header::{self, HeaderValue};
use http::uri::Authority;
use hyper::body::Body;
use tokio::net::TcpStream;

use super::h1conn::{Answer, Conn, SendError};
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
    Connect(io::Error),
    /// The HTTP/1.1 connection failed while sending or waiting, or the backend's answer was malformed.
    Http(io::Error),
    /// The HTTP/2 connection or stream failed ([`super::h2pool::H2Pool`]).
    H2(h2::Error),
}

/// An HTTP/1.1 answer's body; the connection goes back to the pool when it has been read to the end, and is
/// closed when it is dropped before.
pub type Pooled = Answer;

struct Idle {
    conn: Conn,
    since: Instant,
}

/// Keyed by the authority's text: `Authority`'s own hash lower-cases and hashes it a byte at a time, which cost more
/// than the rest of the pool (callgrind, docs/router-benchmark.md). The configuration's addresses are compared as
/// written. The keys are the configuration's addresses, not a client's input, so a fast hash (foldhash, seeded per
/// process) serves instead of SipHash, which cost about 240 instructions per lookup, two lookups per request.
type Queues = Mutex<HashMap<Box<str>, VecDeque<Idle>, foldhash::fast::RandomState>>;

/// The idle connections, by address.
#[derive(Default)]
pub struct H1Pool {
    idle: Arc<Queues>,
}

impl H1Pool {
    /// Sends `req` to `authority` (in origin-form: only its URI's path and query are written) on an idle
    /// connection, or on a new one. A request that a reused connection was found closed for, before the backend
    /// could have acted on it, is sent once more on a new connection; one the backend may have acted on is never
    /// repeated.
    pub async fn send<B>(&self, authority: &Authority, req: Request<B>) -> Result<Response<Pooled>, PoolError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut parts, mut body) = req.into_parts();
        if !parts.headers.contains_key(header::HOST)
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            parts.headers.insert(header::HOST, host);
        }
        let reused = self.checkout(authority);
        let fresh = reused.is_none();
        // Connecting is boxed: it is rare, and its future would otherwise make every request's future bigger.
        let conn = match reused {
            Some(conn) => conn,
            None => Box::pin(connect(authority)).await?,
        };
        let mut response = match conn.send(&parts, &mut body).await {
            Ok(r) => r,
            Err(SendError { retryable: true, .. }) if !fresh => {
                let conn = Box::pin(connect(authority)).await?;
                conn.send(&parts, &mut body).await.map_err(|e| PoolError::Http(e.error))?
            }
            Err(e) => return Err(PoolError::Http(e.error)),
        };
        let idle = self.idle.clone();
        let authority = authority.clone();
        response.body_mut().on_done(Box::new(move |conn| give_back(&idle, &authority, conn)));
        Ok(response)
    }

    /// Closes the idle connections to every address but these (after a configuration change).
    pub fn keep_only<'a>(&self, addresses: impl Iterator<Item = &'a Authority>) {
        let keep: Vec<&str> = addresses.map(Authority::as_str).collect();
        lock(&self.idle).retain(|a, _| keep.contains(&&**a));
    }

    /// The oldest idle connection to `authority` that is still open and not too old.
    fn checkout(&self, authority: &Authority) -> Option<Conn> {
        loop {
            let idle = lock(&self.idle).get_mut(authority.as_str()).and_then(VecDeque::pop_front)?;
            if idle.since.elapsed() <= IDLE_TIMEOUT && idle.conn.is_usable() {
                return Some(idle.conn);
            }
        }
    }
}

/// Puts a connection whose answer has been read back in its address's queue (unless the queue is full).
fn give_back(idle: &Queues, authority: &Authority, conn: Conn) {
    let connection = Idle { conn, since: Instant::now() };
    let mut idle = lock(idle);
    match idle.get_mut(authority.as_str()) {
        Some(queue) if queue.len() < MAX_IDLE => queue.push_back(connection),
        Some(_) => {}
        None => {
            idle.insert(authority.as_str().into(), VecDeque::from([connection]));
        }
    }
}

async fn connect(authority: &Authority) -> Result<Conn, PoolError> {
    Ok(Conn::new(dial(authority).await?))
}

/// Opens a TCP connection to `authority` (within 2 s), with Nagle's algorithm off.
pub async fn dial(authority: &Authority) -> Result<TcpStream, PoolError> {
    let addr = (authority.host().trim_start_matches('[').trim_end_matches(']'), authority.port_u16().unwrap_or(80));
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(s) => s.map_err(PoolError::Connect)?,
        Err(_) => return Err(PoolError::Connect(io::ErrorKind::TimedOut.into())),
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

    /// A backend on a port of its own that serves each connection it accepts with `serve` (given the connection
    /// and how many were accepted before it), in a task of its own; it counts the connections it accepted.
    async fn listen<F, Fut>(serve: F) -> (Authority, Arc<AtomicUsize>)
    where
        F: Fn(TcpStream, usize) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(stream, count.fetch_add(1, Ordering::SeqCst)));
            }
        });
        (authority, accepted)
    }

    /// A backend answering `/close` with `connection: close`, `/big` with 1 MiB, anything else with `ok`; it
    /// counts the connections it accepted.
    async fn backend() -> (Authority, Arc<AtomicUsize>) {
        listen(|stream, _| async move {
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
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        })
        .await
    }

    fn get(path: &str) -> Request<Full<Bytes>> {
        Request::get(path).body(Full::new(Bytes::new())).unwrap()
    }

    async fn read(pool: &H1Pool, authority: &Authority, path: &str) -> Bytes {
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

    /// A backend whose first connection answers one request, then reads the next one and closes without an answer
    /// (as a backend does whose idle timeout fires as a request arrives); later connections answer every request.
    async fn closing_backend() -> (Authority, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        listen(|mut stream, before| async move {
            let mut buf = [0u8; 4096];
            for answered in 0.. {
                if !matches!(stream.read(&mut buf).await, Ok(n) if n > 0) || (before == 0 && answered == 1) {
                    return;
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
            }
        })
        .await
    }

    #[tokio::test]
    async fn a_request_a_reused_connection_was_closed_for_is_sent_again_only_when_it_is_safe_to() {
        let (authority, accepted) = closing_backend().await;
        let pool = H1Pool::default();
        assert_eq!(read(&pool, &authority, "/").await, "ok");
        assert_eq!(read(&pool, &authority, "/").await, "ok", "a GET is sent again on a new connection");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);

        let (authority, accepted) = closing_backend().await;
        assert_eq!(read(&pool, &authority, "/").await, "ok");
        let post = Request::post("/").body(Full::new(Bytes::from_static(b"{}"))).unwrap();
        assert!(matches!(pool.send(&authority, post).await, Err(PoolError::Http(_))), "a POST is not repeated");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_backend_nobody_listens_on_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        drop(listener);
        let pool = H1Pool::default();
        assert!(matches!(pool.send(&authority, get("/")).await, Err(PoolError::Connect(_))));
    }
}
