//! `tokenwell`: an OAuth 2.0 client-credentials token for shell scripts.
//!
//! A host of the tokenwell engine like the Node and Python packages: the
//! engine decides (what to send, what an answer means, when to refresh, which
//! error this is); this binary owns the clock, the HTTP client and the cache
//! file, which it shares with the Python and Node cron caches (same format,
//! path, permissions and lock). The spec is `tests/cli/SPEC.md`.

mod cache_file;
mod check;
mod cli;
mod http;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cache_file::{CacheFile, Lock};
use cli::{Args, Command, Format};
use tokenwell::{
    CacheFileProblem, Config, ConfigError, ConfigOptions, ErrorKind, EventKind, ExplicitOptions, Fault, ListOrString,
    PollResult, Token, TokenCache, TokenError, TokenRequest,
};

/// Exit codes, by who has to act (sysexits.h names).
pub mod exit {
    /// A token was printed (or the command ran).
    pub const OK: u8 = 0;
    /// EX_USAGE: the command line is wrong.
    pub const USAGE: u8 = 64;
    /// EX_SOFTWARE: a bug in tokenwell (the engine's `host` fault).
    pub const INTERNAL: u8 = 70;
    /// EX_TEMPFAIL: the authorization server or the network failed: retry later.
    pub const TRANSIENT: u8 = 75;
    /// EX_PROTOCOL: the answer was not a token response.
    pub const MALFORMED: u8 = 76;
    /// EX_NOPERM: the server refused the client's credentials.
    pub const CREDENTIALS: u8 = 77;
    /// EX_CONFIG: the configuration is wrong (missing variable, bad URL,
    /// scope or audience refused, no token endpoint at the URL).
    pub const CONFIGURATION: u8 = 78;
    /// `exec`: the command was found but could not be run.
    pub const CANNOT_EXECUTE: u8 = 126;
    /// `exec`: the command was not found.
    pub const NOT_FOUND: u8 = 127;
}

/// The exit code for a failure of `kind`.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind.fault() {
        Fault::Configuration => exit::CONFIGURATION,
        Fault::Credentials => exit::CREDENTIALS,
        Fault::AuthorizationServer | Fault::Transport => exit::TRANSIENT,
        Fault::MalformedResponse => exit::MALFORMED,
        Fault::Host => exit::INTERNAL,
        _ => exit::INTERNAL,
    }
}

