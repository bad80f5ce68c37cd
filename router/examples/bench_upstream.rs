//! A trivial model server for the router benchmark (`router/bench/run.sh`): answers every request with a fixed JSON
//! prediction, over HTTP/1.1 and HTTP/2 prior knowledge, on one thread; `--delay-ms` makes it a slow shadow.
//!
//! usage: bench_upstream ADDR [DELAY_MS]

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

const ANSWER: &[u8] = br#"{"predictions":[0.93]}"#;

async fn answer(req: Request<Incoming>, delay: Duration) -> Result<Response<Full<Bytes>>, Infallible> {
    let _ = req.into_body().collect().await;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut r = Response::new(Full::new(Bytes::from_static(ANSWER)));
    r.headers_mut().insert("content-type", "application/json".parse().expect("a header value"));
    Ok(r)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18081".into());
    let delay = Duration::from_millis(args.next().and_then(|d| d.parse().ok()).unwrap_or(0));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("the port is free");
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = service_fn(move |req| answer(req, delay));
                let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
}
