"""The ``tokenwell`` command (``python -m tokenwell`` and the ``tokenwell``
console script): an access token for shell scripts, over :class:`ServiceAccount`
with its ``cache_path``. It follows the one spec of outputs and exit codes
(``tests/cli/SPEC.md``) that the Rust binary (``bindings/cli``) follows: the
same stdout shapes, stderr lines, ``check`` labels and exit codes, tested
against every entry point by ``tests/cli/test_cli.py``.
"""

from __future__ import annotations

import base64
import email.utils
import json
import os
import re
import sys
import time
from typing import Any, Dict, List, NoReturn, Optional, Sequence, Tuple

from . import _account
from ._account import ServiceAccount
from ._cache_file import CacheFile
from ._errors import InvalidConfigError, SnapshotError, TokenError
from ._transport import TransportRequest, classify_failure
from ._urllib import urllib_transport

__all__ = ["main", "run", "HELP", "EXIT_CODES"]

HELP = """tokenwell: an OAuth 2.0 client-credentials access token for shell scripts

Usage:
  tokenwell token [--format token|header|json|env] [--var NAME] [options]
  tokenwell check [options]
  tokenwell exec [--var NAME] [options] -- COMMAND [ARGS...]
  tokenwell --help | --version

Commands:
  token   Print an access token on stdout (nothing else goes to stdout).
          --format token   the token (default)
          --format header  Authorization: Bearer <token>
          --format json    {"access_token","token_type","expires_at" (Unix seconds),"scope"}
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
"""

# Exit codes by who has to act (sysexits.h), the same as the Rust binary's.
OK, USAGE, INTERNAL, TRANSIENT, MALFORMED, CREDENTIALS, CONFIGURATION = 0, 64, 70, 75, 76, 77, 78
CANNOT_EXECUTE, NOT_FOUND = 126, 127
EXIT_CODES = {
    "configuration": CONFIGURATION,
    "credentials": CREDENTIALS,
    "authorization_server": TRANSIENT,
    "transport": TRANSIENT,
    "malformed_response": MALFORMED,
}

_WHAT_TO_DO = {
    "config": "fix the setting named above (environment variable or flag)",
    "invalid_client": "check CLIENT_ID and the secret (CLIENT_SECRET or CLIENT_SECRET_FILE) or the private key against the "
    "authorization server: the client may be unknown, its secret wrong or rotated",
    "invalid_scope": "request only scopes this client is allowed (SCOPE or --scope), or allow them on the server",
    "invalid_target": "request only audiences this client is allowed (AUDIENCE or --audience), or allow them on the server",
    "invalid_request": "the server refused the request; on Ory Hydra this is usually an audience the client may not "
    "request: check AUDIENCE",
    "unauthorized_client": "allow the client_credentials grant for this client on the server",
    "unsupported_grant_type": "this endpoint does not offer client_credentials: check TOKEN_URL",
    "invalid_grant": "read the server's description above and check this client's settings on the server",
    "rejected": "read the server's description above and check this client's settings on the server",
    "endpoint_not_found": "nothing takes token requests at this URL: check TOKEN_URL (on Ory Hydra: the public URL + "
    "/oauth2/token), or set HYDRA_URL or ISSUER_URL instead",
    "tls_certificate": "trust the server's CA with TOKENWELL_CA_FILE or --ca-file, or fix the host name in the URL",
    "discovery_failed": "check ISSUER_URL: it must be exactly the issuer the server's metadata names; or set TOKEN_URL",
    "issuer_mismatch": "check ISSUER_URL: it must be exactly the issuer the server's metadata names; or set TOKEN_URL",
    "rate_limited": "the authorization server is failing or overloaded: retry later (exit 75 is safe to retry with backoff)",
    "server_error": "the authorization server is failing or overloaded: retry later (exit 75 is safe to retry with backoff)",
    "temporarily_unavailable": "the authorization server is failing or overloaded: retry later (exit 75 is safe to retry "
    "with backoff)",
    "transport": "the server could not be reached: check the URL's host and port, the network and HTTPS_PROXY / "
    "NO_PROXY; retry later (exit 75)",
    "timeout": "the server could not be reached: check the URL's host and port, the network and HTTPS_PROXY / "
    "NO_PROXY; retry later (exit 75)",
    "malformed_response": "something other than an OAuth token endpoint answered (a proxy, a login page, a wrong URL): "
    "check TOKEN_URL and any proxy",
}
_BUG = "this is a bug in tokenwell: please report it"

