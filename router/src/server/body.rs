//! A body that passes its frames through untouched while keeping a copy of the first bytes, for the shadows, the
//! comparison, the feedback label and the log. The copy is handed over when the body ends (or is dropped), and the
//! hand-over never waits: whoever needs the copy gets it through a channel, off the request path.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http_body_util::BodyExt;

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};

/// The copy of a body.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// The first bytes of the body, up to the capture limit.
    pub bytes: Bytes,
    /// The body ended normally (it was not cut off by an error or by the peer).
    pub complete: bool,
    /// The body was longer than the limit; `bytes` holds only its beginning.
    pub truncated: bool,
}

type Done = Box<dyn FnOnce(Captured) + Send>;

struct Capture {
    limit: usize,
    chunks: Vec<Bytes>,
    len: usize,
    truncated: bool,
    done: Option<Done>,
}

impl Capture {
    fn push(&mut self, data: &Bytes) {
        let room = self.limit - self.len;
        if data.len() > room {
            self.truncated = true;
        }
        let take = data.len().min(room);
        if take > 0 {
            self.chunks.push(data.slice(..take));
            self.len += take;
        }
    }

    fn finish(&mut self, complete: bool) {
        let Some(done) = self.done.take() else { return };
        let bytes = match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.pop().unwrap_or_default(),
            _ => {
                let mut all = BytesMut::with_capacity(self.len);
                for c in self.chunks.drain(..) {
                    all.extend_from_slice(&c);
                }
                all.freeze()
            }
        };
        done(Captured { bytes, complete, truncated: self.truncated });
    }
}

/// A pass-through body, optionally capturing a copy.
pub struct Tee<B: Body<Data = Bytes> + Unpin + Send + 'static> {
    // Always set; an option only so that `drop` can hand it to the task that reads the rest.
    inner: Option<B>,
    capture: Option<Capture>,
    drain: Option<Duration>,
}

impl<B: Body<Data = Bytes> + Unpin + Send + 'static> Tee<B> {
    /// Passes `inner` through without copying.
    pub fn plain(inner: B) -> Tee<B> {
        Tee { inner: Some(inner), capture: None, drain: None }
    }

    /// Passes `inner` through and calls `done` with a copy of its first `limit` bytes when it ends or is dropped.
    pub fn capture(inner: B, limit: usize, done: impl FnOnce(Captured) + Send + 'static) -> Tee<B> {
        let capture = Capture { limit, chunks: Vec::new(), len: 0, truncated: false, done: Some(Box::new(done)) };
        let mut tee = Tee { inner: Some(inner), capture: Some(capture), drain: None };
        // A body that is already over (an empty GET) is never polled.
        if tee.inner.as_ref().is_some_and(B::is_end_stream)
            && let Some(c) = &mut tee.capture
        {
            c.finish(true);
        }
        tee
    }

    /// When dropped before its end (a backend that answered without reading the whole request), keeps reading the
    /// rest for the copy in a task, for at most `time`, so the shadows still get the whole request.
    pub fn drain_on_drop(mut self, time: Duration) -> Tee<B> {
        self.drain = Some(time);
        self
    }
}

impl<B: Body<Data = Bytes> + Unpin + Send + 'static> Body for Tee<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
        let frame = ready!(Pin::new(&mut *inner).poll_frame(cx));
        if let Some(c) = &mut this.capture {
            match &frame {
                Some(Ok(f)) => {
                    if let Some(data) = f.data_ref() {
                        c.push(data);
                    }
                    // Hand the copy over before the last frame goes out, so whoever reads the whole answer can
                    // already find what it produced (the feedback window entry).
                    if inner.is_end_stream() {
                        c.finish(true);
                    }
                }
                Some(Err(_)) => c.finish(false),
                None => c.finish(true),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(B::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map(B::size_hint).unwrap_or_default()
    }
}

impl<B: Body<Data = Bytes> + Unpin + Send + 'static> Drop for Tee<B> {
    fn drop(&mut self) {
        let Some(mut capture) = self.capture.take() else { return };
        if capture.done.is_none() {
            return;
        }
        // Dropped before its end: the peer went away, or the backend did not read it all (or failed first).
        let handle = tokio::runtime::Handle::try_current();
        if let (Some(time), Some(mut inner), Ok(handle)) = (self.drain, self.inner.take(), handle) {
            handle.spawn(async move {
                let rest = async {
                    while let Some(frame) = inner.frame().await {
                        let Ok(frame) = frame else { return false };
                        if let Some(data) = frame.data_ref() {
                            capture.push(data);
                        }
                        if capture.truncated {
                            return true;
                        }
                    }
                    true
                };
                let complete = tokio::time::timeout(time, rest).await.unwrap_or(false);
                capture.finish(complete);
            });
        } else {
            capture.finish(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use http_body_util::{BodyExt, Full};

    use super::*;

    /// A body of several chunks that knows when it is over.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
        fn is_end_stream(&self) -> bool {
            self.0.is_empty()
        }
    }

    fn chunks(parts: &[&'static str]) -> Chunks {
        Chunks(parts.iter().map(|p| Bytes::from_static(p.as_bytes())).collect())
    }

    fn sink() -> (Arc<Mutex<Option<Captured>>>, impl FnOnce(Captured) + Send + 'static) {
        let got = Arc::new(Mutex::new(None));
        let g = got.clone();
        (got, move |c| *g.lock().unwrap() = Some(c))
    }

    #[tokio::test]
    async fn copies_the_first_bytes_and_passes_everything() {
        let (got, done) = sink();
        let all = Tee::capture(chunks(&["hel", "lo ", "world"]), 5, done).collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"hello world");
        let c = got.lock().unwrap().take().unwrap();
        assert_eq!((&c.bytes[..], c.complete, c.truncated), (&b"hello"[..], true, true));

        let (got, done) = sink();
        let all = Tee::capture(chunks(&["{\"a\":", "1}"]), 100, done).collect().await.unwrap().to_bytes();
        let c = got.lock().unwrap().take().unwrap();
        assert_eq!((&c.bytes[..], c.complete, c.truncated), (&all[..], true, false));
    }

    #[tokio::test]
    async fn the_copy_is_handed_over_before_the_last_frame_goes_out() {
        let (got, done) = sink();
        let mut body = Tee::capture(chunks(&["a", "b"]), 10, done);
        body.frame().await.unwrap().unwrap();
        assert!(got.lock().unwrap().is_none());
        body.frame().await.unwrap().unwrap();
        assert_eq!(&got.lock().unwrap().as_ref().unwrap().bytes[..], b"ab");
    }

    #[tokio::test]
    async fn empty_and_dropped_bodies() {
        let (got, done) = sink();
        let _body = Tee::capture(Full::new(Bytes::new()), 10, done);
        assert!(got.lock().unwrap().as_ref().unwrap().complete, "an empty body is complete at once");

        let (got, done) = sink();
        let mut body = Tee::capture(chunks(&["a", "b"]), 10, done);
        body.frame().await.unwrap().unwrap();
        drop(body);
        let c = got.lock().unwrap().take().unwrap();
        assert_eq!((&c.bytes[..], c.complete), (&b"a"[..], false));
    }
}
