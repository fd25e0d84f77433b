//! The HTTP endpoint (`metrics.listen`): `GET /healthz` and `GET /metrics`, served with hyper
//! directly (two routes do not need a framework); TLS, basic auth and extra headers as the web
//! config (`metrics.web_config_file`) in force when a connection is accepted says, on every path.

use super::metrics::{Figures, CONTENT_TYPE};
use super::{Health, Shared};
use crate::clock::now;
use crate::config::parse_cron;
use crate::web_config::{Check, WebConfig};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// bcrypt checks running at once: wrong passwords cannot take the runtime's blocking threads.
static BCRYPT_SLOTS: Semaphore = Semaphore::const_new(2);

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
            let web = shared.config().metrics_web.clone();
            match web.as_ref().and_then(|w| w.tls()).cloned() {
                None => serve_connection(TokioIo::new(stream), shared, web).await,
                Some(tls) => {
                    let accept = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
                        Ok(Ok(stream)) => serve_connection(TokioIo::new(stream), shared, web).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "Metrics endpoint: TLS handshake failed."),
                        Err(_) => tracing::debug!("Metrics endpoint: TLS handshake timed out."),
                    }
                }
            }
        });
    }
}

async fn serve_connection<I>(io: I, shared: Arc<Shared>, web: Option<Arc<WebConfig>>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| guarded(req, shared.clone(), web.clone()));
    if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
        tracing::debug!(error = %e, "Metrics endpoint: connection ended.");
    }
}

/// Basic auth first (every path, as exporter-toolkit does), then the route; the web config's
/// headers on every answer.
async fn guarded(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    web: Option<Arc<WebConfig>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(web) = web else { return handle(req, shared).await };
    let authorization =
        req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let allowed = match web.check(authorization.as_deref()) {
        Check::Allowed => true,
        Check::Denied => false,
        Check::Verify => {
            let _slot = BCRYPT_SLOTS.acquire().await;
            let web = web.clone();
            tokio::task::spawn_blocking(move || web.verify(authorization.as_deref())).await.unwrap_or(false)
        }
    };
    let mut resp = if allowed {
        handle(req, shared).await?
    } else {
        let mut resp = text(StatusCode::UNAUTHORIZED, PLAIN, "Unauthorized\n".into());
        resp.headers_mut()
            .insert(hyper::header::WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static("Basic"));
        resp
    };
    for (name, value) in web.headers() {
        if let Ok(value) = value.parse() {
            resp.headers_mut().insert(*name, value);
        }
    }
    Ok(resp)
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
