//! The proxy port's HTTP/1.1 side: one task per client connection reads a request head, hands the request to the
//! proxy, and writes the answer, one request after another (pipelined requests wait in the buffer). hyper's server
//! dispatcher cost about 14,000 instructions per request around the proxy's own work, the largest cost left on the
//! HTTP/1.1 path (callgrind, docs/router-benchmark.md); this does the same in a loop with no dispatcher.
//!
//! What it speaks (RFC 9112): a request body is framed by `transfer-encoding: chunked` (the only transfer coding
//! taken; any other is answered 501) or by `content-length`, never both (400, against request smuggling); a request
//! without either has no body. `expect: 100-continue` is answered with `100 Continue` when the proxy first reads the
//! body, never after the answer has begun. An answer is framed by its body: `content-length` when its size is known,
//! else chunked (trailers included), else, to an HTTP/1.0 client, until close; none for `HEAD`, 1xx, 204 and 304,
//! whose headers go out as they are. A connection is kept for the next request unless either side asked to close,
//! the request body was not read to its end, or the router is stopping. A malformed request is answered 400 (431
//! for a head over 64 KiB, 408 for one that takes over 30 s once begun) and its connection closed; an idle
//! connection is closed after 75 s, as nginx does.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, Sleep};

use super::h1wire::{
    Chunk, Decoder, Framing, MAX_HEAD, MAX_HEADERS, connection_close, content_length, field_ranges, has_token,
    header_map, invalid, is_framing, poll_read, write_all, write_body, write_fields, write_framing,
};
use super::lock;

/// How long a client connection may wait for what.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Between requests (75 s: nginx's `keepalive_timeout` default).
    pub idle: Duration,
    /// For a whole request head once it has begun (30 s).
    pub head: Duration,
    /// Reading (and dropping) what a client still sends to a connection being closed (5 s).
    pub linger: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { idle: Duration::from_secs(75), head: Duration::from_secs(30), linger: Duration::from_secs(5) }
    }
}
/// The interim answer to `expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The reading side of a client connection: the socket, and what was read from it and not used yet.
pub struct Reader {
    io: OwnedReadHalf,
    buf: BytesMut,
}

/// Why a request is refused without being proxied; the connection is closed after the answer.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    status: StatusCode,
    why: &'static str,
}

fn refuse(status: StatusCode, why: &'static str) -> Refusal {
    Refusal { status, why }
}

/// A request head, parsed and checked.
struct Head {
    parts: http::request::Parts,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
}

/// Parses the request head at the start of `buf` and takes it out: `None` while it is incomplete.
fn parse_request(buf: &mut BytesMut) -> Result<Option<Head>, Refusal> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "the request has more than 100 headers"));
        }
        Err(_) => return Err(refuse(StatusCode::BAD_REQUEST, "the request is not HTTP/1.x")),
    };
    let bad = |why| refuse(StatusCode::BAD_REQUEST, why);
    let method =
        Method::from_bytes(request.method.unwrap_or_default().as_bytes()).map_err(|_| bad("invalid method"))?;
    if method == Method::CONNECT {
        return Err(refuse(StatusCode::NOT_IMPLEMENTED, "the router does not tunnel CONNECT"));
    }
    let path = request.path.unwrap_or_default();
    let path_at = path.as_ptr() as usize - buf.as_ptr() as usize;
    let path_range = path_at..path_at + path.len();
    let version = if request.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let ranges = field_ranges(buf, request.headers);
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(path_range)).map_err(|_| bad("invalid request target"))?;
    let mut headers = header_map(&head, ranges).map_err(bad)?;

    let framing = if headers.contains_key(header::TRANSFER_ENCODING) {
        if version == Version::HTTP_10 {
            return Err(bad("transfer-encoding in an HTTP/1.0 request"));
        }
        if headers.contains_key(header::CONTENT_LENGTH) {
            return Err(bad("both transfer-encoding and content-length"));
        }
        let codings: Vec<&[u8]> = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|c| !c.is_empty())
            .collect();
        match codings[..] {
            [coding] if coding.eq_ignore_ascii_case(b"chunked") => Framing::Chunked,
            [.., last] if last.eq_ignore_ascii_case(b"chunked") => {
                return Err(refuse(StatusCode::NOT_IMPLEMENTED, "transfer codings other than chunked"));
            }
            _ => return Err(bad("a transfer-encoding that does not end with chunked")),
        }
    } else {
        match content_length(&headers).map_err(bad)? {
            None | Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
        }
    };
    let keep_alive = match version {
        Version::HTTP_10 => has_token(&headers, header::CONNECTION, "keep-alive"),
        _ => !connection_close(&headers),
    };
    // This hop answers the expectation; the backend gets the body without waiting.
    let expect_continue = match headers.remove(header::EXPECT) {
        None => false,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"100-continue") => {
            version == Version::HTTP_11 && framing != Framing::Empty
        }
        Some(_) => return Err(refuse(StatusCode::EXPECTATION_FAILED, "an expectation other than 100-continue")),
    };
    let mut parts = Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(Head { parts, framing, keep_alive, expect_continue }))
}

