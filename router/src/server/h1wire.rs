//! What both HTTP/1.1 ends of the router share (RFC 9112): how a body is framed, decoding a framed body from a
//! buffer, writing a head's fields and a body with its framing, `content-length` and `connection` rules. The
//! backend client ([`super::h1conn`]) and the proxy port's server ([`super::h1server`]) each add their side's rules.

use std::future::{Future, poll_fn};
use std::io::{self, ErrorKind};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::body::{Body, Frame};
use tokio::io::AsyncRead;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_util::io::poll_read_buf;

/// The most header lines a head (or a trailer section) may have.
pub const MAX_HEADERS: usize = 100;
/// The largest head (start line and headers) read before giving up on it.
pub const MAX_HEAD: usize = 64 << 10;
/// Bytes read from a socket at a time, at least.
pub const READ_CHUNK: usize = 8 << 10;
/// Body data smaller than this is copied into the write buffer (one write for head and body); larger data is
/// written on its own, not copied.
const COPY_LIMIT: usize = 16 << 10;

/// A malformed or unexpected message, as an I/O error of kind `InvalidData`.
pub fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what.into())
}

/// How a message's body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body, and no framing header.
    Empty,
    /// `content-length`.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Until the connection closes (an answer of unknown size to an HTTP/1.0 client).
    UntilClose,
}

/// Writes header lines (`name: value` and CRLF each): a head's headers, a chunked body's trailers.
pub fn write_fields<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>) {
    for (name, value) in fields {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Writes the framing header `framing` calls for, if any.
pub fn write_framing(out: &mut Vec<u8>, framing: Framing) {
    match framing {
        Framing::Empty | Framing::UntilClose => {}
        Framing::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
}

/// Whether a header is one of the two that frame a body, which each side writes from the body itself.
pub fn is_framing(name: &HeaderName) -> bool {
    name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING
}

/// Whether a `connection` header names `close`.
pub fn connection_close(headers: &HeaderMap) -> bool {
    has_token(headers, header::CONNECTION, "close")
}

/// Whether a comma-separated header (any of its lines) has `token`, compared without case.
pub fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|v| v.as_bytes().split(|b| *b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes())))
}