# Option -> flag, for errors about an option a flag gave.
_FLAG_NAMES = {
    "client_id": "--client-id",
    "token_url": "--token-url",
    "issuer": "--issuer-url",
    "scope": "--scope",
    "audience": "--audience",
    "auth_method": "--auth-method",
    "client_secret_file": "--client-secret-file",
    "ca_file": "--ca-file",
}
_VALUE_FLAGS = {
    "--format", "--var", "--prefix", "--cache-path", *_FLAG_NAMES.values(),
}
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class _Usage(Exception):
    pass


class _Args:
    def __init__(self) -> None:
        self.command: Optional[str] = None
        self.help = False
        self.format = "token"
        self.format_given = False
        self.var = "ACCESS_TOKEN"
        self.prefix = ""
        self.options: Dict[str, Any] = {}  # option name -> value, from flags
        self.scopes: List[str] = []
        self.audiences: List[str] = []
        self.cache_path: Optional[str] = None
        self.no_cache = False
        self.argv: List[str] = []  # exec: the command


def _parse(argv: Sequence[str]) -> _Args:
    args = _Args()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args.argv = list(argv[i + 1 :])
            break
        flag, inline = arg, None
        if arg.startswith("--") and "=" in arg:
            flag, inline = arg.split("=", 1)
        if flag in _VALUE_FLAGS:
            if inline is None:
                i += 1
                if i >= len(argv):
                    raise _Usage(f"{flag} needs a value")
                inline = argv[i]
            value = inline
            if flag == "--format":
                if value not in ("token", "header", "json", "env"):
                    raise _Usage(f"--format {value}: expected token, header, json or env")
                args.format, args.format_given = value, True
            elif flag == "--var":
                args.var = value
            elif flag == "--prefix":
                args.prefix = value
            elif flag == "--cache-path":
                args.cache_path = value
            elif flag == "--scope":
                args.scopes.append(value)
            elif flag == "--audience":
                args.audiences.append(value)
            else:
                option = next(o for o, f in _FLAG_NAMES.items() if f == flag)
                args.options[option] = value
        elif flag in ("-h", "--help"):
            args.help = True
        elif flag in ("-V", "--version"):
            args.command = args.command or "version"
        elif flag == "--no-cache":
            args.no_cache = True
        elif flag == "--client-secret":
            raise _Usage(
                "there is no --client-secret flag (argv is visible to other users): set CLIENT_SECRET "
                "or use --client-secret-file"
            )
        elif flag.startswith("-") and len(flag) > 1:
            raise _Usage(f"unknown option {flag}")
        else:
            if flag not in ("token", "check", "exec", "help"):
                raise _Usage(f"unknown command {json.dumps(flag)} (expected token, check or exec)")
            if args.command is not None:
                raise _Usage(f"unexpected argument {json.dumps(flag)}")
            args.command = flag
        i += 1
    if args.help or args.command == "help":
        args.command = "help"
        return args
    if args.command is None:
        raise _Usage("no command given (expected token, check or exec)")
    if not _VAR_NAME.match(args.var):
        raise _Usage(f"--var {json.dumps(args.var)} is not a valid environment variable name")
    if args.command == "exec" and not args.argv:
        raise _Usage("exec needs a command after --")
    if args.command != "exec" and args.argv:
        raise _Usage("only exec takes a command after --")
    if args.format_given and args.command != "token":
        raise _Usage("--format is for the token command")
    if args.scopes:
        args.options["scope"] = " ".join(args.scopes)
    if args.audiences:
        args.options["audience"] = list(args.audiences)
    return args


# ---- errors ---------------------------------------------------------------------------


def _config_message(error: InvalidConfigError, args: _Args) -> str:
    field = error.field or ""
    base, bracket, index = field.partition("[")
    if base in args.options and base in _FLAG_NAMES:
        field = _FLAG_NAMES[base] + bracket + index
    return f"invalid configuration: {field}: {error.problem}"


def _describe(error: TokenError, args: _Args) -> Tuple[str, str, str, int]:
    """``(message, fault, kind, exit code)``."""
    if isinstance(error, InvalidConfigError):
        return _config_message(error, args), "configuration", "config", CONFIGURATION
    code = EXIT_CODES.get(error.fault, INTERNAL)
    return str(error), error.fault, error.kind, code


def _report(error: TokenError, args: _Args) -> int:
    message, fault, kind, code = _describe(error, args)
    err = sys.stderr
    err.write(f"tokenwell: error: {message}\n")
    err.write(f"tokenwell: fault: {fault} ({kind}); exit {code}\n")
    err.write(f"tokenwell: what to do: {_WHAT_TO_DO.get(kind, _BUG)}\n")
    err.flush()
    return code


# ---- the account --------------------------------------------------------------------------


