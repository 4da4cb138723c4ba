//! An example service component: `main` (exported as `wasi:cli/run`) gets a
//! token from the imported `tokenwell:client/provider`, calls `API_URL` with
//! it, and prints the answer. On a 401 it tells the provider, which drops the
//! token, and tries once more with a fresh one.
//!
//! It knows nothing of OAuth: composed with `tokenwell-provider.wasm`, the
//! provider reads `TOKEN_URL`, `CLIENT_ID`, `CLIENT_SECRET`, `SCOPE` and
//! `AUDIENCE` from the same environment.

use std::process::ExitCode;

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "../wit"],
        world: "example:consumer/consumer",
        generate_all,
    });
}

use bindings::tokenwell::client::provider;
use bindings::wasi::http::outgoing_handler;
use bindings::wasi::http::types::{Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use bindings::wasi::io::streams::StreamError;

fn main() -> ExitCode {
    let Ok(api_url) = std::env::var("API_URL") else {
        eprintln!("API_URL is not set");
        return ExitCode::from(2);
    };
    for attempt in 1..=2 {
        let token = match provider::get_token() {
            Ok(token) => token,
            Err(error) => {
                eprintln!("no token: {} (kind {:?}, retryable {})", error.message, error.kind, error.retryable);
                return ExitCode::from(1);
            }
        };
        println!("token: {} scope [{}], expires at {} ms", token.token_type, token.scope.join(" "), token.expires_at);
        match get(&api_url, &token.access_token) {
            Ok((401, _)) if attempt == 1 => {
                println!("API answered 401: invalidating the token ({:?})", provider::invalidate(&token.access_token));
            }
            Ok((status, body)) => {
                println!("GET {api_url} -> {status}");
                println!("{body}");
                return if (200..300).contains(&status) { ExitCode::SUCCESS } else { ExitCode::from(1) };
            }
            Err(message) => {
                eprintln!("GET {api_url} failed: {message}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::from(1)
}

/// `GET url` with `Authorization: Bearer <token>` through wasi:http.
fn get(url: &str, access_token: &str) -> Result<(u16, String), String> {
    let (scheme, rest) = url.split_once("://").ok_or("API_URL has no scheme")?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let headers = Fields::from_list(&[
        ("Authorization".to_owned(), format!("Bearer {access_token}").into_bytes()),
        ("Accept".to_owned(), b"application/json".to_vec()),
    ])
    .map_err(|e| format!("{e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let scheme = match scheme {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        other => Scheme::Other(other.to_owned()),
    };
    request.set_method(&Method::Get).map_err(|()| "method refused")?;
    request.set_scheme(Some(&scheme)).map_err(|()| "scheme refused")?;
    request.set_authority(Some(authority)).map_err(|()| "authority refused")?;
    request.set_path_with_query(Some(path)).map_err(|()| "path refused")?;
    let body = request.body().map_err(|()| "no request body")?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(format!("{code:?}")),
        _ => return Err("no response".to_owned()),
    };
    let status = response.status();
    let body = response.consume().map_err(|()| "no response body")?;
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|()| "no response body stream")?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
            }
        }
    }
    let _trailers = IncomingBody::finish(body);
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