/// The body length `content-length` says (every line and list item must agree), or `None` without one.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, &'static str> {
    let all = headers.get_all(header::CONTENT_LENGTH);
    let mut values = all.iter();
    let Some(first) = values.next() else { return Ok(None) };
    // The usual case, one line of digits, without the general parse.
    if values.next().is_none()
        && let Some(n) = digits(first.as_bytes())
    {
        return Ok(Some(n));
    }
    let mut length = None;
    for value in all {
        for part in value.as_bytes().split(|b| *b == b',') {
            let n = std::str::from_utf8(part.trim_ascii())
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or("an invalid content-length")?;
            if length.is_some_and(|l| l != n) {
                return Err("two different content-lengths");
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// A non-empty run of at most 19 decimal digits (so that it fits a `u64`) as a number.
fn digits(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Where a parsed head's fields lie in its buffer (name start, name length, value start, value length), so that
/// the values can share the buffer's bytes.
pub type FieldRanges = Vec<(usize, usize, usize, usize)>;

/// The fields httparse found in `buf`, as ranges of it.
pub fn field_ranges(buf: &[u8], fields: &[httparse::Header<'_>]) -> FieldRanges {
    let base = buf.as_ptr() as usize;
    let at = |s: &[u8]| s.as_ptr() as usize - base;
    fields.iter().map(|h| (at(h.name.as_bytes()), h.name.len(), at(h.value), h.value.len())).collect()
}

/// The header map of fields found in `bytes` (a head, frozen), sharing its bytes. It has room for one more, the
/// prediction ID the proxy adds to requests and answers alike, so that adding it does not grow the map (which costs
/// more than building it: callgrind, docs/router-benchmark.md).
pub fn header_map(bytes: &Bytes, fields: FieldRanges) -> Result<HeaderMap, &'static str> {
    let mut headers = HeaderMap::with_capacity(fields.len() + 1);
    for (name_at, name_len, value_at, value_len) in fields {
        let name = HeaderName::from_bytes(&bytes[name_at..name_at + name_len]).map_err(|_| "an invalid header name")?;
        let value = HeaderValue::from_maybe_shared(bytes.slice(value_at..value_at + value_len))
            .map_err(|_| "an invalid header value")?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Where a chunked body's reading is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Before a chunk's size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last chunk, before the trailer section's end.
    Trailers,
}

/// Where a framed body's reading is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// This many bytes left.
    Length(u64),
    /// A chunked body.
    Chunked(Chunk),
    /// Everything until the connection closes.
    UntilClose,
    /// The body has ended.
    Ended,
}

/// What the buffer gives without reading more.
enum Step {
    /// Body data.
    Data(Bytes),
    /// The trailers, which end the body.
    Trailers(HeaderMap),
    /// The body has ended.
    End,
    /// More bytes are needed.
    NeedMore,
}

impl Decoder {
    /// The next frame `buf` holds, without reading: `Some(Some(_))` data or the trailers, `Some(None)` the body's
    /// end, `None` when more bytes are needed; on malformed framing, what was wrong. After data, when the rest of the
    /// body in `buf` is only its end, that is consumed too, so that [`Decoder::Ended`] says the body is over as its
    /// last data goes out (and a connection can go back at once).
    pub fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<Option<Frame<Bytes>>>, &'static str> {
        Ok(match self.step(buf)? {
            Step::Data(data) => {
                self.ends_in(buf);
                Some(Some(Frame::data(data)))
            }
            Step::Trailers(trailers) => Some(Some(Frame::trailers(trailers))),
            Step::End => Some(None),
            Step::NeedMore => None,
        })
    }

    /// Decodes what `buf` holds, without reading; on malformed framing, says what was wrong.
    fn step(&mut self, buf: &mut BytesMut) -> Result<Step, &'static str> {
        loop {
            match *self {
                Decoder::Ended | Decoder::Length(0) => {
                    *self = Decoder::Ended;
                    return Ok(Step::End);
                }
                Decoder::Length(n) | Decoder::Chunked(Chunk::Data(n)) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = n.min(buf.len() as u64);
                    let data = buf.split_to(take as usize).freeze();
                    *self = match *self {
                        Decoder::Length(_) => Decoder::Length(n - take),
                        _ if n == take => Decoder::Chunked(Chunk::DataEnd),
                        _ => Decoder::Chunked(Chunk::Data(n - take)),
                    };
                    return Ok(Step::Data(data));
                }
                Decoder::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    return Ok(Step::Data(buf.split().freeze()));
                }
                Decoder::Chunked(Chunk::Size) => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((len, size))) => {
                        let _ = buf.split_to(len);
                        *self = Decoder::Chunked(if size == 0 { Chunk::Trailers } else { Chunk::Data(size) });
                    }
                    Ok(httparse::Status::Partial) if buf.len() < 1024 => return Ok(Step::NeedMore),
                    _ => return Err("an invalid chunk size"),
                },
                Decoder::Chunked(Chunk::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("a chunk that does not end with CRLF");
                    }
                    let _ = buf.split_to(2);
                    *self = Decoder::Chunked(Chunk::Size);
                }
                Decoder::Chunked(Chunk::Trailers) => {
                    if buf.starts_with(b"\r\n") {
                        let _ = buf.split_to(2);
                        *self = Decoder::Ended;
                        return Ok(Step::End);
                    }
                    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(buf, &mut fields) {
                        Ok(httparse::Status::Complete((len, fields))) => {
                            let mut trailers = HeaderMap::with_capacity(fields.len());
                            for f in fields {
                                if let (Ok(n), Ok(v)) =
                                    (HeaderName::from_bytes(f.name.as_bytes()), HeaderValue::from_bytes(f.value))
                                {
                                    trailers.append(n, v);
                                }
                            }
                            let _ = buf.split_to(len);
                            *self = Decoder::Ended;
                            return Ok(Step::Trailers(trailers));
                        }
                        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(Step::NeedMore),
                        _ => return Err("invalid trailers"),
                    }
                }
            }
        }
    }

    /// Whether the rest of the body is in `buf` and is only its end (a length that has run out, or the last chunk
    /// with no trailers): then the body can say it has ended with its last data. Consumes the last chunk's bytes.
    pub fn ends_in(&mut self, buf: &mut BytesMut) -> bool {
        let at_end = match *self {
            Decoder::Length(0) => true,
            Decoder::Chunked(Chunk::DataEnd | Chunk::Size) => {
                let b = &buf[..];
                let b = if *self == Decoder::Chunked(Chunk::DataEnd) { b.strip_prefix(b"\r\n") } else { Some(b) };
                b.is_some_and(|b| b == b"0\r\n\r\n")
            }
            _ => false,
        };
        if at_end {
            // Only the last chunk's bytes can be here (a length's end leaves the buffer as it is: what follows is
            // the next message, or bytes nobody asked for).
            if let Decoder::Chunked(_) = *self {
                buf.clear();
            }
            *self = Decoder::Ended;
        }
        at_end
    }
}

