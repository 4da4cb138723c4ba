//! `tokenwell check`: resolve the configuration, fetch a fresh token and
//! explain it, or explain the failure. The report goes to stdout; the labels
//! are the spec's (tests/cli/SPEC.md), the same in every entry point.

use std::path::PathBuf;

use base64::Engine as _;
use tokenwell::{ErrorKind, LifetimeSource, Token, TokenCache, TokenError};

use crate::cache_file::CacheFile;
use crate::cli::Args;
use crate::{default_cache_path, exit_code, now_ms, report_error, resolve, what_to_do, Host, Resolved};

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(ms: u64) -> String {
    // The engine's formatter (the same civil-date arithmetic), to whole seconds.
    let text = tokenwell::format_epoch_ms(ms);
    let seconds = text.strip_suffix('Z').and_then(|t| t.rsplit_once('.')).map_or(text.as_str(), |(s, _)| s);
    format!("{seconds}Z")
}

fn line(label: &str, value: impl std::fmt::Display) {
    println!("  {:<20}{value}", format!("{label}:"));
}

fn source_of<'a>(resolved: &'a Resolved, option: &str) -> Option<&'a str> {
    resolved.sources.iter().rev().find(|(o, _)| o == option).map(|(_, v)| v.as_str())
}

fn with_source(value: String, source: Option<&str>) -> String {
    match source {
        Some(source) => format!("{value} (from {source})"),
        None => value,
    }
}

fn list(values: &[String]) -> String {
    if values.is_empty() {
        "(none)".to_owned()
    } else {
        values.join(" ")
    }
}

/// The claims of a JWT access token (read, not verified), or `None` if it is opaque.
pub fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = token.split('.');
    let (_, payload, _, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next());
    if rest.is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(claims) => Some(claims),
        _ => None,
    }
}

fn claim_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(claim_text).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// What the cache file holds for this configuration, without changing it.
fn cache_state(args: &Args, resolved: &Resolved) -> String {
    if args.no_cache {
        return "not used (--no-cache)".to_owned();
    }
    let Some(path) = args.cache_path.clone().map(PathBuf::from).or_else(|| default_cache_path(&resolved.config)) else {
        return "none (neither XDG_CACHE_HOME nor HOME is set)".to_owned();
    };
    let mut file = CacheFile::new(&path);
    let shown = file.path().display().to_string();
    let state = match file.read() {
        Some(text) => {
            let mut scratch = TokenCache::new(resolved.config.clone(), 0);
            match scratch.import_snapshot(&text, now_ms()) {
                Ok(()) => match scratch.current_token() {
                    Some(token) => format!("holds a token usable until {}", rfc3339(token.usable_until)),
                    None => "holds no token".to_owned(),
                },
                Err(refused) => format!("holds no usable token ({})", refused.reason()),
            }
        }
        None => match file.take_problems().first() {
            Some((_, _, detail)) => format!("ignored ({detail})"),
            None => "empty (no token cached yet)".to_owned(),
        },
    };
    format!("{shown}: {state}")
}

fn explain_token(token: &Token) {
    println!("token");
    let access = token.access_token.expose();
    let claims = jwt_claims(access);
    match &claims {
        Some(claims) => {
            line("access token", "JWT (claims read, signature not verified)");
            let shown: Vec<String> = ["iss", "sub", "client_id", "aud", "scope", "scp", "iat", "exp"]
                .iter()
                .filter_map(|name| claims.get(*name).map(|v| format!("{name}={}", claim_text(v))))
                .collect();
            line("claims", shown.join(", "));
        }
        None => line("access token", "opaque (not a JWT: only the server can read it)"),
    }
    line("granted scopes", list(&token.scope));
    let audience = claims.as_ref().and_then(|c| c.get("aud")).map(claim_text);
    match audience {
        Some(aud) if !aud.is_empty() => line("granted audience", format!("{aud} (the JWT's aud claim)")),
        Some(_) => line("granted audience", "(none: the JWT's aud claim is empty)"),
        None => line("granted audience", "not shown (opaque token; the server did not say)"),
    }
    let lifetime = token.expires_at.saturating_sub(token.received_at) / 1000;
    let source = match token.lifetime_source {
        LifetimeSource::ExpiresIn => "expires_in",
        LifetimeSource::JwtExp => "the JWT's exp claim",
        _ => "the default lifetime: the server sent no expires_in",
    };
    line("lifetime", format!("{lifetime} s (from {source}), expires at {}", rfc3339(token.expires_at)));
    let ahead_in = token.refresh_at.saturating_sub(token.received_at) / 1000;
    let margin = token.expires_at.saturating_sub(token.usable_until) / 1000;
    line(
        "refresh",
        format!(
            "ahead at {} ({ahead_in} s after issue); never used after {} ({margin} s before expiry)",
            rfc3339(token.refresh_at),
            rfc3339(token.usable_until)
        ),
    );
}