/// Whether `100 Continue` may still be sent, has been, or will not be (the answer has begun).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Pending,
    Sent,
    Skipped,
}

/// The `100 Continue` an `expect: 100-continue` request waits for, sent by its body when first read.
struct Continue {
    writer: Arc<OwnedWriteHalf>,
    state: Arc<Mutex<Expect>>,
}

impl Continue {
    /// Sends it, unless the answer has begun. The send buffer of a connection whose request is waiting is empty, so
    /// the 25 bytes go out at once; when they do not, the connection is failed rather than waited for.
    fn send(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        if *state == Expect::Pending {
            *state = Expect::Sent;
            if self.writer.try_write(CONTINUE)? != CONTINUE.len() {
                return Err(invalid("100 Continue did not fit in the send buffer"));
            }
        }
        Ok(())
    }
}

/// A request's body as the proxy reads it.
pub struct RequestBody(Inner);

enum Inner {
    /// The whole body, read with the head (or none).
    Whole(Option<Bytes>),
    /// Read from the connection as it is polled.
    Streaming(Box<Streaming>),
}

struct Streaming {
    /// `None` once the body has ended or failed.
    reader: Option<Reader>,
    decoder: Decoder,
    /// Where the reading side goes when the body has been read to its end (`true`) or is dropped before (`false`).
    back: Option<oneshot::Sender<(Reader, bool)>>,
    expect: Option<Continue>,
}

/// Where the connection's reading side is after a request: still here, or with a body that gives it back when read
/// to its end.
type Back = Result<Reader, oneshot::Receiver<(Reader, bool)>>;

impl RequestBody {
    /// The body of a request framed as `framing`: taken from the buffer when it is all there, else read as polled.
    fn new(framing: Framing, mut reader: Reader, expect: Option<Continue>) -> (RequestBody, Back) {
        let decoder = match framing {
            Framing::Empty => return (RequestBody(Inner::Whole(None)), Ok(reader)),
            Framing::Length(n) if reader.buf.len() as u64 >= n => {
                let data = reader.buf.split_to(n as usize).freeze();
                return (RequestBody(Inner::Whole(Some(data))), Ok(reader));
            }
            Framing::Length(n) => Decoder::Length(n),
            Framing::Chunked => Decoder::Chunked(Chunk::Size),
            // Not a request's framing (`parse_request` never gives it), mapped as it reads.
            Framing::UntilClose => Decoder::UntilClose,
        };
        let (tx, rx) = oneshot::channel();
        let streaming = Streaming { reader: Some(reader), decoder, back: Some(tx), expect };
        (RequestBody(Inner::Streaming(Box::new(streaming))), Err(rx))
    }
}

