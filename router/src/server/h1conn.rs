//! One HTTP/1.1 connection to a backend, driven by the request that holds it: the request's own task writes the
//! request and reads the answer's head, and the answer's body reads the socket as the client reads the body. There
//! is no connection task and no channel between two tasks, which hyper's client has for every request and which
//! was the largest single cost left on the HTTP/1.1 path (callgrind, docs/router-benchmark.md).
//!
//! What it speaks (RFC 9112): a request is framed by `content-length` when its body's size is known and by
//! `chunked` otherwise (trailers included); an answer is framed as §6.3 says: no body for `HEAD`, 204 and 304, then
//! `transfer-encoding: chunked`, then `content-length`, else until the backend closes. Interim answers (1xx) are
//! skipped; `101 Switching Protocols` is refused (the router does not tunnel upgrades). A connection is reused
//! only when its answer was read to the end and both sides keep it alive.

use std::future::poll_fn;
use std::io::{self, ErrorKind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, Response, StatusCode, Version};
use hyper::body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;

use super::h1wire::{
    Chunk, Decoder, FieldRanges, Framing, MAX_HEAD, MAX_HEADERS, Sent, connection_close, content_length, field_ranges,
    has_token, header_map, invalid, is_framing, poll_read, write_body, write_fields, write_framing,
};

/// What the backend sent wrong, as an error.
fn backend_sent(what: &str) -> io::Error {
    invalid(format!("the backend sent {what}"))
}

/// An open connection to a backend, between two requests.
pub struct Conn {
    io: TcpStream,
    /// Bytes read from the backend and not yet used.
    buf: BytesMut,
}

/// Why a request on a connection failed.
#[derive(Debug)]
pub struct SendError {
    /// What went wrong.
    pub error: io::Error,
    /// The connection was found closed before the backend could have acted on the request: the write failed, or
    /// the backend closed without a byte of answer to a request with an idempotent method; and nothing of the
    /// body had been taken from its source. A request on a reused connection may then be sent again.
    pub retryable: bool,
}

impl Conn {
    /// A connection on an open stream.
    pub fn new(io: TcpStream) -> Conn {
        Conn { io, buf: BytesMut::new() }
    }

    /// Whether the backend has neither closed the connection nor sent anything since the last answer (checked
    /// without waiting: the runtime has already seen the socket become readable if either happened).
    pub fn is_usable(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readable: the end of the stream, stray bytes, or only a readiness left from the last answer's read.
            Poll::Ready(Ok(())) => {
                matches!(self.io.try_read(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock)
            }
        }
    }

    /// Sends a request (origin-form: its URI's path and query are written as they are, its headers as they are
    /// except the framing ones, which are the body's) and reads the answer's head. The answer's body reads the rest.
    pub async fn send<B>(mut self, parts: &http::request::Parts, body: &mut B) -> Result<Response<Answer>, SendError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut out = Vec::with_capacity(512);
        let framing = request_head(&mut out, &parts.method, &parts.uri, &parts.headers, body);
        let Sent { taken, whole } = match write_body(&self.io, &mut out, body, framing).await {
            Ok(sent) => sent,
            Err(e) => return Err(SendError { retryable: !e.taken, error: e.error }),
        };
        let (head, decoder) = match self.read_head(parts.method == Method::HEAD).await {
            Ok(head) => head,
            Err(Unanswered::Closed(error)) => {
                return Err(SendError { error, retryable: !taken && parts.method.is_idempotent() });
            }
            Err(Unanswered::Failed(error)) => return Err(SendError { error, retryable: false }),
        };
        // An answer read until close ends only at the end of the stream, which drops the connection there.
        let reuse = whole && !connection_close(&parts.headers) && head.keep_alive;
        let mut answer = Answer { conn: Some(self), decoder, reuse, done: None };
        answer.look_ahead();
        let mut response = Response::new(answer);
        *response.status_mut() = head.status;
        *response.version_mut() = head.version;
        *response.headers_mut() = head.headers;
        Ok(response)
    }

    /// Reads until a final answer's head is complete, skipping interim (1xx) answers.
    async fn read_head(&mut self, head_only: bool) -> Result<(Head, Decoder), Unanswered> {
        let mut answered = false;
        loop {
            if let Some((head, len)) = parse_head(&self.buf).map_err(Unanswered::Failed)? {
                let head_bytes = self.buf.split_to(len).freeze();
                let head = head.into_head(&head_bytes).map_err(Unanswered::Failed)?;
                match head.status.as_u16() {
                    101 => {
                        let e = invalid("the backend switched protocols, which the router does not tunnel");
                        return Err(Unanswered::Failed(e));
                    }
                    100..=199 => continue,
                    _ => {}
                }
                let decoder = answer_framing(&head, head_only).map_err(Unanswered::Failed)?;
                return Ok((head, decoder));
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(Unanswered::Failed(invalid("the backend's answer head is larger than 64 KiB")));
            }
            match poll_fn(|cx| poll_read(&mut self.io, &mut self.buf, cx)).await {
                Ok(0) if !answered => {
                    let e =
                        io::Error::new(ErrorKind::UnexpectedEof, "the backend closed the connection without answering");
                    return Err(Unanswered::Closed(e));
                }
                Ok(0) => {
                    let e = io::Error::new(ErrorKind::UnexpectedEof, "the backend closed the connection mid-answer");
                    return Err(Unanswered::Failed(e));
                }
                Ok(_) => answered = true,
                // A reset before any answer is how a closed connection shows on Linux, too.
                Err(e) if !answered && e.kind() == ErrorKind::ConnectionReset => return Err(Unanswered::Closed(e)),
                Err(e) => return Err(Unanswered::Failed(e)),
            }
        }
    }
}

