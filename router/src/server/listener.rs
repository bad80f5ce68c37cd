//! The proxy port's connections: one that opens with HTTP/2's connection preface (prior knowledge, as gRPC clients
//! without TLS do) goes to the router's HTTP/2 server ([`super::h2server`]); any other to its HTTP/1.1 server
//! ([`super::h1server`]). Stopping lets every open connection finish the requests it is serving.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::Request;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::h1server::{self, RequestBody};
use super::h1wire::poll_read;
use super::h2server;
use super::h2wire::H2Body;
use super::{State, proxy};

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Accepts connections until told to stop, then waits for the open ones to finish their requests.
pub async fn accept(listener: TcpListener, mut stop: watch::Receiver<bool>, state: Arc<State>) {
    // Each connection holds a sender; the channel closes when the last one has ended.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let (state, stop, open) = (state.clone(), stop.clone(), open.clone());
                tokio::spawn(async move {
                    serve(stream, state, stop).await;
                    drop(open);
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    drop(open);
    let _ = all_closed.recv().await;
}

/// Tells the protocol from the first bytes and serves the connection with it.
async fn serve(mut stream: TcpStream, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let timeouts = h1server::Timeouts::default();
    let mut first = BytesMut::new();
    loop {
        let seen = first.len().min(PREFACE.len());
        if first[..seen] != PREFACE[..seen] {
            break;
        }
        if seen == PREFACE.len() {
            let io = Rewound { first: first.freeze(), io: stream };
            let service = |req: Request<H2Body>| proxy::serve(state.clone(), req);
            h2server::serve(io, service, stop, timeouts).await;
            return;
        }
        let read = poll_fn(|cx| poll_read(&mut stream, &mut first, cx));
        let read = tokio::select! {
            read = tokio::time::timeout(timeouts.idle, read) => read,
            _ = stop.changed() => return,
        };
        match read {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
    let service = |req: Request<RequestBody>| proxy::serve(state.clone(), req);
    h1server::serve(stream, first, service, stop, timeouts).await;
}

/// A connection whose first bytes were read to tell its protocol, giving them again first.
struct Rewound {
    first: Bytes,
    io: TcpStream,
}

impl AsyncRead for Rewound {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.first.is_empty() {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        let n = self.first.len().min(buf.remaining());
        buf.put_slice(&self.first[..n]);
        self.first.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