impl Streaming {
    fn give_back(&mut self) {
        if let (Some(reader), Some(back)) = (self.reader.take(), self.back.take()) {
            let _ = back.send((reader, self.decoder == Decoder::Ended));
        }
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.reader = None;
        self.decoder = Decoder::Ended;
        Poll::Ready(Some(Err(e)))
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        loop {
            let Some(reader) = self.reader.as_mut() else { return Poll::Ready(None) };
            match self.decoder.frame(&mut reader.buf) {
                Err(what) => return self.fail(invalid(format!("the client sent {what}"))),
                Ok(Some(frame)) => {
                    if self.decoder == Decoder::Ended {
                        self.give_back();
                    }
                    return Poll::Ready(frame.map(Ok));
                }
                Ok(None) => {}
            }
            if let Some(expect) = self.expect.take()
                && let Err(e) = expect.send()
            {
                return self.fail(e);
            }
            match ready!(poll_read(&mut reader.io, &mut reader.buf, cx)) {
                Err(e) => return self.fail(e),
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the client closed the connection mid-body");
                    return self.fail(e);
                }
                Ok(_) => {}
            }
        }
    }
}

/// Dropped before its end, the body still gives the reading side back, so that the connection is closed gently.
impl Drop for Streaming {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.get_mut().0 {
            Inner::Whole(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Inner::Streaming(s) => s.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Whole(data) => data.is_none(),
            Inner::Streaming(s) => s.decoder == Decoder::Ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Whole(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Inner::Streaming(s) => match s.decoder {
                Decoder::Length(n) => SizeHint::with_exact(n),
                Decoder::Ended => SizeHint::with_exact(0),
                _ => SizeHint::default(),
            },
        }
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody").field("size", &self.size_hint().exact()).finish_non_exhaustive()
    }
}

/// Serves one client connection until it closes, fails, idles out, or `stop` says the router is stopping (an idle
/// connection closes at once, a busy one after its answer). `read` holds what was already read from it.
pub async fn serve<S, F, B>(
    stream: TcpStream,
    read: BytesMut,
    service: S,
    mut stop: watch::Receiver<bool>,
    timeouts: Timeouts,
) where
    S: Fn(Request<RequestBody>) -> F,
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (io, writer) = stream.into_split();
    let writer = Arc::new(writer);
    let mut reader = Reader { io, buf: read };
    let mut out = Vec::with_capacity(1024);
    let timer = tokio::time::sleep(timeouts.idle);
    tokio::pin!(timer);
    // One wait for the stop for the whole connection, not one a request (each registers with the channel).
    let stopping = stop.clone();
    let stopped = async move {
        let _ = stop.changed().await;
    };
    tokio::pin!(stopped);
    loop {
        if *stopping.borrow() && reader.buf.is_empty() {
            return;
        }
        let idle = reader.buf.is_empty();
        let head = tokio::select! {
            head = read_head(&mut reader, timer.as_mut(), &timeouts) => head,
            // Polled only while idle, and the connection ends when it completes: never polled after that.
            () = &mut stopped, if idle => return,
        };
        let head = match head {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(refusal) => {
                let _ = write_all(&*writer, &refusal_bytes(&refusal)).await;
                // What the client sends after its refused request (the rest of a huge head) must not reset the
                // connection before the refusal has been read.
                linger(&writer, reader, timeouts.linger).await;
                return;
            }
        };
        let asked = Asked {
            head: head.parts.method == Method::HEAD,
            http10: head.parts.version == Version::HTTP_10,
            keep_alive: head.keep_alive,
        };
        let expect = head
            .expect_continue
            .then(|| Continue { writer: writer.clone(), state: Arc::new(Mutex::new(Expect::Pending)) });
        let expect_state = expect.as_ref().map(|c| c.state.clone());
        let (body, back) = RequestBody::new(head.framing, reader, expect);
        let response = match service(Request::from_parts(head.parts, body)).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if let Some(state) = expect_state {
            let mut state = lock(&state);
            if *state == Expect::Pending {
                *state = Expect::Skipped;
            }
        }
        let closing = !asked.keep_alive || *stopping.borrow();
        let kept = write_response(&writer, &mut out, response, &asked, closing).await && !closing;
        let returned = match back {
            Ok(reader) => Some((reader, true)),
            Err(mut rx) => rx.try_recv().ok(),
        };
        reader = match returned {
            Some((reader, true)) if kept => reader,
            // The body was not read to its end (the backend answered without it): what follows on the connection
            // cannot be told apart from the rest of it, and the client may still be sending it.
            Some((reader, false)) => return linger(&writer, reader, timeouts.linger).await,
            // Closing; or the body is still being read (by a shadow's copy) or failed: closed by whoever holds it.
            _ => return,
        };
    }
}