fn explain_failure(error: &TokenError) {
    println!("result: FAILED");
    let message = match (&error.description, error.kind) {
        (Some(description), ErrorKind::Config) => description.clone(),
        _ => error.to_string(),
    };
    line("error", message);
    line("fault", format!("{} ({}); exit {}", error.fault, error.kind, exit_code(error.kind)));
    line("what to do", what_to_do(error.kind));
}

/// Runs `check`; the exit code is `token`'s for the same outcome.
pub fn run(args: &Args) -> u8 {
    println!("tokenwell check");
    let resolved = match resolve(args) {
        Ok(resolved) => resolved,
        Err(error) => {
            let error = TokenError::from(error);
            explain_failure(&error);
            return report_error(&error);
        }
    };
    let config = &resolved.config;
    println!("configuration");
    line("client id", with_source(config.client_id().to_owned(), source_of(&resolved, "client_id")));
    if let Some(issuer) = config.issuer() {
        line("issuer", with_source(issuer.to_owned(), source_of(&resolved, "issuer")));
    }
    let credentials = if config.key_count() > 0 {
        format!("{} private key(s)", config.key_count())
    } else {
        format!("{} secret(s), not shown", config.secret_count())
    };
    line(
        "credentials",
        with_source(credentials, source_of(&resolved, "client_secret").or(source_of(&resolved, "private_key"))),
    );
    line("scope requested", list(config.scopes()));
    line("audience requested", list(config.audiences()));
    line("cache file", cache_state(args, &resolved));

    let mut host = match Host::new(&resolved, None) {
        Ok(host) => host,
        Err(error) => {
            let error = TokenError::from(error);
            explain_failure(&error);
            return report_error(&error);
        }
    };
    let outcome = host.obtain();
    // What the engine resolved: with discovery, the endpoint and method come from the metadata.
    let endpoint = host.cache.token_endpoint().map(str::to_owned);
    let endpoint = endpoint.unwrap_or_else(|| "(not known)".to_owned());
    if config.issuer().is_some() && source_of(&resolved, "token_url").is_none() {
        line("token endpoint", format!("{endpoint} (discovered from the issuer's metadata)"));
    } else {
        line("token endpoint", with_source(endpoint, source_of(&resolved, "token_url")));
    }
    line("auth method", host.cache.auth_method().as_str());
    println!("requests");
    for exchange in &host.exchanges {
        let what = match &exchange.outcome {
            Ok(answer) => format!("HTTP {} in {} ms", answer.status, answer.elapsed.as_millis()),
            Err(kind) => format!("no answer ({kind})"),
        };
        line("request", format!("{} {}: {what}", exchange.method, exchange.url));
    }
    let date = host.exchanges.iter().rev().find_map(|e| {
        let answer = e.outcome.as_ref().ok()?;
        Some((answer.header("date")?.to_owned(), e.at))
    });
    match date {
        Some((date, at)) => match httpdate::parse_http_date(&date) {
            Ok(server) => {
                let server_ms = server.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
                let skew = at as i64 - server_ms;
                let (secs, way) = if skew >= 0 { (skew, "ahead of") } else { (-skew, "behind") };
                let mut text = format!(
                    "this machine is {}.{} s {way} the server (Date: {date}; 1 s resolution)",
                    secs / 1000,
                    secs % 1000 / 100
                );
                if secs > 60_000 {
                    text.push_str(": too far apart, synchronize the clock (NTP): APIs may refuse the token as expired or not yet valid");
                }
                line("clock skew", text);
            }
            Err(_) => line("clock skew", format!("unknown (unreadable Date header: {date})")),
        },
        None => line("clock skew", "unknown (the server sent no Date header)"),
    }
    match outcome {
        Ok((token, _)) => {
            explain_token(&token);
            println!("result: ok");
            0
        }
        Err(error) => {
            explain_failure(&error);
            report_error(&error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn reads_jwt_claims_only_from_a_jwt() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"aud":["a"],"exp":5}"#);
        let claims = jwt_claims(&format!("h.{payload}.s")).unwrap();
        assert_eq!(claim_text(&claims["aud"]), "a");
        assert!(jwt_claims("ory_at_opaque").is_none());
        assert!(jwt_claims("a.b.c.d").is_none());
    }
}
