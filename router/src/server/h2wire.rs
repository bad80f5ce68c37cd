//! What both ends of the router's HTTP/2 share (the backend client, [`super::h2pool`], and the proxy port's server,
//! [`super::h2server`]): a stream's received body as a [`Body`] ([`H2Body`]), a body copied into a stream under
//! flow control ([`Pipe`]), and the headers HTTP/2 forbids removed.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use h2::{Reason, RecvStream, SendStream};
use http::header::{self, HeaderMap};
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

use super::proxy::strip_hop_by_hop;

/// How much of a request body is handed to the connection without waiting for the backend's flow-control window:
/// less than HTTP/2's default initial window (65,535 bytes), so it normally leaves at once; for a backend that
/// announces a smaller window, the router holds at most this much until the window opens.
pub const EAGER_BYTES: usize = 60 * 1024;
/// Removes what HTTP/2 forbids (RFC 9113, section 8.2.2): the hop-by-hop headers ([`strip_hop_by_hop`]), and `te`
/// unless it is exactly `trailers` (h2 refuses a request with any other value, `Trailers` included).
pub fn strip_connection_headers(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    if headers.get(header::TE).is_some_and(|v| v != "trailers") {
        headers.remove(header::TE);
    }
}

/// Copies a body into its stream: the first [`EAGER_BYTES`] at once, the rest as the peer's window opens. Stops,
/// resetting the stream, when the body fails or the answer is no longer awaited (or the peer resets the stream).
pub struct Pipe<B> {
    body: B,
    tx: SendStream<Bytes>,
    /// A chunk waiting for window, and whether it ends the body.
    waiting: Option<(Bytes, bool)>,
    /// Bytes handed over without waiting for window so far.
    eager: usize,
    /// Closed when the caller stops waiting for the answer (set when the pipe goes on in a task of its own).
    cancelled: Option<oneshot::Receiver<()>>,
}

impl<B> Pipe<B> {
    /// Copies `body` into `tx`.
    pub fn new(body: B, tx: SendStream<Bytes>) -> Pipe<B> {
        Pipe { body, tx, waiting: None, eager: 0, cancelled: None }
    }

    /// Goes on in a task of its own, which stops (resetting the stream) when the returned sender is dropped.
    pub fn cancel_with_sender(&mut self) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        self.cancelled = Some(rx);
        tx
    }
}

impl<B> Future for Pipe<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let me = &mut *self;
        loop {
            if let Some(c) = &mut me.cancelled
                && Pin::new(c).poll(cx).is_ready()
            {
                me.tx.send_reset(Reason::CANCEL);
                return Poll::Ready(());
            }
            if me.tx.poll_reset(cx).is_ready() {
                return Poll::Ready(());
            }
            if let Some((mut chunk, eos)) = me.waiting.take() {
                if me.tx.capacity() == 0 {
                    me.tx.reserve_capacity(chunk.len());
                    match me.tx.poll_capacity(cx) {
                        Poll::Pending => {
                            me.waiting = Some((chunk, eos));
                            return Poll::Pending;
                        }
                        Poll::Ready(Some(Ok(_))) => {
                            me.waiting = Some((chunk, eos));
                            continue;
                        }
                        Poll::Ready(None | Some(Err(_))) => return Poll::Ready(()),
                    }
                }
                let part = chunk.split_to(me.tx.capacity().min(chunk.len()));
                let last = chunk.is_empty();
                if me.tx.send_data(part, eos && last).is_err() {
                    return Poll::Ready(());
                }
                if !last {
                    me.waiting = Some((chunk, eos));
                } else if eos {
                    return Poll::Ready(());
                }
                continue;
            }
            match ready!(Pin::new(&mut me.body).poll_frame(cx)) {
                None => {
                    let _ = me.tx.send_data(Bytes::new(), true);
                    return Poll::Ready(());
                }
                Some(Err(_)) => {
                    me.tx.send_reset(Reason::CANCEL);
                    return Poll::Ready(());
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let eos = me.body.is_end_stream();
                        if me.eager + data.len() <= EAGER_BYTES {
                            me.eager += data.len();
                            if me.tx.send_data(data, eos).is_err() || eos {
                                return Poll::Ready(());
                            }
                        } else {
                            me.eager = EAGER_BYTES;
                            me.waiting = Some((data, eos));
                        }
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            let _ = me.tx.send_trailers(trailers);
                            return Poll::Ready(());
                        }
                    }
                },
            }
        }
    }
}

/// A body received over HTTP/2 (a backend's answer, a client's request): data (its window given back as it is read), then trailers, if any.
pub struct H2Body {
    recv: RecvStream,
    data_done: bool,
    /// What is left of the announced `content-length`.
    remaining: Option<u64>,
    /// Dropped with the body: a request body still being sent then stops.
    _cancel: Option<oneshot::Sender<()>>,
}

impl H2Body {
    /// The body of a stream whose head was `headers` (its `content-length`, if any, is the body's size; h2 has
    /// checked it against the data); `cancel` is dropped with it.
    pub fn new(recv: RecvStream, headers: &HeaderMap, cancel: Option<oneshot::Sender<()>>) -> H2Body {
        let remaining = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        H2Body { recv, data_done: false, remaining, _cancel: cancel }
    }
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    self.remaining = self.remaining.map(|n| n.saturating_sub(data.len() as u64));
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.data_done = true,
            }
        }
        Poll::Ready(match ready!(self.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Some(Ok(Frame::trailers(trailers))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) if !self.data_done => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn only_te_trailers_spelled_exactly_and_no_hop_by_hop_header_reaches_http2() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        h.insert(header::TE, HeaderValue::from_static("Trailers"));
        h.insert("x-user-id", HeaderValue::from_static("u1"));
        strip_connection_headers(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-user-id"]);
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        strip_connection_headers(&mut h);
        assert_eq!(h[header::TE], "trailers");
    }
}
