//! The proxy port's HTTP/2 connections (prior knowledge), on the h2 crate directly instead of hyper's server.
//!
//! On a runtime of one thread (a router given one CPU), a connection's streams are futures polled by the
//! connection's own task: a backend's answer wakes that task, which hands the answer to the connection and writes it
//! out in the same turn, each answer as soon as it is ready. hyper's server runs each stream in a task of its own,
//! and the connection's task writes what the stream tasks queued only when its own turn comes, several answers
//! together (docs/router-benchmark.md, run 15). On a runtime of several threads the streams get tasks of their own,
//! so that one busy connection (from an ingress gateway, say) is served by every thread.
//!
//! Settings are hyper's server defaults, which the router used before: 1 MiB stream and connection windows, 200
//! concurrent streams, a 16 KiB header list, 400 KiB buffered per stream. `CONNECT` is refused (501), as over
//! HTTP/1.1. A connection with no stream open closes (GOAWAY) after the idle time; stopping the router sends GOAWAY
//! and lets the open streams finish.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use h2::server::{self, SendResponse};
use h2::{Reason, RecvStream};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Body;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::watch;
use tokio::time::Instant;

use super::h1server::{Timeouts, date_value};
use super::h2wire::{H2Body, Pipe, strip_connection_headers};

/// Flow-control windows granted to a client's requests.
const STREAM_WINDOW: u32 = 1024 * 1024;
const CONNECTION_WINDOW: u32 = 1024 * 1024;
/// Streams a client may have open at once.
const MAX_CONCURRENT_STREAMS: u32 = 200;
/// The largest request head (decoded) a client may send.
const MAX_HEADER_LIST: u32 = 16 * 1024;
/// The most buffered per stream before the client's window opens.
const MAX_SEND_BUFFER: usize = 400 * 1024;
/// Streams the router may reset for a client's errors before it closes the connection (hyper's default).
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// Serves one HTTP/2 connection until the client closes it, it fails, it idles out, or `stop` says the router is
/// stopping. `io` starts with the client's connection preface.
pub async fn serve<T, S, F, B>(io: T, service: S, mut stop: watch::Receiver<bool>, timeouts: Timeouts)
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Fn(Request<H2Body>) -> F,
    F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let handshake = server::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .handshake::<_, Bytes>(io);
    let mut conn = tokio::select! {
        conn = tokio::time::timeout(timeouts.head, handshake) => match conn {
            Ok(Ok(conn)) => conn,
            _ => return,
        },
        _ = stop.changed() => return,
    };
    let local = Handle::current().runtime_flavor() == RuntimeFlavor::CurrentThread;
    let mut streams = FuturesUnordered::new();
    // Streams in tasks of their own each hold a clone: the connection is idle when this is the only one.
    let spawned = Arc::new(());
    let mut last_request = Instant::now();
    let mut was_open = false;
    let idle = tokio::time::sleep(timeouts.idle);
    tokio::pin!(idle);
    let mut stopping = false;
    let stopped = async move {
        let _ = stop.changed().await;
    };
    tokio::pin!(stopped);
    poll_fn(|cx| {
        if !stopping && stopped.as_mut().poll(cx).is_ready() {
            stopping = true;
            conn.graceful_shutdown();
        }
        loop {
            // The connection reads what came, writes what the streams queued, and hands over new requests.
            let mut accepted = false;
            loop {
                match conn.poll_accept(cx) {
                    Poll::Ready(Some(Ok((req, respond)))) => {
                        accepted = true;
                        let stream = Stream::new(&service, req, respond);
                        if local {
                            streams.push(stream);
                        } else {
                            let open = spawned.clone();
                            tokio::spawn(async move {
                                stream.await;
                                drop(open);
                            });
                        }
                    }
                    Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
            }
            // The streams: a finished one has queued its answer, which the connection writes on the next round.
            let mut finished = false;
            while let Poll::Ready(Some(())) = streams.poll_next_unpin(cx) {
                finished = true;
            }
            if accepted {
                last_request = Instant::now();
            }
            if !accepted && !finished {
                break;
            }
        }
        // Idle: no stream open, and none begun, for the idle time. The timer is moved only when it fires: while
        // streams are open it is set a whole idle time ahead, and once more after they have ended (so the
        // connection closes between one and two idle times after its last stream).
        if !stopping && idle.as_mut().poll(cx).is_ready() {
            let open = !streams.is_empty() || Arc::strong_count(&spawned) > 1;
            let now = Instant::now();
            let deadline = if open || was_open { now + timeouts.idle } else { last_request + timeouts.idle };
            was_open = open;
            if now >= deadline {
                stopping = true;
                conn.graceful_shutdown();
                // Polled again so that the connection sends its GOAWAY (and closes, with no stream open).
                cx.waker().wake_by_ref();
            } else {
                idle.as_mut().reset(deadline);
                let _ = idle.as_mut().poll(cx);
            }
        }
        Poll::Pending
    })
    .await;
}

