//! World `provider-component`: `get-token` over `wasi:http`.
//!
//! This is a host of the engine like any other: it polls, sends the request
//! the engine asks for through `wasi:http/outgoing-handler`, reports the
//! response (or the transport failure) against its fetch id, and polls again.
//! The wall clock gives `now`; `wasi:random` gives the jitter entropy, and
//! fresh bytes before every poll for the client assertions' `jti`. With issuer
//! discovery the engine's first request is a `GET` for the metadata document,
//! sent and reported like a token request.
//!
//! A refresh ahead of expiry is sent without waiting: `get-token` returns the
//! still-valid token at once, the host carries the request on, and a later
//! call collects the response (or waits for it, if the token is no longer
//! usable by then).

use std::cell::RefCell;

use tokenwell as tw;

use crate::bindings::exports::tokenwell::client::provider::Guest;
use crate::bindings::exports::tokenwell::client::types as wit;
use crate::bindings::wasi::cli::environment;
use crate::bindings::wasi::clocks::{monotonic_clock, wall_clock};
use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    http_error_code, ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use crate::bindings::wasi::io::poll::{poll, Pollable};
use crate::bindings::wasi::io::streams::StreamError;
use crate::bindings::wasi::random::random;
use crate::convert;

/// The component: its only export is the `provider` interface.
struct Component;

/// A token request handed to `wasi:http` and not yet reported to the engine.
struct InFlight {
    fetch_id: tw::FetchId,
    response: FutureIncomingResponse,
    /// Monotonic-clock deadline (ns) after which the request counts as timed out.
    deadline: u64,
    /// The engine's `max-response-bytes`: reading stops just past it.
    max_response_bytes: usize,
}

/// Bytes of `wasi:random` added to the engine's entropy before each poll (the
/// engine asks for at least 16).
const ENTROPY_BYTES: u64 = 16;

/// What went wrong on the wire, for `handle_transport_error`.
type TransportFailure = (tw::TransportErrorKind, String);

/// A response as the engine takes it, for `handle_response`.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The configured provider: the engine and the request it is waiting on.
struct Provider {
    cache: tw::TokenCache,
    in_flight: Option<InFlight>,
}

thread_local! {
    /// One provider per component instance; a component instance runs one call at a time.
    static PROVIDER: RefCell<Option<Provider>> = const { RefCell::new(None) };
}

/// Wall-clock milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    let now = wall_clock::now();
    now.seconds.saturating_mul(1000).saturating_add(u64::from(now.nanoseconds / 1_000_000))
}

/// The configuration from `wasi:cli/environment`, through the host contract
/// every binding follows (`read_env`, `merge_env` with no explicit options,
/// `into_config`): the same variables, the same errors, renamed to the
/// variable at fault (`SCOPE[1]`). A secret or key file is refused: the
/// provider has no filesystem access.
fn config_from_environment(prefix: &str) -> Result<tw::Config, tw::ConfigError> {
    let vars = environment::get_environment();
    let get = |name: &str| vars.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    let merged = tw::merge_env(tw::ExplicitOptions::default(), tw::read_env(prefix, &get)?);
    merged.check_required()?;
    let no_files = "is not supported by the provider component, which has no filesystem access";
    if merged.secret_file.is_some() {
        let source = merged.secret_file_source.unwrap_or_else(|| format!("{prefix}CLIENT_SECRET_FILE"));
        return Err(tw::ConfigError::new(source, format!("{no_files}: set {prefix}CLIENT_SECRET, or call configure")));
    }
    if merged.key_file.is_some() {
        let source = merged.key_file_source.unwrap_or_else(|| format!("{prefix}CLIENT_PRIVATE_KEY_FILE"));
        return Err(tw::ConfigError::new(source, format!("{no_files}: set {prefix}CLIENT_SECRET")));
    }
    merged.into_config(None)
}

/// Runs `f` on the provider, configuring it from the environment first if
/// nothing configured it yet.
fn with_provider<T>(f: impl FnOnce(&mut Provider) -> T) -> Result<T, tw::ConfigError> {
    PROVIDER.with_borrow_mut(|slot| {
        let provider = match slot {
            Some(provider) => provider,
            None => slot.insert(Provider::new(config_from_environment("")?)),
        };
        Ok(f(provider))
    })
}