/// Why no answer head was read.
enum Unanswered {
    /// The backend closed (or reset) the connection before a byte of answer.
    Closed(io::Error),
    /// Anything else.
    Failed(io::Error),
}

/// Writes the request line and headers into `out`; returns how the body is framed.
fn request_head<B: Body>(
    out: &mut Vec<u8>,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &B,
) -> Framing {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_fields(out, headers.iter().filter(|(name, _)| !is_framing(name)));
    let no_body_expected =
        matches!(*method, Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE);
    let framing = match body.size_hint().exact() {
        Some(0) if body.is_end_stream() && no_body_expected => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::Chunked,
    };
    write_framing(out, framing);
    out.extend_from_slice(b"\r\n");
    framing
}

/// An answer's head, parsed.
struct Head {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    keep_alive: bool,
}

/// Where a parsed head's parts lie in the buffer, so that header values can share the buffer's bytes.
struct ParsedHead {
    code: u16,
    minor: u8,
    fields: FieldRanges,
}

/// Parses an answer's head at the start of `buf`: `None` while incomplete, the head and its length when complete.
fn parse_head(buf: &[u8]) -> io::Result<Option<(ParsedHead, usize)>> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(invalid("the backend's answer has more than 100 headers")),
        Err(_) => return Err(invalid("the backend's answer is not HTTP/1.x")),
    };
    let fields = field_ranges(buf, response.headers);
    let head = ParsedHead { code: response.code.unwrap_or(0), minor: response.version.unwrap_or(1), fields };
    Ok(Some((head, len)))
}

impl ParsedHead {
    fn into_head(self, bytes: &Bytes) -> io::Result<Head> {
        let status =
            StatusCode::from_u16(self.code).map_err(|_| invalid("the backend's status code is out of range"))?;
        let headers = header_map(bytes, self.fields).map_err(backend_sent)?;
        let version = if self.minor == 0 { Version::HTTP_10 } else { Version::HTTP_11 };
        let keep_alive = match version {
            Version::HTTP_10 => has_token(&headers, header::CONNECTION, "keep-alive"),
            _ => !connection_close(&headers),
        };
        Ok(Head { status, version, headers, keep_alive })
    }
}

/// How an answer's body is framed (RFC 9112 §6.3), as the decoder that reads it from its start.
fn answer_framing(head: &Head, head_only: bool) -> io::Result<Decoder> {
    if head_only || head.status == StatusCode::NO_CONTENT || head.status == StatusCode::NOT_MODIFIED {
        return Ok(Decoder::Length(0));
    }
    if head.headers.contains_key(header::TRANSFER_ENCODING) {
        let last = head.headers.get_all(header::TRANSFER_ENCODING).iter().next_back();
        let chunked = last
            .and_then(|v| v.as_bytes().rsplit(|b| *b == b',').next())
            .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return Ok(if chunked { Decoder::Chunked(Chunk::Size) } else { Decoder::UntilClose });
    }
    let length = content_length(&head.headers).map_err(backend_sent)?;
    Ok(length.map_or(Decoder::UntilClose, Decoder::Length))
}

