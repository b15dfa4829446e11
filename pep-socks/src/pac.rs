//! The proxy auto-config file (`GET /proxy.pac`), served on the gateway's own
//! port: a connection whose first byte is not the SOCKS version (5) but an HTTP
//! method is answered as HTTP. Browsers then need one setting,
//! `http://<gateway>/proxy.pac`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpStream;

/// The PAC file: `direct` hosts (and plain host names) go direct, everything
/// else through the gateway at `proxy` (`host:port`). There is no `DIRECT`
/// fallback: when the gateway is down, access fails instead of bypassing it.
pub fn render(proxy: &str, direct: &[String]) -> String {
    let list = direct
        .iter()
        .map(|h| js_string(h))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "// RZTS SOCKS5 gateway. DNS is resolved by the gateway (SOCKS5 hostname requests),\n\
         // so destination-domain rules apply.\n\
         function FindProxyForURL(url, host) {{\n\
         \x20 var direct = [{list}];\n\
         \x20 if (isPlainHostName(host)) return \"DIRECT\";\n\
         \x20 for (var i = 0; i < direct.length; i++) {{\n\
         \x20   if (host === direct[i] || dnsDomainIs(host, \".\" + direct[i])) return \"DIRECT\";\n\
         \x20 }}\n\
         \x20 return \"SOCKS5 {proxy}\";\n\
         }}\n",
        proxy = proxy.replace(['"', '\\', '\n', '\r'], "")
    )
}

/// A JavaScript string literal (JSON strings are valid JavaScript).
fn js_string(s: &str) -> String {
    // Serialising a `str` cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// Answers HTTP on `stream` (already known not to be SOCKS): `/proxy.pac` and
/// nothing else.
pub async fn serve(stream: TcpStream, pac: Bytes) {
    let io = hyper_util::rt::TokioIo::new(stream);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let pac = pac.clone();
        async move { Ok::<_, Infallible>(answer(&req, pac)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(io, service);
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "PAC request failed");
    }
}

fn answer(req: &Request<Incoming>, pac: Bytes) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/proxy.pac" | "/wpad.dat") => {
            (StatusCode::OK, "application/x-ns-proxy-autoconfig", pac)
        }
        (&Method::GET | &Method::HEAD, _) => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"this is the RZTS SOCKS5 gateway; the PAC file is /proxy.pac\n"),
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"GET /proxy.pac\n"),
        ),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pac_sends_everything_but_direct_hosts_through_socks5() {
        let pac = render(
            "gw.example.jp:1080",
            &["localhost".into(), "intra\"net".into()],
        );
        assert!(pac.contains("return \"SOCKS5 gw.example.jp:1080\";"));
        assert!(pac.contains("[\"localhost\", \"intra\\\"net\"]"));
        assert!(!pac.contains("SOCKS5 gw.example.jp:1080; DIRECT"));
    }
}
