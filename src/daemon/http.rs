//! The loopback HTTP endpoint (`metrics.listen`): `GET /healthz` and `GET /metrics`, served with
//! hyper directly (two routes do not need a framework).

use super::metrics::{Figures, CONTENT_TYPE};
use super::{Health, Shared};
use crate::clock::now;
use crate::config::parse_cron;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Accepts connections until the task is aborted.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "Metrics endpoint: accept failed.");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, shared.clone()));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "Metrics endpoint: connection ended.");
            }
        });
    }
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

const PLAIN: &str = "text/plain; charset=utf-8";

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => {
            let config = shared.config();
            let health = match parse_cron(&config.cron) {
                Ok(cron) => shared.live().health(&cron, now()),
                Err(e) => Health::Unhealthy(e),
            };
            match health {
                Health::Healthy(why) => text(StatusCode::OK, PLAIN, format!("{why}\n")),
                Health::Unhealthy(why) => text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, format!("{why}\n")),
            }
        }
        (&Method::GET, "/metrics") => {
            let read = tokio::task::spawn_blocking(move || Figures::read(&shared).map(Figures::encode)).await;
            match read {
                Ok(Ok(body)) => text(StatusCode::OK, CONTENT_TYPE, body),
                Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, PLAIN, format!("{e:#}\n")),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, PLAIN, format!("{e}\n")),
            }
        }
        (_, "/healthz" | "/metrics") => {
            text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "only GET is served here\n".into())
        }
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found: this endpoint serves /healthz and /metrics\n".into(),
        ),
    })
}