impl Guest for Component {
    fn configure(config: wit::Config) -> Result<(), wit::ConfigError> {
        let config = tw::Config::from_options(convert::config_options(config)).map_err(convert::config_error)?;
        PROVIDER.with_borrow_mut(|slot| *slot = Some(Provider::new(config)));
        Ok(())
    }

    fn configure_from_environment(prefix: String) -> Result<(), wit::ConfigError> {
        let config = config_from_environment(&prefix).map_err(convert::config_error)?;
        PROVIDER.with_borrow_mut(|slot| *slot = Some(Provider::new(config)));
        Ok(())
    }

    fn get_token() -> Result<wit::Token, wit::TokenError> {
        with_provider(Provider::get_token)
            .unwrap_or_else(|config_error| Err(convert::token_error(&tw::TokenError::from(config_error))))
    }

    fn invalidate(access_token: String) -> wit::InvalidateOutcome {
        PROVIDER.with_borrow_mut(|slot| match slot {
            Some(provider) => convert::invalidate_outcome(provider.cache.invalidate(&access_token, now_ms())),
            None => wit::InvalidateOutcome::NotCurrent,
        })
    }

    fn replace_secrets(secrets: Vec<String>) -> Result<bool, wit::ConfigError> {
        with_provider(|provider| provider.cache.replace_secrets(convert::secrets(secrets), now_ms()))
            .and_then(|replaced| replaced)
            .map_err(convert::config_error)
    }

    fn replace_keys_from_file(contents: String, source: String) -> Result<bool, wit::ConfigError> {
        with_provider(|provider| provider.cache.replace_keys_from_file(&contents, &source, now_ms()))
            .and_then(|replaced| replaced)
            .map_err(convert::config_error)
    }

    fn drain_events() -> Vec<wit::Event> {
        PROVIDER.with_borrow_mut(|slot| {
            let Some(provider) = slot else { return Vec::new() };
            std::iter::from_fn(|| provider.cache.poll_event()).filter_map(convert::event).collect()
        })
    }
}

impl Provider {
    fn new(config: tw::Config) -> Self {
        Self { cache: tw::TokenCache::new(config, random::get_random_u64()), in_flight: None }
    }

    /// The driving loop of every host: poll, act, report, poll again. It ends
    /// when the engine serves a token or fails; each pass reports one request.
    fn get_token(&mut self) -> Result<wit::Token, wit::TokenError> {
        self.collect(false);
        loop {
            // The engine's rule: fresh host randomness before a poll that may
            // send a request (a signed assertion's `jti`).
            self.cache.add_entropy(&random::get_random_bytes(ENTROPY_BYTES));
            match self.cache.poll(now_ms()) {
                tw::PollResult::Ready { token } => return Ok(convert::token(&token)),
                tw::PollResult::ReadyAndSend { token, request } => {
                    self.send(&request);
                    return Ok(convert::token(&token));
                }
                tw::PollResult::Send { request } => {
                    self.send(&request);
                    self.collect(true);
                }
                tw::PollResult::Wait { fetch_id } => {
                    if self.in_flight.as_ref().is_some_and(|flight| flight.fetch_id == fetch_id) {
                        self.collect(true);
                    } else {
                        // Cannot happen: every request the engine hands out is
                        // either in flight here or already reported. Report it
                        // rather than wait for nothing.
                        let message = "the provider holds no request with this id";
                        let _ = self.cache.handle_transport_error(
                            fetch_id,
                            tw::TransportErrorKind::Other,
                            message,
                            now_ms(),
                        );
                    }
                }
                tw::PollResult::Fail { error } => return Err(convert::token_error(&error)),
            }
        }
    }

    /// Hands `request` to `wasi:http`. A request the host refuses at once is
    /// reported at once.
    fn send(&mut self, request: &tw::TokenRequest) {
        // A request still held here was abandoned by the engine; dropping it cancels it.
        self.in_flight = None;
        let deadline = monotonic_clock::now().saturating_add(request.timeout_ms.saturating_mul(1_000_000));
        match start_request(request) {
            Ok(response) => {
                let max_response_bytes = self.cache.config().policy().max_response_bytes;
                self.in_flight = Some(InFlight { fetch_id: request.fetch_id, response, deadline, max_response_bytes });
            }
            Err((kind, message)) => {
                let _ = self.cache.handle_transport_error(request.fetch_id, kind, &message, now_ms());
            }
        }
    }

