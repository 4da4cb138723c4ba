//! The command line: commands, flags and the help text (`tests/cli/SPEC.md`).

/// The command to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Token,
    Check,
    Exec,
    Help,
    Version,
}

/// How `token` prints the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Token,
    Header,
    Json,
    Env,
}

/// The parsed command line.
#[derive(Debug, Clone)]
pub struct Args {
    pub command_kind: Command,
    pub format: Format,
    pub var: String,
    pub prefix: String,
    pub client_id: Option<String>,
    pub token_url: Option<String>,
    pub issuer_url: Option<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub auth_method: Option<String>,
    pub client_secret_file: Option<String>,
    pub ca_file: Option<String>,
    pub cache_path: Option<String>,
    pub no_cache: bool,
    /// `exec`: the command and its arguments (after `--`).
    pub command: Vec<String>,
}

pub const HELP: &str = "\
tokenwell: an OAuth 2.0 client-credentials access token for shell scripts

Usage:
  tokenwell token [--format token|header|json|env] [--var NAME] [options]
  tokenwell check [options]
  tokenwell exec [--var NAME] [options] -- COMMAND [ARGS...]
  tokenwell --help | --version

Commands:
  token   Print an access token on stdout (nothing else goes to stdout).
          --format token   the token (default)
          --format header  Authorization: Bearer <token>
          --format json    {\"access_token\",\"token_type\",\"expires_at\" (Unix seconds),\"scope\"}
          --format env     export ACCESS_TOKEN='...' lines for eval (--var renames them)
  check   Resolve the configuration, fetch a fresh token and explain it: auth method,
          token endpoint, granted scopes and audience, lifetime, clock skew against
          the server's Date header, when it will be refreshed; on failure, the fault
          and what to do. Neither reads nor writes the cache file's token.
  exec    Run COMMAND with the token in the environment variable ACCESS_TOKEN (or
          --var NAME). The token is not refreshed while COMMAND runs: it holds a token
          with at least the refresh margin left; run long jobs under a fresh exec, or
          call `tokenwell token` again inside them.

Configuration (as every tokenwell fromEnv / from_env; PREFIX from --prefix):
  PREFIXCLIENT_ID, PREFIXCLIENT_SECRET (comma-separated: current first) or
  PREFIXCLIENT_SECRET_FILE (one per line), PREFIXCLIENT_PRIVATE_KEY_FILE,
  PREFIXTOKEN_URL, or PREFIXHYDRA_URL (+ /oauth2/token), or PREFIXISSUER_URL
  (discovery), PREFIXSCOPE, PREFIXAUDIENCE (space-separated), PREFIXAUTH_METHOD,
  TOKENWELL_CA_FILE, TOKENWELL_ALLOW_INSECURE_HTTP, HTTPS_PROXY / NO_PROXY.

Options (each wins over its variable; there is no flag for a secret: argv is visible to
other users, use CLIENT_SECRET or --client-secret-file):
  --prefix P                 read PREFIXCLIENT_ID, ... (e.g. BILLING_)
  --client-id ID             --token-url URL             --issuer-url URL
  --scope S                  (repeatable; space-separated scopes)
  --audience A               (repeatable; one audience each)
  --auth-method M            client_secret_basic, client_secret_post, private_key_jwt, client_secret_jwt
  --client-secret-file PATH  --ca-file PATH
  --cache-path PATH          the token cache file (default below)
  --no-cache                 neither read nor write a cache file

Cache: a token is reused across invocations until the engine refreshes it ahead of
expiry, through $XDG_CACHE_HOME/tokenwell/<fingerprint>.json (else
~/.cache/tokenwell/<fingerprint>.json): mode 0600, replaced atomically, fetches
serialized by flock on <path>.lock, the same file as a Python or Node cron with the
same configuration and cache_path / cachePath. The fingerprint covers the token
endpoint, client id, scopes and audiences, never the secret.

Exit codes:
   0  ok
  64  usage: a wrong command line
  70  internal error (a bug in tokenwell)
  75  transient: the authorization server or the network failed (5xx, 429, timeout,
      connection refused): retry later
  76  malformed: the answer was not a token response (HTML, bad JSON): check the URL/proxy
  77  credentials: the server refused the client id or secret (invalid_client)
  78  configuration: a missing or bad setting, a refused scope or audience, no token
      endpoint at the URL (404), an untrusted certificate
  exec: COMMAND's own status; 126 cannot run it, 127 not found

Errors go to stderr as `tokenwell: error: ...`, `tokenwell: fault: ...`,
`tokenwell: what to do: ...`; no secret or token is ever printed there.
";

fn take_value(argv: &[String], i: &mut usize, flag: &str, inline: Option<String>) -> Result<String, String> {
    if let Some(value) = inline {
        return Ok(value);
    }
    *i += 1;
    argv.get(*i).cloned().ok_or_else(|| format!("{flag} needs a value"))
}

/// Whether `name` can be a shell variable name.
pub fn valid_var(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Parses the arguments after the program name; `Err` is a usage problem.
pub fn parse(argv: &[String]) -> Result<Args, String> {
    let mut args = Args {
        command_kind: Command::Help,
        format: Format::Token,
        var: "ACCESS_TOKEN".to_owned(),
        prefix: String::new(),
        client_id: None,
        token_url: None,
        issuer_url: None,
        scopes: Vec::new(),
        audiences: Vec::new(),
        auth_method: None,
        client_secret_file: None,
        ca_file: None,
        cache_path: None,
        no_cache: false,
        command: Vec::new(),
    };
    let mut command: Option<Command> = None;
    let mut help = false;
    let mut format_given = false;
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        if arg == "--" {
            args.command = argv[i + 1..].to_vec();
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => help = true,
            "-V" | "--version" => command = command.or(Some(Command::Version)),
            "--no-cache" => args.no_cache = true,
            "--format" => {
                args.format = match take_value(argv, &mut i, &flag, inline)?.as_str() {
                    "token" => Format::Token,
                    "header" => Format::Header,
                    "json" => Format::Json,
                    "env" => Format::Env,
                    other => return Err(format!("--format {other}: expected token, header, json or env")),
                };
                format_given = true;
            }
            "--var" => args.var = take_value(argv, &mut i, &flag, inline)?,
            "--prefix" => args.prefix = take_value(argv, &mut i, &flag, inline)?,
            "--client-id" => args.client_id = Some(take_value(argv, &mut i, &flag, inline)?),
            "--token-url" => args.token_url = Some(take_value(argv, &mut i, &flag, inline)?),
            "--issuer-url" => args.issuer_url = Some(take_value(argv, &mut i, &flag, inline)?),
            "--scope" => args.scopes.push(take_value(argv, &mut i, &flag, inline)?),
            "--audience" => args.audiences.push(take_value(argv, &mut i, &flag, inline)?),
            "--auth-method" => args.auth_method = Some(take_value(argv, &mut i, &flag, inline)?),
            "--client-secret-file" => args.client_secret_file = Some(take_value(argv, &mut i, &flag, inline)?),
            "--ca-file" => args.ca_file = Some(take_value(argv, &mut i, &flag, inline)?),
            "--cache-path" => args.cache_path = Some(take_value(argv, &mut i, &flag, inline)?),
            "--client-secret" => {
                return Err("there is no --client-secret flag (argv is visible to other users): set CLIENT_SECRET \
                            or use --client-secret-file"
                    .to_owned())
            }
            _ if flag.starts_with('-') && flag.len() > 1 => return Err(format!("unknown option {flag}")),
            word => {
                let found = match word {
                    "token" => Command::Token,
                    "check" => Command::Check,
                    "exec" => Command::Exec,
                    "help" => Command::Help,
                    other => return Err(format!("unknown command {other:?} (expected token, check or exec)")),
                };
                if command.is_some() {
                    return Err(format!("unexpected argument {word:?}"));
                }
                command = Some(found);
            }
        }
        i += 1;
    }
    if help {
        args.command_kind = Command::Help;
        return Ok(args);
    }
    args.command_kind = command.ok_or("no command given (expected token, check or exec)")?;
    if !valid_var(&args.var) {
        return Err(format!("--var {:?} is not a valid environment variable name", args.var));
    }
    match args.command_kind {
        Command::Exec if args.command.is_empty() => return Err("exec needs a command after --".to_owned()),
        Command::Exec | Command::Token => {}
        _ if !args.command.is_empty() => return Err("only exec takes a command after --".to_owned()),
        _ => {}
    }
    if format_given && args.command_kind != Command::Token {
        return Err("--format is for the token command".to_owned());
    }
    if args.command_kind == Command::Token && !args.command.is_empty() {
        return Err("only exec takes a command after --".to_owned());
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Args, String> {
        parse(&line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn commands_and_flags() {
        let args = parse_str("token --format=json --scope a --scope b --no-cache").unwrap();
        assert_eq!((args.command_kind, args.format, args.no_cache), (Command::Token, Format::Json, true));
        assert_eq!(args.scopes, ["a", "b"]);
        let args = parse_str("--prefix BILLING_ exec --var T -- env -0").unwrap();
        assert_eq!((args.command_kind, args.prefix.as_str(), args.var.as_str()), (Command::Exec, "BILLING_", "T"));
        assert_eq!(args.command, ["env", "-0"]);
        assert_eq!(parse_str("check --help").unwrap().command_kind, Command::Help);
    }

    #[test]
    fn usage_errors() {
        for line in [
            "",
            "tokens",
            "token --format xml",
            "token --bogus",
            "exec",
            "token --var 1X",
            "check --format json",
            "token --client-secret s",
            "token --scope",
            "token check",
        ] {
            assert!(parse_str(line).is_err(), "{line:?} parsed");
        }
    }
}