/// Reads what the socket has into `buf` (at least [`READ_CHUNK`] of room); `Ready(Ok(0))` is the end of the stream.
/// Through the runtime's `AsyncRead`: it reads only once the socket is readable (right after a message the next is
/// rarely there yet, and the runtime knows that without a system call), and a read that leaves room in the buffer
/// clears the socket's readiness, so that an idle connection's check needs no system call (`try_read_buf` would
/// leave it set: one failed read more per request, seen with strace).
pub fn poll_read<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_CHUNK {
        buf.reserve(READ_CHUNK);
    }
    poll_read_buf(Pin::new(io), cx, buf)
}

/// Where a message is written: a socket that is written without waiting while it has room.
pub trait Sink {
    /// Writes what fits now.
    fn try_write(&self, data: &[u8]) -> io::Result<usize>;
    /// Waits until there is room; `false` when writing should stop instead (the peer has answered: see
    /// [`write_all`]).
    fn room(&self) -> impl Future<Output = io::Result<bool>>;
}

/// To a backend: while a write waits for room, an answer the backend sends (a 413 for a body it will not read) stops
/// the write, so that the answer is read rather than waited past.
impl Sink for TcpStream {
    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, data)
    }

    async fn room(&self) -> io::Result<bool> {
        // A peek, not readiness alone: it waits past a readiness the socket no longer has.
        let mut first = [0u8; 1];
        tokio::select! {
            writable = self.writable() => writable.map(|_| true),
            peeked = self.peek(&mut first) => peeked.map(|_| false),
        }
    }
}

/// To a client: the answer is written whole, whatever the client sends meanwhile (its next request waits).
impl Sink for OwnedWriteHalf {
    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        OwnedWriteHalf::try_write(self, data)
    }

    async fn room(&self) -> io::Result<bool> {
        self.writable().await.map(|_| true)
    }
}