/// One request: waiting for the service's answer, then sending it.
enum Stream<F, B> {
    Answering { answer: Pin<Box<F>>, respond: SendResponse<Bytes> },
    Sending(Pipe<B>),
    Done,
}

impl<F, B> Stream<F, B>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    fn new<S: Fn(Request<H2Body>) -> F>(
        service: &S,
        req: Request<RecvStream>,
        mut respond: SendResponse<Bytes>,
    ) -> Stream<F, B> {
        if req.method() == Method::CONNECT {
            let mut refusal = Response::new(());
            *refusal.status_mut() = StatusCode::NOT_IMPLEMENTED;
            let _ = respond.send_response(refusal, true);
            return Stream::Done;
        }
        let (parts, recv) = req.into_parts();
        let body = H2Body::new(recv, &parts.headers, None);
        let answer = Box::pin(service(Request::from_parts(parts, body)));
        Stream::Answering { answer, respond }
    }
}

impl<F, B> Future for Stream<F, B>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        // A stream whose handling panics ends alone (dropped, so h2 resets it), as a task of its own would: on one
        // thread the connection's other streams (other users', behind an ingress) run in the same task.
        match std::panic::catch_unwind(AssertUnwindSafe(|| this.advance(cx))) {
            Ok(poll) => poll,
            Err(_) => {
                *this = Stream::Done;
                Poll::Ready(())
            }
        }
    }
}