/// Reads until a request head is complete: `None` when the client closed or idled out first, or went silent
/// mid-head (408 would then be written, though the client is likely gone).
///
/// `timer` is the connection's; it is moved earlier only when it would fire too late, and when it fires early (set
/// for an earlier wait) it is moved to this wait's limit then, about once per idle period, so that a request does
/// not move it.
async fn read_head(
    reader: &mut Reader,
    mut timer: Pin<&mut Sleep>,
    timeouts: &Timeouts,
) -> Result<Option<Head>, Refusal> {
    let mut begun = !reader.buf.is_empty();
    let mut limit = None;
    loop {
        if !reader.buf.is_empty() {
            if let Some(head) = parse_request(&mut reader.buf)? {
                return Ok(Some(head));
            }
            if reader.buf.len() >= MAX_HEAD {
                return Err(refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "the request head is over 64 KiB"));
            }
            if !begun {
                begun = true;
                limit = None;
            }
        }
        let until = *limit.get_or_insert_with(|| Instant::now() + if begun { timeouts.head } else { timeouts.idle });
        if timer.deadline() > until {
            timer.as_mut().reset(until);
        }
        let read = poll_fn(|cx| {
            loop {
                if let Poll::Ready(read) = poll_read(&mut reader.io, &mut reader.buf, cx) {
                    return Poll::Ready(Some(read));
                }
                ready!(timer.as_mut().poll(cx));
                if Instant::now() >= until {
                    return Poll::Ready(None);
                }
                timer.as_mut().reset(until);
            }
        })
        .await;
        match read {
            None if begun => return Err(refuse(StatusCode::REQUEST_TIMEOUT, "the request head took too long")),
            None | Some(Ok(0)) | Some(Err(_)) => return Ok(None),
            Some(Ok(_)) => {}
        }
    }
}

/// Closes a connection whose client may still be sending: the write side is shut first, then what arrives is
/// read and dropped until the client closes (at most `time`). Closing a socket with unread data resets the
/// connection, which can discard the answer before the client has read it.
async fn linger(writer: &OwnedWriteHalf, mut reader: Reader, time: Duration) {
    let _ = socket2::SockRef::from(writer.as_ref()).shutdown(std::net::Shutdown::Write);
    let drain = async {
        loop {
            reader.buf.clear();
            match poll_fn(|cx| poll_read(&mut reader.io, &mut reader.buf, cx)).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(time, drain).await;
}

/// What the answer's framing depends on in the request.
struct Asked {
    head: bool,
    http10: bool,
    keep_alive: bool,
}

/// Writes an answer; says whether the connection may carry another request.
async fn write_response<B>(
    writer: &OwnedWriteHalf,
    out: &mut Vec<u8>,
    response: Response<B>,
    asked: &Asked,
    closing: bool,
) -> bool
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let bodiless = asked.head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = match body.size_hint().exact() {
        _ if bodiless => Framing::Empty,
        Some(n) => Framing::Length(n),
        None if asked.http10 => Framing::UntilClose,
        None => Framing::Chunked,
    };
    let close = closing || framing == Framing::UntilClose;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    // A bodiless answer's headers say what the body would have been (a HEAD's content-length): they go as they are.
    let keep = |name: &header::HeaderName| *name != header::CONNECTION && (bodiless || !is_framing(name));
    write_fields(out, parts.headers.iter().filter(|(name, _)| keep(name)));
    if !parts.headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        with_date(|date| out.extend_from_slice(date.as_bytes()));
        out.extend_from_slice(b"\r\n");
    }
    write_framing(out, framing);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    } else if asked.http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    match write_body(writer, out, &mut body, framing).await {
        Ok(sent) => sent.whole && !close,
        Err(_) => false,
    }
}