/// Writes all of `data`, trying at once (a connection's send buffer is rarely full) and waiting only when it is.
/// Returns `false` when the sink said to stop while waiting.
pub async fn write_all(io: &impl Sink, mut data: &[u8]) -> io::Result<bool> {
    while !data.is_empty() {
        match io.try_write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if !io.room().await? {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A failed body write; `taken` says whether any of the body had been read from its source.
pub struct WriteError {
    /// What went wrong.
    pub error: io::Error,
    /// Anything was taken from the body.
    pub taken: bool,
}

/// How much of a message went out.
pub struct Sent {
    /// Anything was taken from the body.
    pub taken: bool,
    /// All of it was written; not when the sink said to stop (the connection cannot be reused then).
    pub whole: bool,
}

/// Writes `out` (the head) and the body, framed as `framing`. Body frames that are ready at once go out in the
/// same write as the head; so does a body of a known length under [`COPY_LIMIT`], which is waited for whole (a
/// client over HTTP/2 often sends a request's body a moment after its head: the backend then reads one write, not
/// two, as from nginx, which buffers a request body before it sends it on). Trailers are written only in a chunked
/// body. Stops early when the sink says so.
pub async fn write_body<B>(
    io: &impl Sink,
    out: &mut Vec<u8>,
    body: &mut B,
    framing: Framing,
) -> Result<Sent, WriteError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut taken = false;
    let mut sent: u64 = 0;
    let fail = |error: io::Error, taken: bool| WriteError { error, taken };
    let stopped = |taken: bool| Ok(Sent { taken, whole: false });
    let mut ended = framing == Framing::Empty || body.is_end_stream();
    let hold = matches!(framing, Framing::Length(n) if n < COPY_LIMIT as u64);
    while !ended {
        // The next frame; when none is ready and there is something to write, write it first (unless the body is
        // a short one, waited for whole).
        let next = poll_fn(|cx| match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Pending if !out.is_empty() && !hold => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
            Poll::Ready(frame) => Poll::Ready(Some(frame)),
        })
        .await;
        let Some(frame) = next else {
            if !write_all(io, out).await.map_err(|e| fail(e, taken))? {
                return stopped(taken);
            }
            out.clear();
            continue;
        };
        taken = true;
        match frame {
            None => ended = true,
            Some(Err(e)) => return Err(fail(io::Error::other(e.into()), true)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    sent += data.len() as u64;
                    if let Framing::Length(n) = framing
                        && sent > n
                    {
                        return Err(fail(invalid("the body is longer than its content-length"), true));
                    }
                    if framing == Framing::Chunked {
                        if data.is_empty() {
                            continue;
                        }
                        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                    }
                    if data.len() < COPY_LIMIT {
                        out.extend_from_slice(&data);
                    } else {
                        if !write_all(io, out).await.map_err(|e| fail(e, true))? {
                            return stopped(true);
                        }
                        out.clear();
                        if !write_all(io, &data).await.map_err(|e| fail(e, true))? {
                            return stopped(true);
                        }
                    }
                    if framing == Framing::Chunked {
                        out.extend_from_slice(b"\r\n");
                    }
                    ended = body.is_end_stream();
                }
                Err(frame) => {
                    if let (Ok(trailers), Framing::Chunked) = (frame.into_trailers(), framing) {
                        out.extend_from_slice(b"0\r\n");
                        write_fields(out, &trailers);
                        out.extend_from_slice(b"\r\n");
                        let whole = write_all(io, out).await.map_err(|e| fail(e, true))?;
                        return Ok(Sent { taken: true, whole });
                    }
                    ended = body.is_end_stream();
                }
            },
        }
    }
    if let Framing::Length(n) = framing
        && sent != n
    {
        return Err(fail(invalid("the body is shorter than its content-length"), taken));
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    let whole = write_all(io, out).await.map_err(|e| fail(e, taken))?;
    Ok(Sent { taken, whole })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use hyper::body::SizeHint;
    use tokio::sync::oneshot;

    use super::*;

    /// Keeps every write apart.
    #[derive(Default)]
    struct Writes(RefCell<Vec<Vec<u8>>>);

    impl Sink for Writes {
        fn try_write(&self, data: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().push(data.to_vec());
            Ok(data.len())
        }

        async fn room(&self) -> io::Result<bool> {
            Ok(true)
        }
    }

    /// A body of a known length whose one chunk comes only when told to.
    struct Later {
        go: Option<oneshot::Receiver<()>>,
        data: Option<Bytes>,
        len: u64,
    }

    impl Body for Later {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
            if let Some(go) = &mut self.go {
                std::task::ready!(Pin::new(go).poll(cx)).ok();
                self.go = None;
            }
            Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
        }

        fn is_end_stream(&self) -> bool {
            self.go.is_none() && self.data.is_none()
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.len)
        }
    }

    /// The writes `write_body` makes for a head and a body of `len` bytes that arrives after the first poll: those
    /// made before the body came, and all.
    async fn writes_for_a_late_body(len: usize) -> (usize, Vec<usize>) {
        let (go, wait) = oneshot::channel();
        let mut body = Later { go: Some(wait), data: Some(Bytes::from(vec![b'x'; len])), len: len as u64 };
        let sink = Writes::default();
        let mut out = b"POST / HTTP/1.1\r\ncontent-length: N\r\n\r\n".to_vec();
        let head = out.len();
        let write = write_body(&sink, &mut out, &mut body, Framing::Length(len as u64));
        tokio::pin!(write);
        let first = poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx).is_pending())).await;
        assert!(first, "the body was not there yet");
        let before = sink.0.borrow().len();
        go.send(()).unwrap();
        assert!(write.await.is_ok_and(|sent| sent.whole));
        let sizes: Vec<usize> = sink.0.borrow().iter().map(Vec::len).collect();
        assert_eq!(sizes.iter().sum::<usize>(), head + len);
        (before, sizes)
    }

    #[tokio::test]
    async fn a_short_body_that_comes_after_the_head_goes_out_in_the_same_write() {
        assert_eq!(writes_for_a_late_body(34).await, (0, vec![34 + 38]));
    }

    #[tokio::test]
    async fn a_long_body_does_not_hold_the_head_back() {
        assert_eq!(writes_for_a_late_body(COPY_LIMIT).await, (1, vec![38, COPY_LIMIT]));
    }
}