/// Where a connection goes once its answer has been read to the end.
pub type Done = Box<dyn FnOnce(Conn) + Send>;

/// An answer's body, read from the connection as it is polled. At its end the connection is handed to
/// [`Answer::on_done`]'s function when it can be reused; dropped before its end, it closes the connection.
pub struct Answer {
    conn: Option<Conn>,
    decoder: Decoder,
    reuse: bool,
    done: Option<Done>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer").field("decoder", &self.decoder).field("reuse", &self.reuse).finish_non_exhaustive()
    }
}

impl Answer {
    /// What to do with the connection once this body has been read to the end and the connection can be reused.
    pub fn on_done(&mut self, done: Done) {
        self.done = Some(done);
        if self.decoder == Decoder::Ended {
            self.finish();
        }
    }

    /// Right after the head: when the whole body is already in the buffer and is only its end (no body, or the last
    /// chunk), reads it now, so that the body says it has ended and a server that stops at that hands the connection
    /// back. After data, [`Decoder::frame`] does the same.
    fn look_ahead(&mut self) {
        if let Some(conn) = self.conn.as_mut()
            && self.decoder.ends_in(&mut conn.buf)
        {
            self.finish();
        }
    }

    /// The body has ended: the connection goes back if it can be reused.
    fn finish(&mut self) {
        self.decoder = Decoder::Ended;
        if !self.reuse {
            self.conn = None;
            return;
        }
        if let Some(done) = self.done.take()
            && let Some(conn) = self.conn.take()
        {
            done(conn);
        }
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.conn = None;
        self.decoder = Decoder::Ended;
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for Answer {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
            match this.decoder.frame(&mut conn.buf) {
                Err(what) => return this.fail(backend_sent(what)),
                Ok(Some(frame)) => {
                    if this.decoder == Decoder::Ended {
                        this.finish();
                    }
                    return Poll::Ready(frame.map(Ok));
                }
                Ok(None) => {}
            }
            match ready!(poll_read(&mut conn.io, &mut conn.buf, cx)) {
                Err(e) => return this.fail(e),
                Ok(0) if this.decoder == Decoder::UntilClose => {
                    this.reuse = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    return this.fail(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "the backend closed the connection mid-answer",
                    ));
                }
                Ok(_) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder == Decoder::Ended
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder {
            Decoder::Length(n) => SizeHint::with_exact(n),
            Decoder::Ended => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::mpsc;
    use std::time::Duration;

    use http::Request;
    use http::header::HeaderValue;
    use http_body_util::{BodyExt, Empty, Full, channel::Channel};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use super::*;

    /// Whether a backend has read a whole request: for a bodiless one, its head's end.
    type Complete = fn(&[u8]) -> bool;

    fn head_ended(received: &[u8]) -> bool {
        received.windows(4).any(|w| w == b"\r\n\r\n")
    }

    /// A backend on one connection: once `complete` says the request has arrived, it writes `answer` `split` bytes
    /// at a time, then closes if `close`, else waits for the router to close. It returns what it read.
    async fn backend(
        answer: &'static [u8],
        split: usize,
        close: bool,
        complete: Complete,
    ) -> (Conn, JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buf = [0u8; 4096];
            while !complete(&received) {
                let n = stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    return received;
                }
                received.extend_from_slice(&buf[..n]);
            }
            for piece in answer.chunks(split) {
                stream.write_all(piece).await.unwrap();
                stream.flush().await.unwrap();
                if split < answer.len() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            if !close {
                while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            }
            received
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        (Conn::new(stream), server)
    }

    /// Where `body` hands its connection once it has been read to the end and the connection can be reused.
    fn given_back(body: &mut Answer) -> mpsc::Receiver<Conn> {
        let (tx, rx) = mpsc::channel();
        body.on_done(Box::new(move |conn| tx.send(conn).unwrap()));
        rx
    }

    fn parts(method: Method, path: &str) -> http::request::Parts {
        let mut parts = Request::builder().method(method).uri(path).body(()).unwrap().into_parts().0;
        parts.headers.insert(header::HOST, HeaderValue::from_static("backend"));
        parts
    }

    /// Sends a bodiless GET (or `method`) and reads the whole answer; says whether the connection was given back.
    /// Fails with "timed out" when it takes more than 5 s (an answer misread as longer than it is).
    async fn exchange(
        method: Method,
        answer: &'static [u8],
        split: usize,
        close: bool,
    ) -> Result<(Response<Bytes>, Option<HeaderMap>, bool), String> {
        let exchanged = tokio::time::timeout(Duration::from_secs(5), exchange_now(method, answer, split, close)).await;
        exchanged.unwrap_or_else(|_| Err("timed out".to_string()))
    }

    async fn exchange_now(
        method: Method,
        answer: &'static [u8],
        split: usize,
        close: bool,
    ) -> Result<(Response<Bytes>, Option<HeaderMap>, bool), String> {
        let (conn, _server) = backend(answer, split, close, head_ended).await;
        let response =
            conn.send(&parts(method, "/p?q=1"), &mut Empty::<Bytes>::new()).await.map_err(|e| e.error.to_string())?;
        let (head, mut body) = response.into_parts();
        let rx = given_back(&mut body);
        let collected = body.collect().await.map_err(|e| e.to_string())?;
        let trailers = collected.trailers().cloned();
        Ok((Response::from_parts(head, collected.to_bytes()), trailers, rx.try_recv().is_ok()))
    }

    #[tokio::test]
    async fn a_content_length_answer_is_read_and_its_connection_given_back() {
        let (r, trailers, reused) = exchange(
            Method::GET,
            b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\nx-a: 1\r\nx-a: 2\r\n\r\nhello",
            1000,
            false,
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers().get_all("x-a").iter().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(r.body(), "hello");
        assert!(trailers.is_none());
        assert!(reused);
    }

    #[tokio::test]
    async fn a_chunked_answer_arriving_a_byte_at_a_time_keeps_its_extensions_out_and_its_trailers() {
        let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\ngrpc-status: 0\r\n\r\n";
        let (r, trailers, reused) = exchange(Method::GET, answer, 1, false).await.unwrap();
        assert_eq!(r.body(), "hello world");
        assert_eq!(trailers.unwrap().get("grpc-status").unwrap(), "0");
        assert!(reused);
    }

    #[tokio::test]
    async fn a_chunked_answer_says_it_has_ended_with_its_last_data_when_the_rest_is_its_terminator() {
        let (conn, _server) = backend(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            1000,
            false,
            head_ended,
        )
        .await;
        let mut body = conn.send(&parts(Method::GET, "/"), &mut Empty::<Bytes>::new()).await.unwrap().into_body();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "ok");
        assert!(body.is_end_stream());
        let rx = given_back(&mut body);
        assert!(rx.try_recv().is_ok(), "an ended body gives its connection back as soon as it is asked to");
    }

    #[tokio::test]
    async fn an_answer_without_length_runs_until_close_and_its_connection_is_not_reused() {
        let (r, _, reused) = exchange(Method::GET, b"HTTP/1.1 200 OK\r\n\r\nuntil close", 3, true).await.unwrap();
        assert_eq!(r.body(), "until close");
        assert!(!reused);
    }

    #[tokio::test]
    async fn interim_answers_are_skipped() {
        let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let (r, _, reused) = exchange(Method::GET, answer, 7, false).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("link").is_none());
        assert_eq!(r.body(), "ok");
        assert!(reused);
    }

    #[tokio::test]
    async fn head_204_and_304_answers_have_no_body_whatever_their_headers_say() {
        let (r, _, reused) =
            exchange(Method::HEAD, b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", 1000, false).await.unwrap();
        assert_eq!(
            (r.headers().get("content-length").unwrap().to_str().unwrap(), r.body().len(), reused),
            ("10", 0, true)
        );
        let (r, _, reused) = exchange(Method::GET, b"HTTP/1.1 204 No Content\r\n\r\n", 1000, false).await.unwrap();
        assert_eq!((r.status(), r.body().len(), reused), (StatusCode::NO_CONTENT, 0, true));
        let (r, _, reused) =
            exchange(Method::GET, b"HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n", 1000, false)
                .await
                .unwrap();
        assert_eq!((r.status(), r.body().len(), reused), (StatusCode::NOT_MODIFIED, 0, true));
    }

    #[tokio::test]
    async fn malformed_heads_are_errors() {
        for answer in [
            &b"HTTP/1.1 abc OK\r\n\r\n"[..],
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\nok",
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
        ] {
            let got = exchange(Method::GET, answer, 1000, false).await;
            assert!(
                got.as_ref().is_err_and(|e| e != "timed out"),
                "{:?} was taken: {:?}",
                String::from_utf8_lossy(answer),
                got.map(|r| r.0)
            );
        }
        let (r, _, _) =
            exchange(Method::GET, b"HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\nok", 1000, false).await.unwrap();
        assert_eq!(r.body(), "ok");
    }

    #[tokio::test]
    async fn a_head_larger_than_the_cap_is_an_error() {
        let mut answer = b"HTTP/1.1 200 OK\r\nx-pad: ".to_vec();
        answer.extend(std::iter::repeat_n(b'a', 70 << 10));
        let answer: &'static [u8] = answer.leak();
        let got = exchange(Method::GET, answer, 1 << 20, false).await;
        assert!(got.unwrap_err().contains("64 KiB"));
    }

    #[tokio::test]
    async fn bad_chunks_are_errors() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n",
        ] {
            let got = exchange(Method::GET, answer, 1000, false).await;
            assert!(got.is_err_and(|e| e != "timed out"), "{}", String::from_utf8_lossy(answer));
        }
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error() {
        let got = exchange(Method::GET, b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", 1000, true).await;
        assert!(got.unwrap_err().contains("mid-answer"));
        let got =
            exchange(Method::GET, b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab", 1000, true).await;
        assert!(got.unwrap_err().contains("mid-answer"));
    }

    #[tokio::test]
    async fn connections_are_reused_only_when_both_sides_keep_them_alive() {
        let (_, _, reused) =
            exchange(Method::GET, b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", 1000, false)
                .await
                .unwrap();
        assert!(!reused);
        let (_, _, reused) =
            exchange(Method::GET, b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", 1000, false).await.unwrap();
        assert!(!reused);
        let (r, _, reused) = exchange(
            Method::GET,
            b"HTTP/1.0 200 OK\r\nconnection: Keep-Alive\r\ncontent-length: 2\r\n\r\nok",
            1000,
            false,
        )
        .await
        .unwrap();
        assert_eq!((r.version(), reused), (Version::HTTP_10, true));
        let (conn, _server) = backend(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", 1000, false, head_ended).await;
        let mut p = parts(Method::GET, "/");
        p.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        let mut body = conn.send(&p, &mut Empty::<Bytes>::new()).await.unwrap().into_body();
        let rx = given_back(&mut body);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "ok");
        assert!(rx.try_recv().is_err(), "the client asked to close");
    }

    #[tokio::test]
    async fn a_connection_closed_before_any_answer_may_be_retried_only_for_an_idempotent_request_with_nothing_taken() {
        let (conn, _server) = backend(b"", 1000, true, head_ended).await;
        let e = conn.send(&parts(Method::GET, "/"), &mut Empty::<Bytes>::new()).await.unwrap_err();
        assert!(e.retryable, "{e:?}");
        let (conn, _server) = backend(b"", 1000, true, head_ended).await;
        let e = conn.send(&parts(Method::POST, "/"), &mut Full::new(Bytes::from_static(b"x"))).await.unwrap_err();
        assert!(!e.retryable, "{e:?}");
        let (conn, _server) = backend(b"HTTP/1.1 2", 1000, true, head_ended).await;
        let e = conn.send(&parts(Method::GET, "/"), &mut Empty::<Bytes>::new()).await.unwrap_err();
        assert!(!e.retryable, "part of an answer came: {e:?}");
    }

    #[tokio::test]
    async fn an_answer_sent_before_the_backend_takes_the_whole_body_is_passed_on_and_the_connection_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Reads the head only, answers 413, then holds the connection open without reading.
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buf = [0u8; 4096];
            while !head_ended(&received) {
                let n = stream.read(&mut buf).await.unwrap();
                received.extend_from_slice(&buf[..n]);
            }
            stream.write_all(b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 8\r\n\r\ntoo big\n").await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let conn = Conn::new(TcpStream::connect(addr).await.unwrap());
        // Far more than the loopback socket buffers hold, so the write has to wait.
        let mut body = Full::new(Bytes::from(vec![b'x'; 64 << 20]));
        let sent = tokio::time::timeout(Duration::from_secs(5), conn.send(&parts(Method::POST, "/"), &mut body)).await;
        let mut answer = sent.expect("the answer is read, not waited past").unwrap();
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let rx = given_back(answer.body_mut());
        assert_eq!(answer.into_body().collect().await.unwrap().to_bytes(), "too big\n");
        assert!(rx.try_recv().is_err(), "a connection with part of a request unsent is not reused");
    }

    /// Sends `body` as a POST and returns what the backend read, up to the end `complete` recognises.
    async fn request_bytes<B>(mut p: http::request::Parts, mut body: B, complete: Complete) -> String
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (conn, server) = backend(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 1000, true, complete).await;
        p.headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        p.headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        let r = conn.send(&p, &mut body).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        String::from_utf8(server.await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn requests_are_framed_by_their_bodies_not_by_their_headers() {
        let sent =
            request_bytes(parts(Method::POST, "/v1/predict?x=1"), Full::new(Bytes::from_static(b"{\"a\":1}")), |r| {
                r.ends_with(b"}")
            })
            .await;
        assert_eq!(sent, "POST /v1/predict?x=1 HTTP/1.1\r\nhost: backend\r\ncontent-length: 7\r\n\r\n{\"a\":1}");
        let sent = request_bytes(parts(Method::GET, "/"), Empty::<Bytes>::new(), head_ended).await;
        assert_eq!(sent, "GET / HTTP/1.1\r\nhost: backend\r\n\r\n");
        let sent = request_bytes(parts(Method::POST, "/"), Empty::<Bytes>::new(), head_ended).await;
        assert_eq!(sent, "POST / HTTP/1.1\r\nhost: backend\r\ncontent-length: 0\r\n\r\n");
        // An absolute URI is written in origin-form.
        let sent = request_bytes(parts(Method::GET, "http://shadow:8080/a/b"), Empty::<Bytes>::new(), head_ended).await;
        assert!(sent.starts_with("GET /a/b HTTP/1.1\r\n"), "{sent}");
    }

    #[tokio::test]
    async fn a_body_of_unknown_size_is_chunked_with_its_trailers() {
        let (mut tx, body) = Channel::<Bytes, Infallible>::new(4);
        tokio::spawn(async move {
            tx.send_data(Bytes::from_static(b"abc")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            tx.send_data(Bytes::from_static(b"0123456789abcdef")).await.unwrap();
            let mut trailers = HeaderMap::new();
            trailers.insert("x-checksum", HeaderValue::from_static("7"));
            tx.send_trailers(trailers).await.unwrap();
        });
        let sent = request_bytes(parts(Method::POST, "/"), body, |r| {
            r.ends_with(b"\r\n\r\n") && r.windows(3).any(|w| w == b"0\r\n")
        })
        .await;
        assert_eq!(
            sent,
            "POST / HTTP/1.1\r\nhost: backend\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nx-checksum: 7\r\n\r\n"
        );
        let (mut tx, body) = Channel::<Bytes, Infallible>::new(4);
        tokio::spawn(async move { tx.send_data(Bytes::from_static(b"abc")).await.unwrap() });
        let sent = request_bytes(parts(Method::POST, "/"), body, |r| r.ends_with(b"0\r\n\r\n")).await;
        assert!(sent.ends_with("\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), "{sent}");
    }

    #[tokio::test]
    async fn a_connection_is_usable_until_the_backend_closes_it_or_sends_unasked() {
        let (conn, server) = backend(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", 1000, true, head_ended).await;
        let mut body = conn.send(&parts(Method::GET, "/"), &mut Empty::<Bytes>::new()).await.unwrap().into_body();
        let rx = given_back(&mut body);
        body.collect().await.unwrap();
        let conn = rx.try_recv().unwrap();
        server.await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!conn.is_usable(), "the backend closed it");

        let (conn, _server) =
            backend(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokXX", 1000, false, head_ended).await;
        let mut body = conn.send(&parts(Method::GET, "/"), &mut Empty::<Bytes>::new()).await.unwrap().into_body();
        let rx = given_back(&mut body);
        body.collect().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!rx.try_recv().unwrap().is_usable(), "bytes nobody asked for came");

        let (conn, _server) = backend(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", 1000, false, head_ended).await;
        let mut body = conn.send(&parts(Method::GET, "/"), &mut Empty::<Bytes>::new()).await.unwrap().into_body();
        let rx = given_back(&mut body);
        body.collect().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(rx.try_recv().unwrap().is_usable());
    }
}