/// The answer to a refused request, with its reason as the body.
fn refusal_bytes(refusal: &Refusal) -> Vec<u8> {
    let status = refusal.status;
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}\n",
        status.as_str(),
        status.canonical_reason().unwrap_or(""),
        refusal.why.len() + 1,
        refusal.why
    )
    .into_bytes()
}

thread_local! {
    /// The `date` header's value, formatted once a second.
    static DATE: RefCell<(u64, HeaderValue)> = const { RefCell::new((0, HeaderValue::from_static(""))) };
}

/// Calls `f` with the current time as an HTTP date.
fn with_date<T>(f: impl FnOnce(&HeaderValue) -> T) -> T {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, date)| {
        if *at != second || date.is_empty() {
            *at = second;
            *date =
                HeaderValue::try_from(httpdate::fmt_http_date(now)).unwrap_or_else(|_| HeaderValue::from_static(""));
        }
        f(date)
    })
}

/// The current time as a `date` header's value (for the answers that have none).
pub fn date_value() -> HeaderValue {
    with_date(HeaderValue::clone)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use http_body_util::{BodyExt, Either, Full, channel::Channel};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    type TestBody = Either<Full<Bytes>, Channel<Bytes, Infallible>>;

    /// Answers with what it was asked: the request line, the headers in order, the body and the trailers. `/ignore`
    /// and `/big` (16 MiB) answer without reading the body, `/stream` with a body of unknown size and trailers, `/head` with the
    /// `content-length` of a body it does not send.
    async fn echo(req: Request<RequestBody>) -> Result<Response<TestBody>, Infallible> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        match path.as_str() {
            "/ignore" => return Ok(Response::new(Either::Left(Full::new(Bytes::from_static(b"ignored"))))),
            "/big" => return Ok(Response::new(Either::Left(Full::new(Bytes::from(vec![b'y'; 16 << 20]))))),
            "/stream" => {
                let (mut tx, body) = Channel::<Bytes, Infallible>::new(2);
                tokio::spawn(async move {
                    tx.send_data(Bytes::from_static(b"abc")).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    tx.send_data(Bytes::from_static(b"de")).await.unwrap();
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("x-done", header::HeaderValue::from_static("1"));
                    tx.send_trailers(trailers).await.unwrap();
                });
                return Ok(Response::new(Either::Right(body)));
            }
            "/head" => {
                let mut r = Response::new(Either::Left(Full::new(Bytes::new())));
                r.headers_mut().insert(header::CONTENT_LENGTH, header::HeaderValue::from_static("5"));
                return Ok(r);
            }
            "/nothing" => {
                let mut r = Response::new(Either::Left(Full::new(Bytes::new())));
                *r.status_mut() = StatusCode::NO_CONTENT;
                return Ok(r);
            }
            _ => {}
        }
        let mut text = format!("{} {} {:?}\n", parts.method, parts.uri, parts.version);
        for (name, value) in &parts.headers {
            text += &format!("{name}={}\n", value.to_str().unwrap());
        }
        let collected = body.collect().await;
        match collected {
            Ok(c) => {
                let trailers = c.trailers().map(|t| format!("{t:?}")).unwrap_or_default();
                text += &format!("body={} trailers={trailers}", String::from_utf8_lossy(&c.to_bytes()));
            }
            Err(e) => text += &format!("body error: {e}"),
        }
        Ok(Response::new(Either::Left(Full::new(Bytes::from(text)))))
    }

    /// A server on a loopback port, and what stops it.
    async fn server() -> (SocketAddr, watch::Sender<bool>) {
        server_with(Timeouts::default()).await
    }

    async fn server_with(timeouts: Timeouts) -> (SocketAddr, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(stream, BytesMut::new(), echo, stopped.clone(), timeouts));
            }
        });
        (addr, stop)
    }

    /// Writes `pieces` with a pause between them, then reads until the server closes the connection (at most 5 s).
    async fn exchange(addr: SocketAddr, pieces: &[&[u8]]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        for piece in pieces {
            // The server may have closed already (after a refusal).
            let _ = stream.write_all(piece).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        read_to_close(&mut stream).await
    }

    async fn read_to_close(stream: &mut TcpStream) -> String {
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got)).await;
        let text = String::from_utf8_lossy(&got).into_owned();
        let start: String = text.chars().take(300).collect();
        let read = read.unwrap_or_else(|_| panic!("the connection was not closed; got {start:?}"));
        read.unwrap_or_else(|e| panic!("the connection failed ({e}) after {} bytes: {start:?}", got.len()));
        text
    }

    /// The answers in `text`, each as its head and its body.
    fn split_answers(text: &str) -> Vec<(String, String)> {
        text.split("HTTP/1.1 ")
            .skip(1)
            .map(|a| {
                let (head, body) = a.split_once("\r\n\r\n").unwrap_or((a, ""));
                (head.to_string(), body.to_string())
            })
            .collect()
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_order_on_one_connection() {
        let (addr, _stop) = server().await;
        let got = exchange(
            addr,
            &[b"GET /a?x=1 HTTP/1.1\r\nhost: h\r\n\r\nPOST /b HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"],
        )
        .await;
        let answers = split_answers(&got);
        assert_eq!(answers.len(), 2, "{got}");
        assert!(answers[0].0.starts_with("200 OK\r\n"), "{got}");
        assert!(answers[0].0.contains("\r\ndate: "), "{got}");
        assert!(!answers[0].0.contains("connection: close"), "{got}");
        assert!(answers[0].1.starts_with("GET /a?x=1 HTTP/1.1\nhost=h\nbody= trailers="), "{got}");
        assert!(answers[1].0.contains("connection: close"), "{got}");
        assert!(answers[1].1.starts_with("POST /b HTTP/1.1\n"), "{got}");
        assert!(answers[1].1.ends_with("body=hello trailers="), "{got}");
        let length = answers[1].1.len();
        assert!(answers[1].0.contains(&format!("content-length: {length}\r\n")), "{got}");
    }

    #[tokio::test]
    async fn a_chunked_request_arriving_in_pieces_keeps_its_trailers_and_its_connection() {
        let (addr, _stop) = server().await;
        let got = exchange(
            addr,
            &[
                b"POST /c HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nhel",
                b"\r\n2\r\nlo\r\n0\r\nx-sum: 9\r\n",
                b"\r\nGET /next HTTP/1.1\r\nconnection: close\r\n\r\n",
            ],
        )
        .await;
        let answers = split_answers(&got);
        assert_eq!(answers.len(), 2, "{got}");
        assert!(answers[0].1.contains("transfer-encoding=chunked\n"), "the proxy sees the header: {got}");
        assert!(answers[0].1.ends_with("body=hello trailers={\"x-sum\": \"9\"}"), "{got}");
        assert!(answers[1].1.starts_with("GET /next HTTP/1.1\n"), "{got}");
    }

    #[tokio::test]
    async fn an_answer_of_unknown_size_is_chunked_and_to_http_1_0_runs_until_close() {
        let (addr, _stop) = server().await;
        let got = exchange(addr, &[b"GET /stream HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\nconnection: close\r\n\r\n"]).await;
        let answers = split_answers(&got);
        assert_eq!(answers.len(), 2, "{got}");
        assert!(answers[0].0.contains("transfer-encoding: chunked"), "{got}");
        assert_eq!(answers[0].1, "3\r\nabc\r\n2\r\nde\r\n0\r\nx-done: 1\r\n\r\n", "{got}");

        let got = exchange(addr, &[b"GET /stream HTTP/1.0\r\nconnection: keep-alive\r\n\r\n"]).await;
        let answers = split_answers(&got);
        assert_eq!(answers.len(), 1, "{got}");
        assert!(answers[0].0.contains("connection: close"), "{got}");
        assert!(!answers[0].0.contains("transfer-encoding"), "{got}");
        assert_eq!(answers[0].1, "abcde", "{got}");
    }

    #[tokio::test]
    async fn http_1_0_keeps_its_connection_only_when_it_asks_to() {
        let (addr, _stop) = server().await;
        let got = exchange(addr, &[b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n"]).await;
        assert_eq!(split_answers(&got).len(), 1, "{got}");
        assert!(split_answers(&got)[0].0.contains("connection: close"), "{got}");
        let got = exchange(addr, &[b"GET /a HTTP/1.0\r\nconnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n"]).await;
        let kept = split_answers(&got);
        assert_eq!(kept.len(), 2, "{got}");
        assert!(kept[0].0.contains("connection: keep-alive"), "{got}");
    }

    #[tokio::test]
    async fn head_and_204_answers_have_no_body_and_keep_their_headers() {
        let (addr, _stop) = server().await;
        let got = exchange(
            addr,
            &[b"HEAD /head HTTP/1.1\r\n\r\nGET /nothing HTTP/1.1\r\n\r\nGET /last HTTP/1.1\r\nconnection: close\r\n\r\n"],
        )
        .await;
        let answers = split_answers(&got);
        assert_eq!(answers.len(), 3, "{got}");
        assert!(answers[0].0.contains("content-length: 5"), "{got}");
        assert_eq!(answers[0].1, "", "{got}");
        assert!(answers[1].0.starts_with("204 No Content"), "{got}");
        assert!(!answers[1].0.contains("content-length"), "{got}");
        assert!(answers[2].1.starts_with("GET /last"), "{got}");
    }

    #[tokio::test]
    async fn malformed_or_unsupported_requests_are_refused_and_their_connections_closed() {
        let (addr, _stop) = server().await;
        let many_headers: String = (0..101).map(|i| format!("x-{i}: 1\r\n")).collect();
        let many_headers = format!("GET / HTTP/1.1\r\n{many_headers}\r\n");
        let huge_head = format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(70 << 10));
        let cases: Vec<(&[u8], &str)> = vec![
            (b"hello there\r\n\r\n", "400 Bad Request"),
            (b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\nabc", "400 Bad Request"),
            (b"POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n", "501 Not Implemented"),
            (b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n", "400 Bad Request"),
            (
                b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
                "501 Not Implemented",
            ),
            (b"POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n", "400 Bad Request"),
            (b"POST / HTTP/1.1\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd", "400 Bad Request"),
            (b"POST / HTTP/1.1\r\ncontent-length: 3x\r\n\r\nabc", "400 Bad Request"),
            (b"CONNECT h:443 HTTP/1.1\r\n\r\n", "501 Not Implemented"),
            (b"POST / HTTP/1.1\r\nexpect: magic\r\ncontent-length: 1\r\n\r\na", "417 Expectation Failed"),
            (many_headers.as_bytes(), "431 Request Header Fields Too Large"),
            (huge_head.as_bytes(), "431 Request Header Fields Too Large"),
        ];
        for (request, status) in cases {
            // A second request after the bad one must go unanswered: the connection is closed.
            let got = exchange(addr, &[request, b"GET / HTTP/1.1\r\n\r\n"]).await;
            let answers = split_answers(&got);
            assert_eq!(answers.len(), 1, "{got}");
            assert!(
                answers[0].0.starts_with(status),
                "{:?}: {got}",
                String::from_utf8_lossy(&request[..40.min(request.len())])
            );
            assert!(answers[0].0.contains("connection: close"), "{got}");
        }
    }

    #[tokio::test]
    async fn an_answer_sent_before_the_body_was_read_reaches_the_client_whole() {
        let (addr, _stop) = server().await;
        // The client is still sending when the answer is done, and reads it only later: a close with its bytes
        // unread would reset the connection and discard what of the answer is still in the send buffer. Whether
        // the client asked to close or not.
        for connection in ["", "connection: close\r\n"] {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let head = format!("POST /big HTTP/1.1\r\ncontent-length: 10000000\r\n{connection}\r\n");
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(&vec![b'x'; 64 << 10]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let got = read_to_close(&mut stream).await;
            let answers = split_answers(&got);
            assert_eq!(answers.len(), 1, "{}", &got[..200.min(got.len())]);
            assert!(answers[0].0.contains("content-length: 16777216"), "{}", answers[0].0);
            assert_eq!(answers[0].1.len(), 16 << 20, "{connection:?}");
        }
    }

    #[tokio::test]
    async fn expect_100_continue_is_answered_when_the_body_is_read_and_not_passed_on() {
        let (addr, _stop) = server().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /e HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 5\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut interim = [0u8; CONTINUE.len()];
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut interim)).await.unwrap().unwrap();
        assert_eq!(&interim[..], CONTINUE);
        stream.write_all(b"hello").await.unwrap();
        let got = read_to_close(&mut stream).await;
        let answers = split_answers(&got);
        assert_eq!(answers.len(), 1, "{got}");
        assert!(!answers[0].1.contains("expect"), "{got}");
        assert!(answers[0].1.ends_with("body=hello trailers="), "{got}");
    }

    #[tokio::test]
    async fn a_body_left_unread_closes_the_connection_unless_it_came_whole_with_the_head() {
        let (addr, _stop) = server().await;
        // Half a body: the rest cannot be told from the next request.
        let got =
            exchange(addr, &[b"POST /ignore HTTP/1.1\r\ncontent-length: 10\r\n\r\nhello", b"GET /a HTTP/1.1\r\n\r\n"])
                .await;
        let answers = split_answers(&got);
        assert_eq!(answers.len(), 1, "{got}");
        assert_eq!(answers[0].1, "ignored", "{got}");
        // A whole body, taken out of the buffer with the head: the next request is served.
        let got = exchange(
            addr,
            &[b"POST /ignore HTTP/1.1\r\ncontent-length: 5\r\n\r\nhelloGET /a HTTP/1.1\r\nconnection: close\r\n\r\n"],
        )
        .await;
        assert_eq!(split_answers(&got).len(), 2, "{got}");
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_after_the_idle_time_since_its_last_request_and_a_slow_head_gets_408() {
        let idle = Duration::from_secs(1);
        let (addr, _stop) =
            server_with(Timeouts { idle, head: Duration::from_millis(300), ..Timeouts::default() }).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut answer = [0u8; 12];
        for _ in 0..2 {
            stream.write_all(b"GET /a HTTP/1.1\r\n\r\n").await.unwrap();
            stream.read_exact(&mut answer).await.unwrap();
            assert_eq!(&answer, b"HTTP/1.1 200");
            let mut rest = [0u8; 4096];
            let _ = stream.read(&mut rest).await.unwrap();
            // The second request comes after more than half the idle time: the connection's timer, set when it
            // opened, fires before the second wait is over, and must not close it then.
            tokio::time::sleep(idle * 5 / 8).await;
        }
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await;
        assert!(early.is_err(), "closed before its idle time since the last request: {early:?}");
        read_to_close(&mut stream).await;

        // A head begun and not finished: 408 after the head time (200 ms), not the idle time (1 s).
        let begun = std::time::Instant::now();
        let got = exchange(addr, &[b"GET / HTTP/1.1\r\nhost: slow"]).await;
        assert!(got.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{got}");
        assert!(begun.elapsed() < Duration::from_millis(800), "408 after {:?}", begun.elapsed());
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_when_the_router_stops() {
        let (addr, stop) = server().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /a HTTP/1.1\r\n\r\n").await.unwrap();
        let mut first = [0u8; 12];
        stream.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        stop.send(true).unwrap();
        read_to_close(&mut stream).await;
    }
}
