//! A minimal HTTP/1.1 client (one connection per request) for talking to local test servers.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A buffered HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to `base` (`http://host:port` or `host:port`) and reads the whole response.
pub async fn request(
    base: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<HttpResponse, String> {
    let authority = base.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let stream = TcpStream::connect(&authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with {authority}: {e}"))?;
    let conn = tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::HOST, &authority);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let req = builder
        .body(Full::new(body.into()))
        .map_err(|e| format!("building {method} {path}: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{method} {authority}{path}: {e}"))?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("{method} {authority}{path}: reading body: {e}"))?
        .to_bytes();
    drop(sender);
    conn.abort();
    Ok(HttpResponse {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