    /// Reports the request in flight to the engine once it has ended: at once
    /// if `block`, waiting until its deadline; otherwise only if it has
    /// already ended.
    fn collect(&mut self, block: bool) {
        let Some(flight) = self.in_flight.take() else { return };
        if monotonic_clock::now() >= flight.deadline {
            // A response that came in while no call was running arrived at an
            // unknown time: reported now, it could overstate the token's life.
            // Past the deadline the request has timed out, as for every host.
            let fetch_id = flight.fetch_id;
            drop(flight);
            let message = "the response was not collected before the request timeout";
            let _ = self.cache.handle_transport_error(fetch_id, tw::TransportErrorKind::Timeout, message, now_ms());
            return;
        }
        let ended = if block {
            wait_until(&flight.response.subscribe(), flight.deadline)
        } else {
            flight.response.subscribe().ready()
        };
        if !ended && !block {
            self.in_flight = Some(flight);
            return;
        }
        let outcome = if ended {
            receive(&flight)
        } else {
            Err((tw::TransportErrorKind::Timeout, "no response before the request timeout".to_owned()))
        };
        // Drop the request (cancelling it, if it is still running) before reporting.
        let fetch_id = flight.fetch_id;
        drop(flight);
        match outcome {
            Ok(response) => {
                let _ =
                    self.cache.handle_response(fetch_id, response.status, &response.headers, &response.body, now_ms());
            }
            Err((kind, message)) => {
                let _ = self.cache.handle_transport_error(fetch_id, kind, &message, now_ms());
            }
        }
    }
}

/// Whether `pollable` became ready before the monotonic `deadline` (ns).
fn wait_until(pollable: &Pollable, deadline: u64) -> bool {
    let timer = monotonic_clock::subscribe_instant(deadline);
    poll(&[pollable, &timer]).contains(&0)
}

/// Sends the engine's request exactly as given (method, URL, headers in
/// order, body), adding only the `Content-Length` framing an HTTP client adds
/// to a `POST`. A `GET` (a metadata document) goes with no body and no
/// framing header.
fn start_request(request: &tw::TokenRequest) -> Result<FutureIncomingResponse, TransportFailure> {
    let http = &request.http;
    let other = |message: String| (tw::TransportErrorKind::Other, message);
    let url = url::Url::parse(&http.url).map_err(|e| other(format!("the request URL cannot be sent: {e}")))?;
    let method = match http.method.as_str() {
        "POST" => Method::Post,
        "GET" => Method::Get,
        name => Method::Other(name.to_owned()),
    };
    let has_body = !matches!(method, Method::Get);

    let mut entries: Vec<(String, Vec<u8>)> =
        http.headers.iter().map(|(name, value)| (name.clone(), value.as_bytes().to_vec())).collect();
    if has_body && http.header("content-length").is_none() {
        entries.push(("Content-Length".to_owned(), http.body.len().to_string().into_bytes()));
    }
    let headers =
        Fields::from_list(&entries).map_err(|e| other(format!("the host refused the request headers: {e:?}")))?;

    let outgoing = OutgoingRequest::new(headers);
    let scheme = match url.scheme() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        name => Scheme::Other(name.to_owned()),
    };
    let authority = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => String::new(),
    };
    let path_with_query = &url[url::Position::BeforePath..url::Position::AfterQuery];
    outgoing
        .set_method(&method)
        .and_then(|()| outgoing.set_scheme(Some(&scheme)))
        .and_then(|()| outgoing.set_authority(Some(&authority)))
        .and_then(|()| outgoing.set_path_with_query(Some(path_with_query)))
        .map_err(|()| other("the host refused the request's method or URL".to_owned()))?;
    let body = outgoing.body().map_err(|()| other("the request body is unavailable".to_owned()))?;

    // The host's own timeouts, where it supports them; the deadline in
    // `collect` bounds the whole exchange either way.
    let options = RequestOptions::new();
    let timeout_ns = Some(request.timeout_ms.saturating_mul(1_000_000));
    let _ = options.set_connect_timeout(timeout_ns);
    let _ = options.set_first_byte_timeout(timeout_ns);
    let _ = options.set_between_bytes_timeout(timeout_ns);

    let response = outgoing_handler::handle(outgoing, Some(options)).map_err(|code| transport_failure(&code))?;
    write_body(body, if has_body { http.body.as_bytes() } else { &[] })?;
    Ok(response)
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), TransportFailure> {
    let io = |message: String| (tw::TransportErrorKind::Io, message);
    {
        let stream = body.write().map_err(|()| io("the request body stream is unavailable".to_owned()))?;
        // `blocking-write-and-flush` takes at most 4096 bytes at a time.
        for chunk in bytes.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(stream_failure)?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|code| transport_failure(&code))
}

