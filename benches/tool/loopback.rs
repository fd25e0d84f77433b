//! A stand-in for measurement only, NOT a SCIM server: answers scimsync's requests on loopback as fast as it can, stores nothing.
//!
//! `scimsync-bench loopback --port PORT` answers every `POST` with `201` and a fresh `id`, every
//! `PATCH` and `DELETE` with `204`, filtered `GET`s with an empty list and
//! `GET …/ServiceProviderConfig` with a minimal document; so that a `sync` against it measures
//! scimsync's own cost per operation (its CPU time), not a server's. `GET /__stats` answers the
//! number of requests seen by method, which the benchmarks use to check that a no-change run
//! sends nothing. It binds 127.0.0.1 only and stops after `--max-seconds` (default 3600).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Stats {
    post: AtomicU64,
    patch: AtomicU64,
    delete: AtomicU64,
    get: AtomicU64,
    next_id: AtomicU64,
}

pub fn main(mut args: impl Iterator<Item = String>) -> std::io::Result<()> {
    let (mut port, mut max_seconds) = (0u16, 3600u64);
    while let Some(a) = args.next() {
        let value = args.next().unwrap_or_default();
        match a.as_str() {
            "--port" => port = value.parse().expect("--port PORT"),
            "--max-seconds" => max_seconds = value.parse().expect("--max-seconds N"),
            other => panic!(
                "unknown argument {other}; usage: scimsync-bench loopback --port PORT [--max-seconds N]"
            ),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on {}", listener.local_addr()?);
        let stats = Arc::new(Stats::default());
        let serve = async {
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, stats.clone()));
            }
        };
        tokio::select! {
            r = serve => r,
            _ = tokio::time::sleep(Duration::from_secs(max_seconds)) => Ok(()),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

async fn connection(stream: TcpStream, stats: Arc<Stats>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let mut length = 0usize;
        loop {
            line.clear();
            if read.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(length, 0);
        read.read_exact(&mut body).await?;
        let (status, doc) = answer(&method, &path, &stats);
        let head = match status {
            201 => "201 Created",
            200 => "200 OK",
            204 => "204 No Content",
            _ => "404 Not Found",
        };
        let response = format!(
            "HTTP/1.1 {head}\r\ncontent-type: application/scim+json\r\ncontent-length: {}\r\n\r\n{doc}",
            doc.len()
        );
        write.write_all(response.as_bytes()).await?;
    }
}

fn answer(method: &str, path: &str, stats: &Stats) -> (u16, String) {
    match method {
        "POST" => {
            stats.post.fetch_add(1, Ordering::Relaxed);
            let id = stats.next_id.fetch_add(1, Ordering::Relaxed);
            (201, format!("{{\"id\":\"loop-{id}\"}}"))
        }
        "PATCH" => {
            stats.patch.fetch_add(1, Ordering::Relaxed);
            (204, String::new())
        }
        "DELETE" => {
            stats.delete.fetch_add(1, Ordering::Relaxed);
            (204, String::new())
        }
        "GET" if path.starts_with("/__stats") => {
            let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
            let doc = format!(
                "{{\"post\":{},\"patch\":{},\"delete\":{},\"get\":{}}}",
                n(&stats.post),
                n(&stats.patch),
                n(&stats.delete),
                n(&stats.get)
            );
            (200, doc)
        }
        "GET" => {
            stats.get.fetch_add(1, Ordering::Relaxed);
            if path.contains("ServiceProviderConfig") {
                let doc = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],"patch":{"supported":true},"filter":{"supported":true,"maxResults":1000},"bulk":{"supported":false},"etag":{"supported":false}}"#;
                (200, doc.to_owned())
            } else {
                let doc = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}"#;
                (200, doc.to_owned())
            }
        }
        _ => (404, String::new()),
    }
}