/// What to do about a failure of `kind`: one line, the same in every entry point.
pub fn what_to_do(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Config => "fix the setting named above (environment variable or flag)",
        ErrorKind::InvalidClient => {
            "check CLIENT_ID and the secret (CLIENT_SECRET or CLIENT_SECRET_FILE) or the private key against the \
             authorization server: the client may be unknown, its secret wrong or rotated"
        }
        ErrorKind::InvalidScope => {
            "request only scopes this client is allowed (SCOPE or --scope), or allow them on the server"
        }
        ErrorKind::InvalidTarget => {
            "request only audiences this client is allowed (AUDIENCE or --audience), or allow them on the server"
        }
        ErrorKind::InvalidRequest => {
            "the server refused the request; on Ory Hydra this is usually an audience the client may not request: \
             check AUDIENCE"
        }
        ErrorKind::UnauthorizedClient => "allow the client_credentials grant for this client on the server",
        ErrorKind::UnsupportedGrantType => "this endpoint does not offer client_credentials: check TOKEN_URL",
        ErrorKind::InvalidGrant | ErrorKind::Rejected => {
            "read the server's description above and check this client's settings on the server"
        }
        ErrorKind::EndpointNotFound => {
            "nothing takes token requests at this URL: check TOKEN_URL (on Ory Hydra: the public URL + \
             /oauth2/token), or set HYDRA_URL or ISSUER_URL instead"
        }
        ErrorKind::TlsCertificate => {
            "trust the server's CA with TOKENWELL_CA_FILE or --ca-file, or fix the host name in the URL"
        }
        ErrorKind::DiscoveryFailed | ErrorKind::IssuerMismatch => {
            "check ISSUER_URL: it must be exactly the issuer the server's metadata names; or set TOKEN_URL"
        }
        ErrorKind::RateLimited | ErrorKind::ServerError | ErrorKind::TemporarilyUnavailable => {
            "the authorization server is failing or overloaded: retry later (exit 75 is safe to retry with backoff)"
        }
        ErrorKind::Transport | ErrorKind::Timeout => {
            "the server could not be reached: check the URL's host and port, the network and HTTPS_PROXY / \
             NO_PROXY; retry later (exit 75)"
        }
        ErrorKind::MalformedResponse => {
            "something other than an OAuth token endpoint answered (a proxy, a login page, a wrong URL): check \
             TOKEN_URL and any proxy"
        }
        _ => "this is a bug in tokenwell: please report it",
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Writes a failure to stderr (no secret is in any engine message) and
/// returns its exit code.
fn report_error(error: &TokenError) -> u8 {
    let code = exit_code(error.kind);
    match (&error.description, error.kind) {
        // A configuration error's description is the whole message ("invalid configuration: FIELD: problem").
        (Some(description), ErrorKind::Config) => eprintln!("tokenwell: error: {description}"),
        _ => eprintln!("tokenwell: error: {error}"),
    }
    eprintln!("tokenwell: fault: {} ({}); exit {code}", error.fault, error.kind);
    eprintln!("tokenwell: what to do: {}", what_to_do(error.kind));
    code
}

fn config_failure(error: ConfigError) -> TokenError {
    error.into()
}

/// The configuration, resolved as every host's `fromEnv` resolves it, plus
/// what the flags gave (flags win, as explicit options do).
pub struct Resolved {
    pub config: Config,
    pub ca_file: Option<PathBuf>,
    /// `(option, variable or flag)`: where each option came from.
    pub sources: Vec<(String, String)>,
}

/// The option names flags set, and how errors name them.
const FLAG_NAMES: [(&str, &str); 8] = [
    ("client_id", "--client-id"),
    ("token_url", "--token-url"),
    ("issuer", "--issuer-url"),
    ("scope", "--scope"),
    ("audience", "--audience"),
    ("auth_method", "--auth-method"),
    ("client_secret_file", "--client-secret-file"),
    ("ca_file", "--ca-file"),
];

/// A configuration error about an option a flag gave, named by the flag.
fn rename_to_flag(mut error: ConfigError, given: &[&str]) -> ConfigError {
    let (base, index) = match error.field.find('[') {
        Some(at) => (error.field[..at].to_owned(), error.field[at..].to_owned()),
        None => (error.field.clone(), String::new()),
    };
    if let Some((_, flag)) = FLAG_NAMES.iter().find(|(option, _)| *option == base && given.contains(option)) {
        error.field = format!("{flag}{index}");
    }
    error
}

pub fn resolve(args: &Args) -> Result<Resolved, ConfigError> {
    let given: Vec<&str> = [
        ("client_id", args.client_id.is_some()),
        ("token_url", args.token_url.is_some()),
        ("issuer", args.issuer_url.is_some()),
        ("scope", !args.scopes.is_empty()),
        ("audience", !args.audiences.is_empty()),
        ("auth_method", args.auth_method.is_some()),
        ("client_secret_file", args.client_secret_file.is_some()),
        ("ca_file", args.ca_file.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let rename = |e: ConfigError| rename_to_flag(e, &given);
    let explicit = ExplicitOptions {
        options: ConfigOptions {
            client_id: args.client_id.clone(),
            token_url: args.token_url.clone(),
            issuer: args.issuer_url.clone(),
            auth_method: args.auth_method.clone(),
            scope: (!args.scopes.is_empty()).then(|| ListOrString::String(args.scopes.join(" "))),
            audience: (!args.audiences.is_empty()).then(|| ListOrString::List(args.audiences.clone())),
            ..ConfigOptions::default()
        },
        secret_file: args.client_secret_file.clone(),
        ca_file: args.ca_file.clone(),
    };
    let reading = tokenwell::read_env(&args.prefix, &|name| std::env::var(name).ok())?;
    let merged = tokenwell::merge_env(explicit, reading);
    merged.check_required().map_err(rename)?;
    let read = |path: &Option<String>, source: &Option<String>, what: &str| -> Result<Option<String>, ConfigError> {
        match (path, source) {
            (Some(path), Some(source)) => std::fs::read_to_string(path).map(Some).map_err(|e| {
                rename(ConfigError::new(source.clone(), format!("cannot read the {what} file {path} ({})", e.kind())))
            }),
            _ => Ok(None),
        }
    };
    let secrets = read(&merged.secret_file, &merged.secret_file_source, "secret")?;
    let keys = read(&merged.key_file, &merged.key_file_source, "key")?;
    let ca_file = merged.ca_file.clone().map(PathBuf::from);
    let mut sources = merged.sources.clone();
    for option in &given {
        if let Some((_, flag)) = FLAG_NAMES.iter().find(|(o, _)| o == option) {
            let option = if *option == "client_secret_file" { "client_secret" } else { option };
            sources.push((option.to_owned(), (*flag).to_owned()));
        }
    }
    let config = merged.into_config_with_keys(secrets.as_deref(), keys.as_deref()).map_err(rename)?;
    Ok(Resolved { config, ca_file, sources })
}

/// The default cache file: `$XDG_CACHE_HOME/tokenwell/<fingerprint>.json`,
/// else `~/.cache/tokenwell/<fingerprint>.json`; `None` without either.
pub fn default_cache_path(config: &Config) -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let base = std::env::var_os("XDG_CACHE_HOME")
        .and_then(absolute)
        .or_else(|| std::env::var_os("HOME").and_then(absolute).map(|home| home.join(".cache")))?;
    Some(base.join("tokenwell").join(format!("{}.json", config.fingerprint())))
}

/// One answer seen by the host (for `check`).
pub struct Exchange {
    pub method: String,
    pub url: String,
    pub outcome: Result<http::Answer, String>,
    /// When the answer arrived.
    pub at: u64,
}

/// The engine, driven synchronously: one process, one request at a time.
pub struct Host {
    pub cache: TokenCache,
    agent: ureq::Agent,
    pub file: Option<CacheFile>,
    pub exchanges: Vec<Exchange>,
    /// Print cache-file problems to stderr as they happen.
    pub warn: bool,
}

impl Host {
    pub fn new(resolved: &Resolved, file: Option<CacheFile>) -> Result<Self, ConfigError> {
        let agent = http::agent(resolved.ca_file.as_deref())?;
        let mut entropy = [0u8; 8];
        let _ = getrandom::fill(&mut entropy);
        let cache = TokenCache::new(resolved.config.clone(), u64::from_le_bytes(entropy) ^ now_ms());
        Ok(Self { cache, agent, file, exchanges: Vec::new(), warn: true })
    }

    /// Hands cache-file problems to the engine and drains its events; the
    /// problems are also shown on stderr (an expired snapshot is normal, not shown).
    fn drain(&mut self) {
        if let Some(file) = self.file.as_mut() {
            for (path, problem, detail) in file.take_problems() {
                self.cache.report_cache_file_problem(&path, problem, &detail, now_ms());
            }
        }
        while let Some(event) = self.cache.poll_event() {
            if let EventKind::CacheFileProblem { path, problem, detail } = &event.kind {
                let expired = *problem == CacheFileProblem::Ignored && detail == "expired";
                if self.warn && !expired {
                    let name = serde_json::to_value(problem).ok().and_then(|v| v.as_str().map(str::to_owned));
                    let name = name.unwrap_or_default();
                    let detail = if detail.is_empty() { String::new() } else { format!(": {detail}") };
                    eprintln!("tokenwell: warning: cache file {path}: {name}{detail}");
                }
            }
        }
    }

    /// Loads the cache file's snapshot, if any, into the engine.
    fn import(&mut self) {
        let Some(file) = self.file.as_mut() else { return };
        if let Some(text) = file.read() {
            if let Err(refused) = self.cache.import_snapshot(&text, now_ms()) {
                file.problem(CacheFileProblem::Ignored, refused.reason().to_owned());
            }
        }
    }

    /// A usable token, and the refresh to send after it is used (refresh
    /// ahead). Holds the cache file's lock from here until `finish`, so that
    /// processes started together make one token request.
    pub fn obtain(&mut self) -> Result<(Token, Option<TokenRequest>), TokenError> {
        let timeout = Duration::from_millis(self.cache.config().policy().request_timeout_ms + 2_000);
        if let Some(file) = self.file.as_mut() {
            if file.lock(timeout) != Lock::Held {
                // Busy or unusable: reported; go on without the lock.
            }
        }
        self.import();
        let result = self.drive();
        self.drain();
        result
    }

    fn drive(&mut self) -> Result<(Token, Option<TokenRequest>), TokenError> {
        // Each round sends at most one request; the engine ends the sequence
        // (a token, a held error, or a backoff) well before this bound.
        for _ in 0..16 {
            if self.cache.auth_method().signs_assertion() || self.cache.config().key_count() > 0 {
                let mut bytes = [0u8; 32];
                if getrandom::fill(&mut bytes).is_ok() {
                    self.cache.add_entropy(&bytes);
                }
            }
            match self.cache.poll(now_ms()) {
                PollResult::Ready { token } => return Ok((token, None)),
                PollResult::ReadyAndSend { token, request } => return Ok((token, Some(request))),
                PollResult::Send { request } => {
                    // The outcome is read back through poll (secret fallback, fail fast).
                    let _ = self.perform(request);
                }
                PollResult::Wait { .. } => {
                    return Err(TokenError::new(ErrorKind::StaleFetch, "a token request is in flight in this process"))
                }
                PollResult::Fail { error } => return Err(error),
            }
            self.drain();
        }
        Err(TokenError::new(ErrorKind::StaleFetch, "the engine asked for too many requests in a row"))
    }

    /// Sends `request`, reports the outcome to the engine, and writes the
    /// new snapshot to the cache file.
    pub fn perform(&mut self, request: TokenRequest) -> Result<Token, TokenError> {
        let limit = self.cache.config().policy().max_response_bytes as u64;
        let outcome = http::exchange(&self.agent, &request, limit);
        let now = now_ms();
        let result = match &outcome {
            Ok(answer) => {
                self.cache.handle_response(request.fetch_id, answer.status, &answer.headers, &answer.body, now)
            }
            Err((kind, message)) => Err(self.cache.handle_transport_error(request.fetch_id, *kind, message, now)),
        };
        let outcome = outcome.map_err(|(kind, _)| format!("{kind:?}").to_lowercase());
        self.exchanges.push(Exchange {
            method: request.http.method.clone(),
            url: request.http.url.clone(),
            outcome,
            at: now,
        });
        if result.is_ok() {
            if let (Some(snapshot), Some(file)) = (self.cache.export_snapshot(now), self.file.as_mut()) {
                file.write(&snapshot);
            }
        }
        result
    }

    /// Sends the refresh ahead (if any), then releases the lock.
    pub fn finish(&mut self, refresh: Option<TokenRequest>) -> Option<Token> {
        let refreshed = refresh.and_then(|request| match self.perform(request) {
            Ok(token) => Some(token),
            Err(error) => {
                eprintln!(
                    "tokenwell: warning: the refresh ahead failed ({}); the cached token stays in use until it expires",
                    error.kind
                );
                None
            }
        });
        self.drain();
        if let Some(file) = self.file.as_mut() {
            file.unlock();
        }
        refreshed
    }
}

/// A value single-quoted for POSIX shells.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// What `token` prints for `token` in `format` (`var` names the env variable).
pub fn render(token: &Token, format: Format, var: &str) -> String {
    let access = token.access_token.expose();
    let scope = token.scope.join(" ");
    let expires_at = token.expires_at / 1000;
    match format {
        Format::Token => format!("{access}\n"),
        Format::Header => format!("Authorization: Bearer {access}\n"),
        Format::Json => {
            #[derive(serde::Serialize)]
            struct Wire<'a> {
                access_token: &'a str,
                token_type: &'a str,
                expires_at: u64,
                scope: &'a str,
            }
            let wire = Wire { access_token: access, token_type: &token.token_type, expires_at, scope: &scope };
            format!("{}\n", serde_json::to_string(&wire).unwrap_or_default())
        }
        Format::Env => format!(
            "export {var}={}\nexport {var}_EXPIRES_AT={expires_at}\nexport {var}_SCOPE={}\n",
            shell_quote(access),
            shell_quote(&scope)
        ),
    }
}

fn open_host(args: &Args) -> Result<Host, TokenError> {
    let resolved = resolve(args).map_err(config_failure)?;
    let file = if args.no_cache {
        None
    } else {
        match args.cache_path.clone().map(PathBuf::from).or_else(|| default_cache_path(&resolved.config)) {
            Some(path) => Some(CacheFile::new(&path)),
            None => {
                eprintln!(
                    "tokenwell: warning: no cache directory (neither XDG_CACHE_HOME nor HOME is set): not caching"
                );
                None
            }
        }
    };
    Host::new(&resolved, file).map_err(config_failure)
}

fn run_token(args: &Args) -> u8 {
    let mut host = match open_host(args) {
        Ok(host) => host,
        Err(error) => return report_error(&error),
    };
    match host.obtain() {
        Ok((token, refresh)) => {
            let mut stdout = std::io::stdout().lock();
            let written =
                stdout.write_all(render(&token, args.format, &args.var).as_bytes()).and_then(|()| stdout.flush());
            drop(stdout);
            // The token in hand is printed first; a refresh ahead runs after.
            host.finish(refresh);
            match written {
                Ok(()) => exit::OK,
                Err(error) => {
                    eprintln!("tokenwell: error: cannot write to stdout ({})", error.kind());
                    exit::INTERNAL
                }
            }
        }
        Err(error) => {
            host.finish(None);
            report_error(&error)
        }
    }
}

fn run_exec(args: &Args) -> u8 {
    let mut host = match open_host(args) {
        Ok(host) => host,
        Err(error) => return report_error(&error),
    };
    let token = match host.obtain() {
        // The command may run long: send a due refresh first and give it the fresher token.
        Ok((token, refresh)) => host.finish(refresh).unwrap_or(token),
        Err(error) => {
            host.finish(None);
            return report_error(&error);
        }
    };
    let Some((program, rest)) = args.command.split_first() else { return exit::USAGE };
    let mut command = std::process::Command::new(program);
    command.args(rest).env(&args.var, token.access_token.expose());
    use std::os::unix::process::CommandExt;
    // Replaces this process: the command's exit status and signals are the caller's.
    let error = command.exec();
    let code = match error.kind() {
        std::io::ErrorKind::NotFound => exit::NOT_FOUND,
        _ => exit::CANNOT_EXECUTE,
    };
    eprintln!("tokenwell: error: cannot run {program} ({})", error.kind());
    code
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match cli::parse(&argv) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("tokenwell: usage: {problem}");
            eprintln!("tokenwell: run 'tokenwell --help' for the commands, flags and exit codes");
            return ExitCode::from(exit::USAGE);
        }
    };
    let code = match args.command_kind {
        Command::Help => {
            print!("{}", cli::HELP);
            exit::OK
        }
        Command::Version => {
            println!("tokenwell {}", env!("CARGO_PKG_VERSION"));
            exit::OK
        }
        Command::Token => run_token(&args),
        Command::Exec => run_exec(&args),
        Command::Check => check::run(&args),
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_an_exit_code_by_fault() {
        for kind in ErrorKind::ALL {
            let code = exit_code(kind);
            let expected = match kind.fault() {
                Fault::Configuration => 78,
                Fault::Credentials => 77,
                Fault::AuthorizationServer | Fault::Transport => 75,
                Fault::MalformedResponse => 76,
                _ => 70,
            };
            assert_eq!(code, expected, "{kind}");
            assert!(!what_to_do(kind).is_empty());
        }
    }

    #[test]
    fn renders_every_format() {
        let token = Token {
            access_token: tokenwell::AccessToken::new("t0k'en".to_owned()),
            token_type: "Bearer".to_owned(),
            scope: vec!["a".to_owned(), "b".to_owned()],
            received_at: 1_000_000,
            expires_at: 1_700_000_000_999,
            usable_until: 1_699_999_970_999,
            refresh_at: 1_699_999_000_000,
            lifetime_source: tokenwell::LifetimeSource::ExpiresIn,
        };
        assert_eq!(render(&token, Format::Token, "X"), "t0k'en\n");
        assert_eq!(render(&token, Format::Header, "X"), "Authorization: Bearer t0k'en\n");
        assert_eq!(
            render(&token, Format::Json, "X"),
            "{\"access_token\":\"t0k'en\",\"token_type\":\"Bearer\",\"expires_at\":1700000000,\"scope\":\"a b\"}\n"
        );
        assert_eq!(
            render(&token, Format::Env, "API"),
            "export API='t0k'\\''en'\nexport API_EXPIRES_AT=1700000000\nexport API_SCOPE='a b'\n"
        );
    }

    #[test]
    fn shell_quoting_survives_a_quote() {
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
        assert_eq!(shell_quote("abc"), "'abc'");
    }
}