class _Events:
    """The account's events: cache-file problems become stderr warnings (as
    the Rust binary's); a refresh ahead that fails after the token was
    printed is one warning."""

    def __init__(self) -> None:
        self.printed = False

    def __call__(self, event: Dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "cache_file_problem":
            if event.get("problem") == "ignored" and event.get("detail") == "expired":
                return
            detail = f": {event['detail']}" if event.get("detail") else ""
            sys.stderr.write(f"tokenwell: warning: cache file {event.get('path')}: {event.get('problem')}{detail}\n")
        elif kind == "refresh_failed" and self.printed:
            sys.stderr.write(
                f"tokenwell: warning: the refresh ahead failed ({event.get('kind')}); "
                "the cached token stays in use until it expires\n"
            )


def _cache_dir() -> Optional[str]:
    for base, tail in ((os.environ.get("XDG_CACHE_HOME"), ()), (os.environ.get("HOME"), (".cache",))):
        if base and os.path.isabs(base):
            return os.path.join(base, *tail, "tokenwell")
    return None


def _open_account(args: _Args, *, cache: bool, transport: Any = None, on_event: Any = None) -> ServiceAccount:
    """The account ``from_env`` builds with the flags as explicit options, and
    (with ``cache``) the cache file: ``--cache-path``, else the default path
    named by the configuration's fingerprint."""
    options = dict(args.options)
    if transport is not None:
        options["transport"] = transport
    account = ServiceAccount.from_env(args.prefix, refresh_when_idle=False, on_event=on_event, **options)
    if not cache or args.no_cache:
        return account
    path = args.cache_path
    if path is None:
        directory = _cache_dir()
        if directory is None:
            sys.stderr.write("tokenwell: warning: no cache directory (neither XDG_CACHE_HOME nor HOME is set): not caching\n")
            return account
        path = os.path.join(directory, account.engine.fingerprint + ".json")
    account.close()
    return ServiceAccount.from_env(args.prefix, refresh_when_idle=False, on_event=on_event, cache_path=path, **options)


def _fingerprint(account: ServiceAccount) -> str:
    fingerprint = account.engine.fingerprint
    return fingerprint() if callable(fingerprint) else fingerprint


# ---- token and exec ------------------------------------------------------------------------


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def render(access_token: str, token_type: str, expires_at_ms: int, scope: Sequence[str], fmt: str, var: str) -> str:
    """What ``token`` prints (the spec's shapes, byte for byte the Rust binary's)."""
    expires_at = expires_at_ms // 1000
    scopes = " ".join(scope)
    if fmt == "header":
        return f"Authorization: Bearer {access_token}\n"
    if fmt == "json":
        wire = {"access_token": access_token, "token_type": token_type, "expires_at": expires_at, "scope": scopes}
        return json.dumps(wire, separators=(",", ":"), ensure_ascii=False) + "\n"
    if fmt == "env":
        return (
            f"export {var}={_quote(access_token)}\n"
            f"export {var}_EXPIRES_AT={expires_at}\n"
            f"export {var}_SCOPE={_quote(scopes)}\n"
        )
    return f"{access_token}\n"


def _expires_at_ms(token: Any) -> int:
    return int(round(token.expires_at.timestamp() * 1000))


def _run_token(args: _Args) -> int:
    events = _Events()
    try:
        account = _open_account(args, cache=True, on_event=events)
        token = account.token()
    except TokenError as error:
        return _report(error, args)
    text = render(token.access_token, token.token_type, _expires_at_ms(token), token.scope, args.format, args.var)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as error:
        sys.stderr.write(f"tokenwell: error: cannot write to stdout ({type(error).__name__})\n")
        return INTERNAL
    # A refresh ahead, if one was due, runs in the background and is joined at exit.
    events.printed = True
    return OK


def _run_exec(args: _Args) -> int:
    try:
        account = _open_account(args, cache=True, on_event=_Events())
        account.token()
        # The command may run long: let a due refresh ahead finish and give it the fresher token.
        _account._join_background_refreshes()
        token = account.get_token()
    except TokenError as error:
        return _report(error, args)
    env = dict(os.environ)
    env[args.var] = token
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(args.argv[0], args.argv, env)
    except FileNotFoundError:
        code = NOT_FOUND
        reason = "NotFound"
    except OSError as error:
        code = CANNOT_EXECUTE
        reason = "PermissionDenied" if isinstance(error, PermissionError) else type(error).__name__
    sys.stderr.write(f"tokenwell: error: cannot run {args.argv[0]} ({reason})\n")
    return code


# ---- check ----------------------------------------------------------------------------------


def rfc3339(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def _line(label: str, value: Any) -> None:
    sys.stdout.write(f"  {label + ':':<20}{value}\n")


def _listing(values: Sequence[str]) -> str:
    return " ".join(values) if values else "(none)"


def jwt_claims(token: str) -> Optional[Dict[str, Any]]:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1].rstrip("=")
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def _claim_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_claim_text(v) for v in value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _sources(args: _Args) -> Dict[str, str]:
    """Which variable or flag supplied each option (as the engine's ``sources``)."""
    env = os.environ
    p = args.prefix

    def set_(name: str) -> bool:
        return bool(env.get(p + name, "").strip())

    found: Dict[str, str] = {}
    if set_("CLIENT_ID"):
        found["client_id"] = p + "CLIENT_ID"
    if set_("TOKEN_URL"):
        found["token_url"] = p + "TOKEN_URL"
    elif set_("HYDRA_URL"):
        found["token_url"] = p + "HYDRA_URL"
    if set_("ISSUER_URL"):
        found["issuer"] = p + "ISSUER_URL"
    if set_("CLIENT_PRIVATE_KEY_FILE"):
        found["private_key"] = p + "CLIENT_PRIVATE_KEY_FILE"
    if set_("CLIENT_SECRET"):
        found["client_secret"] = p + "CLIENT_SECRET"
    elif set_("CLIENT_SECRET_FILE"):
        found["client_secret"] = p + "CLIENT_SECRET_FILE"
    for option in args.options:
        if option in _FLAG_NAMES:
            found["client_secret" if option == "client_secret_file" else option] = _FLAG_NAMES[option]
    return found


def _with_source(value: str, source: Optional[str]) -> str:
    return f"{value} (from {source})" if source else value


def _cache_state(args: _Args, account: ServiceAccount) -> str:
    if args.no_cache:
        return "not used (--no-cache)"
    path = args.cache_path
    if path is None:
        directory = _cache_dir()
        if directory is None:
            return "none (neither XDG_CACHE_HOME nor HOME is set)"
        path = os.path.join(directory, _fingerprint(account) + ".json")
    problems: List[str] = []

    def report(problem: str, **fields: Any) -> None:
        problems.append(": ".join(str(fields[k]) for k in ("reason", "error", "mode") if fields.get(k) is not None))

    file = CacheFile(path, report)
    text = file.read_if_changed()
    if text is not None:
        try:
            account.engine.import_snapshot(text, int(time.time() * 1000))
        except SnapshotError as refused:
            state = f"holds no usable token ({refused.reason})"
        else:
            current = account.engine.current_token()
            state = f"holds a token usable until {rfc3339(current.usable_until)}" if current else "holds no token"
    elif problems:
        state = f"ignored ({problems[0]})"
    else:
        state = "empty (no token cached yet)"
    return f"{file.path}: {state}"


class _Recorder:
    """The default transport, recording each exchange for ``check``."""

    def __init__(self) -> None:
        self.exchanges: List[Tuple[str, str, Any, int]] = []  # method, url, (status, ms, date) or failure, at

    def __call__(self, request: TransportRequest) -> Any:
        started = time.monotonic()
        try:
            response = urllib_transport(request)
        except Exception as error:
            kind = classify_failure(error, request.url)[0]
            self.exchanges.append((request.method, request.url, kind, int(time.time() * 1000)))
            raise
        elapsed = int((time.monotonic() - started) * 1000)
        date = next((v for n, v in response.headers if n.lower() == "date"), None)
        self.exchanges.append((request.method, request.url, (response.status, elapsed, date), int(time.time() * 1000)))
        return response


def _explain_failure(error: TokenError, args: _Args) -> None:
    message, fault, kind, code = _describe(error, args)
    sys.stdout.write("result: FAILED\n")
    _line("error", message)
    _line("fault", f"{fault} ({kind}); exit {code}")
    _line("what to do", _WHAT_TO_DO.get(kind, _BUG))


def _run_check(args: _Args) -> int:
    sys.stdout.write("tokenwell check\n")
    recorder = _Recorder()
    try:
        account = _open_account(args, cache=False, transport=recorder, on_event=lambda event: None)
        scratch = _open_account(args, cache=False, on_event=lambda event: None)
    except TokenError as error:
        _explain_failure(error, args)
        return _report(error, args)
    engine = account.engine
    sources = _sources(args)
    sys.stdout.write("configuration\n")
    _line("client id", _with_source(engine.client_id, sources.get("client_id")))
    if engine.issuer is not None:
        _line("issuer", _with_source(engine.issuer, sources.get("issuer")))
    if engine.key_count > 0:
        credentials = f"{engine.key_count} private key(s)"
    else:
        credentials = f"{engine.secret_count} secret(s), not shown"
    _line("credentials", _with_source(credentials, sources.get("client_secret") or sources.get("private_key")))
    _line("scope requested", _listing(engine.scopes))
    _line("audience requested", _listing(engine.audiences))
    _line("cache file", _cache_state(args, scratch))
    scratch.close()
    failure: Optional[TokenError] = None
    try:
        account.token()
    except TokenError as error:
        failure = error
    endpoint = engine.token_endpoint
    if engine.issuer is not None and "token_url" not in sources:
        _line("token endpoint", f"{endpoint or '(not known)'} (discovered from the issuer's metadata)")
    else:
        _line("token endpoint", _with_source(endpoint or "(not known)", sources.get("token_url")))
    _line("auth method", engine.auth_method)
    sys.stdout.write("requests\n")
    for method, url, outcome, _at in recorder.exchanges:
        if isinstance(outcome, tuple):
            _line("request", f"{method} {url}: HTTP {outcome[0]} in {outcome[1]} ms")
        else:
            _line("request", f"{method} {url}: no answer ({outcome})")
    dated = [(o[2], at) for _, _, o, at in recorder.exchanges if isinstance(o, tuple) and o[2] is not None]
    if dated:
        date, at = dated[-1]
        try:
            server_ms = int(email.utils.parsedate_to_datetime(date).timestamp() * 1000)
        except (TypeError, ValueError):
            _line("clock skew", f"unknown (unreadable Date header: {date})")
        else:
            skew = at - server_ms
            secs, way = (skew, "ahead of") if skew >= 0 else (-skew, "behind")
            text = f"this machine is {secs // 1000}.{secs % 1000 // 100} s {way} the server (Date: {date}; 1 s resolution)"
            if secs > 60_000:
                text += ": too far apart, synchronize the clock (NTP): APIs may refuse the token as expired or not yet valid"
            _line("clock skew", text)
    else:
        _line("clock skew", "unknown (the server sent no Date header)")
    if failure is not None:
        _explain_failure(failure, args)
        account.close()
        return _report(failure, args)
    current = engine.current_token()
    account.close()
    if current is None:
        return INTERNAL
    sys.stdout.write("token\n")
    claims = jwt_claims(current.access_token)
    if claims is not None:
        _line("access token", "JWT (claims read, signature not verified)")
        shown = [f"{n}={_claim_text(claims[n])}" for n in ("iss", "sub", "client_id", "aud", "scope", "scp", "iat", "exp") if n in claims]
        _line("claims", ", ".join(shown))
    else:
        _line("access token", "opaque (not a JWT: only the server can read it)")
    _line("granted scopes", _listing(current.scope))
    if claims is not None and "aud" in claims:
        aud = _claim_text(claims["aud"])
        _line("granted audience", f"{aud} (the JWT's aud claim)" if aud else "(none: the JWT's aud claim is empty)")
    else:
        _line("granted audience", "not shown (opaque token; the server did not say)")
    lifetime = max(current.expires_at - current.received_at, 0) // 1000
    source = {"expires_in": "expires_in", "jwt_exp": "the JWT's exp claim"}.get(
        current.lifetime_source, "the default lifetime: the server sent no expires_in"
    )
    _line("lifetime", f"{lifetime} s (from {source}), expires at {rfc3339(current.expires_at)}")
    ahead_in = max(current.refresh_at - current.received_at, 0) // 1000
    margin = max(current.expires_at - current.usable_until, 0) // 1000
    _line(
        "refresh",
        f"ahead at {rfc3339(current.refresh_at)} ({ahead_in} s after issue); never used after "
        f"{rfc3339(current.usable_until)} ({margin} s before expiry)",
    )
    sys.stdout.write("result: ok\n")
    return OK


# ---- entry points ---------------------------------------------------------------------------


def run(argv: Sequence[str]) -> int:
    """Runs the command line ``argv`` (without the program name); the exit code."""
    try:
        args = _parse(argv)
    except _Usage as problem:
        sys.stderr.write(f"tokenwell: usage: {problem}\n")
        sys.stderr.write("tokenwell: run 'tokenwell --help' for the commands, flags and exit codes\n")
        return USAGE
    if args.command == "help":
        sys.stdout.write(HELP)
        return OK
    if args.command == "version":
        from . import __version__

        sys.stdout.write(f"tokenwell {__version__}\n")
        return OK
    if args.command == "token":
        return _run_token(args)
    if args.command == "exec":
        return _run_exec(args)
    return _run_check(args)


def main() -> NoReturn:
    """The console script ``tokenwell``."""
    sys.exit(run(sys.argv[1:]))
