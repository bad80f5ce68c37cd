//! HTTP/1.1 connections to the live backends, kept open and reused: per address a queue of idle connections, the
//! oldest taken first (the most likely to be ready), a connection given back when its answer's body has been read to
//! the end. Leaner than hyper-util's pooled client, which spawns a task per request to give a connection back and
//! whose request future is large enough to cost measurable copying (docs/router-benchmark.md, run 5).

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
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::Connect(e) => write!(f, "connect: {e}"),
            PoolError::Http(e) => write!(f, "{e}"),
        }
    }
}

struct Idle<B> {
    sender: SendRequest<B>,
    since: Instant,
}

type Queues<B> = Mutex<HashMap<Authority, VecDeque<Idle<B>>>>;

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
        let mut sender = match self.checkout(authority).await {
            Some(s) => s,
            None => connect(authority).await?,
        };
        let response = match sender.try_send_request(req).await {
            Ok(r) => r,
            Err(mut e) => match e.take_message() {
                Some(req) => {
                    sender = connect(authority).await?;
                    sender.send_request(req).await.map_err(PoolError::Http)?
                }
                None => return Err(PoolError::Http(e.into_error())),
            },
        };
        let (parts, body) = response.into_parts();
        let back = Giveback { idle: self.idle.clone(), authority: authority.clone(), sender };
        Ok(Response::from_parts(parts, Pooled { inner: body, back: Some(back) }))
    }

    async fn checkout(&self, authority: &Authority) -> Option<SendRequest<B>> {
        loop {
            let idle = lock(&self.idle).get_mut(authority).and_then(VecDeque::pop_front)?;
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
    let addr = (authority.host().trim_start_matches('[').trim_end_matches(']'), authority.port_u16().unwrap_or(80));
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(s) => s.map_err(PoolError::Connect)?,
        Err(_) => return Err(PoolError::Connect(std::io::ErrorKind::TimedOut.into())),
    };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(PoolError::Http)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// What gives a connection back once its answer has been read.
struct Giveback<B> {
    idle: Arc<Queues<B>>,
    authority: Authority,
    sender: SendRequest<B>,
}

impl<B> Giveback<B> {
    fn give(self) {
        let mut idle = lock(&self.idle);
        let queue = idle.entry(self.authority).or_default();
        if queue.len() < MAX_IDLE {
            queue.push_back(Idle { sender: self.sender, since: Instant::now() });
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
            Poll::Ready(None) => {
                if let Some(back) = self.back.take() {
                    back.give();
                }
            }
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
    /// Gives the connection back if the body has already ended (hyper's server may stop polling an ended body).
    fn give_if_ended(&mut self) {
        if self.inner.is_end_stream()
            && let Some(back) = self.back.take()
        {
            back.give();
        }
    }
}

impl<B> Drop for Pooled<B> {
    fn drop(&mut self) {
        self.give_if_ended();
    }
}
