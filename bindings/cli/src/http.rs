//! The HTTP side of the host: one exchange per engine request, as the
//! engine's blocking driver (`core/src/blocking.rs`) makes it: rustls against
//! the platform's trust store or `TOKENWELL_CA_FILE` / `--ca-file` only, no
//! redirects, `HTTPS_PROXY` / `NO_PROXY` for https only (plain http never goes
//! through a proxy: it would hand the credentials over in clear text), and the
//! request's timeout bounding the whole exchange.

use std::path::Path;
use std::time::{Duration, Instant};

use tokenwell::{ConfigError, TokenRequest, TransportErrorKind};

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

/// The agent every request goes through: the blocking driver's.
pub fn agent(ca_file: Option<&Path>) -> Result<ureq::Agent, ConfigError> {
    tokenwell::blocking::build_agent(ca_file)
}

/// Sends `request` as the blocking driver does; the answer (whatever its
/// status) with the time it took, or the transport failure.
pub fn exchange(
    agent: &ureq::Agent,
    request: &TokenRequest,
    limit: u64,
) -> Result<Answer, (TransportErrorKind, String)> {
    let started = Instant::now();
    let (status, headers, body) = tokenwell::blocking::exchange(agent, request, limit)?;
    Ok(Answer { status, headers, body, elapsed: started.elapsed() })
}