/// The response's status, headers and body.
fn receive(flight: &InFlight) -> Result<Response, TransportFailure> {
    let response: IncomingResponse = match flight.response.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(transport_failure(&code)),
        Some(Err(())) | None => {
            return Err((tw::TransportErrorKind::Other, "the response was already taken".to_owned()));
        }
    };
    let status = response.status();
    let headers = {
        let fields = response.headers();
        let entries = fields.entries();
        entries.into_iter().map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned())).collect()
    };
    let body = response.consume().map_err(|()| (tw::TransportErrorKind::Other, "no response body".to_owned()))?;
    let bytes = read_body(&body, flight.max_response_bytes, flight.deadline);
    let _trailers = IncomingBody::finish(body);
    Ok(Response { status, headers, body: bytes? })
}

/// Reads until the body ends, or until it is longer than `limit`: the engine
/// then refuses it by its size.
fn read_body(body: &IncomingBody, limit: usize, deadline: u64) -> Result<Vec<u8>, TransportFailure> {
    let stream = body.stream().map_err(|()| (tw::TransportErrorKind::Other, "no response body stream".to_owned()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.read(64 * 1024) {
            Ok(chunk) if chunk.is_empty() => {
                if !wait_until(&stream.subscribe(), deadline) {
                    return Err((
                        tw::TransportErrorKind::Timeout,
                        "the response body did not end before the request timeout".to_owned(),
                    ));
                }
            }
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > limit {
                    return Ok(bytes);
                }
            }
            Err(StreamError::Closed) => return Ok(bytes),
            // The host's between-bytes timer and this deadline race; past the
            // deadline the failure is the timeout whichever fired first.
            Err(_) if monotonic_clock::now() >= deadline => {
                return Err((
                    tw::TransportErrorKind::Timeout,
                    "the response body did not end before the request timeout".to_owned(),
                ));
            }
            Err(error) => return Err(stream_failure(error)),
        }
    }
}

/// A failed body read or write: the `wasi:http` error code behind it when the
/// host gives one (a between-bytes timeout is a timeout), else an I/O failure.
fn stream_failure(error: StreamError) -> TransportFailure {
    match error {
        StreamError::Closed => (tw::TransportErrorKind::Io, "the stream was closed".to_owned()),
        StreamError::LastOperationFailed(error) => match http_error_code(&error) {
            Some(code) => transport_failure(&code),
            None => (tw::TransportErrorKind::Io, error.to_debug_string()),
        },
    }
}

/// A `wasi:http` error code as the engine's transport failure kind.
fn transport_failure(code: &ErrorCode) -> TransportFailure {
    use tw::TransportErrorKind as K;
    let kind = match code {
        ErrorCode::DnsTimeout
        | ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => K::Timeout,
        ErrorCode::DnsError(_)
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable
        | ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionLimitReached => K::Connect,
        // wasmtime reports an untrusted certificate as a TLS protocol error;
        // either way the runtime's trust store or the URL needs fixing.
        ErrorCode::TlsProtocolError | ErrorCode::TlsCertificateError | ErrorCode::TlsAlertReceived(_) => K::Tls,
        ErrorCode::ConnectionTerminated
        | ErrorCode::HttpResponseIncomplete
        | ErrorCode::HttpProtocolError
        | ErrorCode::HttpResponseHeaderSectionSize(_)
        | ErrorCode::HttpResponseHeaderSize(_)
        | ErrorCode::HttpResponseBodySize(_)
        | ErrorCode::HttpResponseTrailerSectionSize(_)
        | ErrorCode::HttpResponseTrailerSize(_)
        | ErrorCode::HttpResponseTransferCoding(_)
        | ErrorCode::HttpResponseContentCoding(_) => K::Io,
        _ => K::Other,
    };
    (kind, format!("wasi:http {code:?}"))
}

crate::bindings::export!(Component with_types_in crate::bindings);