impl<F, B> Stream<F, B>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// Waits for the answer, then sends it.
    fn advance(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match self {
                Stream::Answering { answer, respond } => {
                    let Poll::Ready(Ok(response)) = answer.as_mut().poll(cx) else {
                        // A client that resets the stream no longer wants the answer: the backend's request is
                        // dropped with it.
                        return match respond.poll_reset(cx) {
                            Poll::Ready(_) => Poll::Ready(()),
                            Poll::Pending => Poll::Pending,
                        };
                    };
                    let (mut parts, body) = response.into_parts();
                    strip_connection_headers(&mut parts.headers);
                    if !parts.headers.contains_key(header::DATE) {
                        parts.headers.insert(header::DATE, date_value());
                    }
                    let end = body.is_end_stream();
                    if !end
                        && !parts.headers.contains_key(header::CONTENT_LENGTH)
                        && let Some(n) = body.size_hint().exact()
                    {
                        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
                    }
                    let Ok(tx) = respond.send_response(Response::from_parts(parts, ()), end) else {
                        respond.send_reset(Reason::INTERNAL_ERROR);
                        return Poll::Ready(());
                    };
                    if end {
                        return Poll::Ready(());
                    }
                    *self = Stream::Sending(Pipe::new(body, tx));
                }
                Stream::Sending(pipe) => return Pin::new(pipe).poll(cx),
                Stream::Done => return Poll::Ready(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use h2::client::{self, SendRequest};
    use http::HeaderMap;
    use http_body_util::{BodyExt, Full};
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::*;

    type Answer = Result<Response<Full<Bytes>>, Infallible>;

    /// A client connection to `serve` running `service` with `timeouts`, the server's task and its stop.
    async fn connect<S, F>(service: S, timeouts: Timeouts) -> (SendRequest<Bytes>, JoinHandle<()>, watch::Sender<bool>)
    where
        S: Fn(Request<H2Body>) -> F + Send + Sync + 'static,
        F: Future<Output = Answer> + Send + 'static,
    {
        let (near, far) = tokio::io::duplex(1 << 16);
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(far, service, stopped, timeouts));
        let (client, conn) = client::handshake(near).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        (client, server, stop)
    }

    /// Sends a request (with `body`, and `trailers` if any) and reads the whole answer: status, headers, body.
    async fn exchange(
        client: &SendRequest<Bytes>,
        path: &str,
        body: &'static [u8],
        trailers: Option<HeaderMap>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), h2::Error> {
        let mut client = client.clone().ready().await?;
        let req = Request::post(format!("http://router{path}")).body(()).unwrap();
        let (answer, mut tx) = client.send_request(req, false)?;
        tx.send_data(Bytes::from_static(body), trailers.is_none())?;
        if let Some(t) = trailers {
            tx.send_trailers(t)?;
        }
        let (parts, mut recv) = answer.await?.into_parts();
        let mut data = Vec::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        Ok((parts.status, parts.headers, Bytes::from(data)))
    }

    /// Echoes the request's body, and its `x-tag` trailer as a header.
    async fn echo(req: Request<H2Body>) -> Answer {
        let collected = req.into_body().collect().await.unwrap();
        let tag = collected.trailers().and_then(|t| t.get("x-tag").cloned());
        let mut answer = Response::new(Full::new(collected.to_bytes()));
        if let Some(tag) = tag {
            answer.headers_mut().insert("x-tag", tag);
        }
        Ok(answer)
    }

    async fn streams_together_are_each_answered() {
        let (client, _server, _stop) = connect(echo, Timeouts::default()).await;
        let mut all = Vec::new();
        for i in 0..40u32 {
            let client = client.clone();
            all.push(tokio::spawn(async move {
                let mut trailers = HeaderMap::new();
                trailers.insert("x-tag", HeaderValue::from(i));
                exchange(&client, "/v1/predict", b"{\"instances\":[[1,2]]}", Some(trailers)).await.unwrap()
            }));
        }
        for (i, one) in all.into_iter().enumerate() {
            let (status, headers, body) = one.await.unwrap();
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, "{\"instances\":[[1,2]]}");
            assert_eq!(headers["x-tag"], i.to_string().as_str());
            // Added when the service sets none: the date, and the length the body knows.
            assert!(headers.contains_key(header::DATE), "{headers:?}");
            assert_eq!(headers[header::CONTENT_LENGTH], "21");
        }
    }

    #[tokio::test]
    async fn streams_together_are_each_answered_on_one_thread() {
        streams_together_are_each_answered().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_together_are_each_answered_on_several_threads() {
        streams_together_are_each_answered().await;
    }

    #[tokio::test]
    async fn connect_is_refused() {
        let (client, _server, _stop) = connect(echo, Timeouts::default()).await;
        let mut client = client.ready().await.unwrap();
        let req = Request::connect("backend:443").body(()).unwrap();
        let (answer, _tx) = client.send_request(req, true).unwrap();
        assert_eq!(answer.await.unwrap().status(), StatusCode::NOT_IMPLEMENTED);
    }

    #[tokio::test]
    async fn a_stream_the_client_resets_drops_its_answer() {
        let (dropped_tx, dropped) = oneshot::channel::<()>();
        let guard = std::sync::Mutex::new(Some(dropped_tx));
        let service = move |_req: Request<H2Body>| {
            let held = guard.lock().unwrap().take();
            async move {
                let _held = held;
                std::future::pending::<Answer>().await
            }
        };
        let (client, _server, _stop) = connect(service, Timeouts::default()).await;
        let mut client = client.ready().await.unwrap();
        let (_answer, mut tx) = client.send_request(Request::get("http://router/").body(()).unwrap(), false).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send_reset(Reason::CANCEL);
        // The sender is dropped with the service's future: the receiver sees it closed.
        let closed = tokio::time::timeout(Duration::from_secs(5), dropped).await;
        assert!(matches!(closed, Ok(Err(_))), "the answer was not dropped: {closed:?}");
    }

    #[tokio::test]
    async fn a_stream_whose_handling_panics_ends_alone() {
        let service = |req: Request<H2Body>| async move {
            if req.uri().path() == "/panic" {
                panic!("a bug in the handling of one request");
            }
            echo(req).await
        };
        let (client, _server, _stop) = connect(service, Timeouts::default()).await;
        assert!(exchange(&client, "/panic", b"a", None).await.is_err());
        let (status, _, body) = exchange(&client, "/", b"b", None).await.unwrap();
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"b"[..]));
    }

    #[tokio::test]
    async fn a_connection_closes_after_its_idle_time_but_not_while_a_stream_is_open() {
        let idle = Duration::from_millis(300);
        let service = |req: Request<H2Body>| async move {
            if req.uri().path() == "/slow" {
                tokio::time::sleep(Duration::from_millis(800)).await;
            }
            echo(req).await
        };
        let (client, server, _stop) = connect(service, Timeouts { idle, ..Timeouts::default() }).await;
        let (status, _, _) = exchange(&client, "/slow", b"a", None).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        // The idle time passed while the slow stream was open: the connection still takes requests.
        let (status, _, _) = exchange(&client, "/", b"b", None).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        let last = tokio::time::Instant::now();
        tokio::time::sleep(idle / 2).await;
        assert!(!server.is_finished(), "closed before its idle time");
        tokio::time::timeout(idle * 4, server).await.expect("an idle connection is closed").unwrap();
        assert!(last.elapsed() >= idle);
    }

    #[tokio::test]
    async fn stopping_lets_an_open_stream_finish_then_closes() {
        let service = |req: Request<H2Body>| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            echo(req).await
        };
        let (client, server, stop) = connect(service, Timeouts::default()).await;
        let open = tokio::spawn({
            let client = client.clone();
            async move { exchange(&client, "/", b"kept", None).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(true).unwrap();
        let (status, _, body) = open.await.unwrap().unwrap();
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"kept"[..]));
        tokio::time::timeout(Duration::from_secs(5), server).await.expect("the connection closes").unwrap();
        assert!(exchange(&client, "/", b"late", None).await.is_err(), "a stopped router took a request");
    }
}
