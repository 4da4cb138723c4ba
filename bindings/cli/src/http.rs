//! The HTTP side of the host: one exchange per engine request, as the
//! engine's blocking driver (`core/src/blocking.rs`) makes it: rustls against
//! the platform's trust store or `TOKENWELL_CA_FILE` / `--ca-file` only, no
//! redirects, `HTTPS_PROXY` / `NO_PROXY` for https only (plain http never goes
//! through a proxy: it would hand the credentials over in clear text), and the
//! request's timeout bounding the whole exchange.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokenwell::{ConfigError, TokenRequest, TransportErrorKind};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// What the server answered, and when.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Answer {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The agent every request goes through.
pub fn agent(ca_file: Option<&Path>) -> Result<ureq::Agent, ConfigError> {
    let roots = match ca_file {
        Some(path) => RootCerts::Specific(Arc::new(read_ca_file(path)?)),
        None => RootCerts::PlatformVerifier,
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build();
    Ok(config.into())
}

fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, ConfigError> {
    let problem = |what: &str| ConfigError::new("ca_file", format!("{what}: {}", path.display()));
    let pem = std::fs::read(path).map_err(|e| problem(&format!("cannot read the CA file ({})", e.kind())))?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(problem("holds no PEM certificate"));
    }
    Ok(certs)
}

/// The proxy for a request to `url`: `HTTPS_PROXY` / `ALL_PROXY` unless
/// `NO_PROXY` names the host; never for plain http.
fn proxy_for(url: &str) -> Result<Option<ureq::Proxy>, String> {
    let env = |name: &str| std::env::var(name).ok();
    let Ok(parsed) = url::Url::parse(url) else { return Ok(None) };
    if parsed.scheme() != "https" {
        return Ok(None);
    }
    let read =
        |names: &[&str]| names.iter().find_map(|n| env(n).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()));
    let Some(proxy) = read(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]) else { return Ok(None) };
    let host = parsed.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let port = parsed.port_or_known_default().unwrap_or(443);
    if let Some(no_proxy) = read(&["NO_PROXY", "no_proxy"]) {
        if no_proxy_matches(&no_proxy, &host, port) {
            return Ok(None);
        }
    }
    // The value may hold proxy credentials: never echo it.
    ureq::Proxy::new(&proxy).map(Some).map_err(|_| "HTTPS_PROXY (or ALL_PROXY) is not a valid proxy URL".to_owned())
}

/// `NO_PROXY` as curl reads it (the blocking driver's rule).
fn no_proxy_matches(no_proxy: &str, host: &str, port: u16) -> bool {
    no_proxy.split(',').map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        let (name, entry_port) = match entry.rsplit_once(':') {
            Some((name, p)) if !name.contains(':') || name.ends_with(']') => (name.to_owned(), p.parse::<u16>().ok()),
            _ => (entry.clone(), None),
        };
        if entry_port.is_some_and(|p| p != port) {
            return false;
        }
        let name = name.trim_start_matches('*').trim_start_matches('.').trim_start_matches('[').trim_end_matches(']');
        host == name || host.ends_with(&format!(".{name}"))
    })
}

/// Sends `request`; the answer (whatever its status) or the transport failure.
pub fn exchange(
    agent: &ureq::Agent,
    request: &TokenRequest,
    limit: u64,
) -> Result<Answer, (TransportErrorKind, String)> {
    let proxy = proxy_for(&request.http.url).map_err(|message| (TransportErrorKind::Other, message))?;
    let timeout = Some(Duration::from_millis(request.timeout_ms));
    let started = Instant::now();
    let sent = if request.http.method == "GET" {
        let mut builder = agent.get(&request.http.url);
        for (name, value) in &request.http.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.config().timeout_global(timeout).proxy(proxy).build().call()
    } else {
        let mut builder = agent.post(&request.http.url);
        for (name, value) in &request.http.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.config().timeout_global(timeout).proxy(proxy).build().send(request.http.body.as_bytes())
    };
    sent.and_then(|mut response| {
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
            .collect();
        // One byte past the limit, so the engine sees the body is too large.
        let body = match response.body_mut().with_config().limit(limit + 1).read_to_vec() {
            Ok(body) => body,
            Err(ureq::Error::BodyExceedsLimit(_)) => vec![b' '; limit as usize + 1],
            Err(e) => return Err(e),
        };
        Ok(Answer { status, headers, body, elapsed: started.elapsed() })
    })
    .map_err(|error| (transport_error_kind(&error), error.to_string()))
}

fn transport_error_kind(error: &ureq::Error) -> TransportErrorKind {
    match error {
        ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportErrorKind::Connect,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => TransportErrorKind::Tls,
        ureq::Error::Io(io) if io.get_ref().is_some_and(|inner| inner.to_string().contains("certificate")) => {
            TransportErrorKind::Tls
        }
        ureq::Error::Io(_) => TransportErrorKind::Io,
        _ => TransportErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::no_proxy_matches;

    #[test]
    fn no_proxy_rules() {
        assert!(no_proxy_matches("*", "a.example", 443));
        assert!(no_proxy_matches(".example", "a.example", 443));
        assert!(no_proxy_matches("a.example:443", "a.example", 443));
        assert!(!no_proxy_matches("a.example:8443", "a.example", 443));
        assert!(!no_proxy_matches("other.example", "a.example", 443));
    }
}
