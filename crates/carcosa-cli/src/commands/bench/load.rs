//! The load generator: `concurrency` workers, each looping over one operation for a warm-up
//! and then a fixed measured window, recording every latency.
//!
//! HTTP workers each own one keep-alive HTTP/1.1 connection (hyper, no pool), so the client's
//! own cost per request is as small as it gets; the bare-axum baseline is driven by the same
//! client, which makes the ratio to it fair.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use super::stats::Summary;

/// How a scenario is driven.
#[derive(Debug, Clone, Copy)]
pub(super) struct Load {
    /// Workers, each with one operation in flight.
    pub concurrency: usize,
    /// Not measured.
    pub warmup: Duration,
    /// Measured.
    pub measure: Duration,
}

/// One worker's operation, repeated until the window closes.
pub(super) trait Op: Send + 'static {
    /// Runs the `i`-th operation of this worker.
    fn call(&mut self, i: u64) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Runs every op as its own worker: all start together, run for the warm-up and the measured
/// window, and only operations that complete inside the window count.
pub(super) async fn drive<O: Op>(ops: Vec<O>, load: Load) -> anyhow::Result<(Summary, Option<String>)> {
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + load.warmup;
    let end = measure_from + load.measure;
    let mut workers = tokio::task::JoinSet::new();
    for mut op in ops {
        workers.spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            let (mut nanos, mut errors, mut first_error) = (Vec::new(), 0_u64, None);
            let mut i = 0;
            while Instant::now() < end {
                let sent = Instant::now();
                let result = op.call(i).await;
                let done = Instant::now();
                i += 1;
                if done < measure_from || done > end {
                    continue;
                }
                match result {
                    Ok(()) => nanos.push(u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX)),
                    Err(err) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{err:#}"));
                    }
                }
            }
            (nanos, errors, first_error)
        });
    }
    let (mut all, mut errors, mut first_error) = (Vec::new(), 0, None);
    while let Some(worker) = workers.join_next().await {
        let (nanos, e, first) = worker?;
        all.extend(nanos);
        errors += e;
        first_error = first_error.or(first);
    }
    Ok((Summary::of(all, errors, load.measure), first_error))
}

/// Builds the `i`-th request of worker `worker`.
pub(super) type MakeRequest = Arc<dyn Fn(u64, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// An HTTP worker: one connection, requests from `make`, any non-2xx status is an error.
pub(super) struct HttpOp {
    worker: u64,
    sender: SendRequest<Full<Bytes>>,
    make: MakeRequest,
}

impl HttpOp {
    /// `concurrency` workers, each connected to `addr`.
    pub async fn connect_all(
        addr: SocketAddr,
        concurrency: usize,
        make: &MakeRequest,
    ) -> anyhow::Result<Vec<Self>> {
        let mut ops = Vec::with_capacity(concurrency);
        for worker in 0..concurrency {
            let stream = tokio::net::TcpStream::connect(addr).await.context("connecting to the server")?;
            stream.set_nodelay(true)?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            ops.push(Self { worker: worker as u64, sender, make: make.clone() });
        }
        Ok(ops)
    }
}

impl Op for HttpOp {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let request = (self.make)(self.worker, i);
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(
            status.is_success(),
            "{status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
        Ok(())
    }
}

/// A GET request with an optional bearer token.
pub(super) fn get(path: &str, token: Option<&str>) -> Request<Full<Bytes>> {
    request("GET", path, token, Bytes::new())
}

/// A request with a JSON body (or none, when `body` is empty).
pub(super) fn request(method: &str, path: &str, token: Option<&str>, body: Bytes) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path).header("host", "localhost");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    builder.body(Full::new(body)).expect("a valid request")
}

/// A well-mixed 64-bit hash (splitmix64): spreads `(worker, i)` over the seeded rows.
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
