#!/usr/bin/env node
'use strict';
// `npx tokenwell ...`: the tokenwell command over the npm package's
// ServiceAccount with its `cachePath`. It follows the one spec of outputs and
// exit codes (tests/cli/SPEC.md) that the Rust binary (bindings/cli) and
// `python -m tokenwell` follow; tests/cli/test_cli.py runs every case against
// every entry point.

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { ServiceAccount, TokenError } = require('../index.js');

const HELP = `tokenwell: an OAuth 2.0 client-credentials access token for shell scripts

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
          call \`tokenwell token\` again inside them.

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

Errors go to stderr as \`tokenwell: error: ...\`, \`tokenwell: fault: ...\`,
\`tokenwell: what to do: ...\`; no secret or token is ever printed there.
`;

// Exit codes by who has to act (sysexits.h), the Rust binary's.
const EXIT = { ok: 0, usage: 64, internal: 70, transient: 75, malformed: 76, credentials: 77, configuration: 78 };
const BY_FAULT = {
  configuration: EXIT.configuration,
  credentials: EXIT.credentials,
  authorization_server: EXIT.transient,
  transport: EXIT.transient,
  malformed_response: EXIT.malformed,
};
const SERVER_FAILING =
  'the authorization server is failing or overloaded: retry later (exit 75 is safe to retry with backoff)';
const UNREACHABLE =
  "the server could not be reached: check the URL's host and port, the network and HTTPS_PROXY / NO_PROXY; retry later (exit 75)";
const READ_DESCRIPTION = "read the server's description above and check this client's settings on the server";
const CHECK_ISSUER = "check ISSUER_URL: it must be exactly the issuer the server's metadata names; or set TOKEN_URL";
const WHAT_TO_DO = {
  config: 'fix the setting named above (environment variable or flag)',
  invalid_client:
    'check CLIENT_ID and the secret (CLIENT_SECRET or CLIENT_SECRET_FILE) or the private key against the ' +
    'authorization server: the client may be unknown, its secret wrong or rotated',
  invalid_scope: 'request only scopes this client is allowed (SCOPE or --scope), or allow them on the server',
  invalid_target: 'request only audiences this client is allowed (AUDIENCE or --audience), or allow them on the server',
  invalid_request:
    'the server refused the request; on Ory Hydra this is usually an audience the client may not request: check AUDIENCE',
  unauthorized_client: 'allow the client_credentials grant for this client on the server',
  unsupported_grant_type: 'this endpoint does not offer client_credentials: check TOKEN_URL',
  invalid_grant: READ_DESCRIPTION,
  rejected: READ_DESCRIPTION,
  endpoint_not_found:
    'nothing takes token requests at this URL: check TOKEN_URL (on Ory Hydra: the public URL + /oauth2/token), ' +
    'or set HYDRA_URL or ISSUER_URL instead',
  tls_certificate: "trust the server's CA with TOKENWELL_CA_FILE or --ca-file, or fix the host name in the URL",
  discovery_failed: CHECK_ISSUER,
  issuer_mismatch: CHECK_ISSUER,
  rate_limited: SERVER_FAILING,
  server_error: SERVER_FAILING,
  temporarily_unavailable: SERVER_FAILING,
  transport: UNREACHABLE,
  timeout: UNREACHABLE,
  malformed_response:
    'something other than an OAuth token endpoint answered (a proxy, a login page, a wrong URL): check TOKEN_URL and any proxy',
};
const BUG = 'this is a bug in tokenwell: please report it';

// Flag -> [engine option (snake_case, for errors), ServiceAccount option].
const FLAGS = {
  '--client-id': ['client_id', 'clientId'],
  '--token-url': ['token_url', 'tokenUrl'],
  '--issuer-url': ['issuer', 'issuer'],
  '--scope': ['scope', 'scope'],
  '--audience': ['audience', 'audience'],
  '--auth-method': ['auth_method', 'authMethod'],
  '--client-secret-file': ['client_secret_file', 'clientSecretFile'],
  '--ca-file': ['ca_file', 'caFile'],
};
const VALUE_FLAGS = new Set(['--format', '--var', '--prefix', '--cache-path', ...Object.keys(FLAGS)]);

class Usage extends Error {}

function parse(argv) {
  const args = {
    command: null, help: false, format: 'token', formatGiven: false, var: 'ACCESS_TOKEN', prefix: '',
    flags: {}, scopes: [], audiences: [], cachePath: null, noCache: false, argv: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      args.argv = argv.slice(i + 1);
      break;
    }
    let flag = arg;
    let value = null;
    if (arg.startsWith('--') && arg.includes('=')) {
      flag = arg.slice(0, arg.indexOf('='));
      value = arg.slice(arg.indexOf('=') + 1);
    }
    if (VALUE_FLAGS.has(flag)) {
      if (value === null) {
        i += 1;
        if (i >= argv.length) throw new Usage(`${flag} needs a value`);
        value = argv[i];
      }
      if (flag === '--format') {
        if (!['token', 'header', 'json', 'env'].includes(value)) {
          throw new Usage(`--format ${value}: expected token, header, json or env`);
        }
        args.format = value;
        args.formatGiven = true;
      } else if (flag === '--var') args.var = value;
      else if (flag === '--prefix') args.prefix = value;
      else if (flag === '--cache-path') args.cachePath = value;
      else if (flag === '--scope') args.scopes.push(value);
      else if (flag === '--audience') args.audiences.push(value);
      else args.flags[flag] = value;
    } else if (flag === '-h' || flag === '--help') args.help = true;
    else if (flag === '-V' || flag === '--version') args.command = args.command ?? 'version';
    else if (flag === '--no-cache') args.noCache = true;
    else if (flag === '--client-secret') {
      throw new Usage(
        'there is no --client-secret flag (argv is visible to other users): set CLIENT_SECRET or use --client-secret-file',
      );
    } else if (flag.startsWith('-') && flag.length > 1) throw new Usage(`unknown option ${flag}`);
    else {
      if (!['token', 'check', 'exec', 'help'].includes(flag)) {
        throw new Usage(`unknown command ${JSON.stringify(flag)} (expected token, check or exec)`);
      }
      if (args.command !== null) throw new Usage(`unexpected argument ${JSON.stringify(flag)}`);
      args.command = flag;
    }
  }
  if (args.help || args.command === 'help') {
    args.command = 'help';
    return args;
  }
  if (args.command === null) throw new Usage('no command given (expected token, check or exec)');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(args.var)) {
    throw new Usage(`--var ${JSON.stringify(args.var)} is not a valid environment variable name`);
  }
  if (args.command === 'exec' && args.argv.length === 0) throw new Usage('exec needs a command after --');
  if (args.command !== 'exec' && args.argv.length > 0) throw new Usage('only exec takes a command after --');
  if (args.formatGiven && args.command !== 'token') throw new Usage('--format is for the token command');
  if (args.scopes.length) args.flags['--scope'] = args.scopes.join(' ');
  if (args.audiences.length) args.flags['--audience'] = [...args.audiences];
  return args;
}

// ---- errors ----------------------------------------------------------------------

/** `[message, fault, kind, exit code]`; a configuration error names the variable, or the flag that gave the value. */
function describe(error, args) {
  if (!(error instanceof TokenError)) {
    return [`${error?.message ?? error}`, 'host', 'internal', EXIT.internal];
  }
  if (error.kind === 'config') {
    let field = error.field ?? '';
    const bracket = field.indexOf('[');
    const base = bracket >= 0 ? field.slice(0, bracket) : field;
    const rest = bracket >= 0 ? field.slice(bracket) : '';
    for (const [flag, [snake, camel]] of Object.entries(FLAGS)) {
      if ((base === snake || base === camel) && flag in args.flags) field = flag + rest;
    }
    const problem = error.problem ?? error.message;
    return [`invalid configuration: ${field}: ${problem}`, 'configuration', 'config', EXIT.configuration];
  }
  return [error.message, error.fault, error.kind, BY_FAULT[error.fault] ?? EXIT.internal];
}

function report(error, args) {
  const [message, fault, kind, code] = describe(error, args);
  process.stderr.write(
    `tokenwell: error: ${message}\ntokenwell: fault: ${fault} (${kind}); exit ${code}\n` +
      `tokenwell: what to do: ${WHAT_TO_DO[kind] ?? BUG}\n`,
  );
  return code;
}

// ---- the account -------------------------------------------------------------------

function cacheDir() {
  for (const [base, tail] of [[process.env.XDG_CACHE_HOME, []], [process.env.HOME, ['.cache']]]) {
    if (base && path.isAbsolute(base)) return path.join(base, ...tail, 'tokenwell');
  }
  return null;
}

/**
 * The engine's configuration fingerprint (core `Config::fingerprint`: SHA-256
 * over length-prefixed parts), which names the default cache file. The npm
 * API does not expose it; the tests hold this copy to the engine's by sharing
 * one file with the Rust binary and Python.
 */
function fingerprint(options) {
  const sorted = (values) => [...new Set(values)].map((v) => Buffer.from(v)).sort(Buffer.compare).map(String);
  const hash = crypto.createHash('sha256');
  const parts = [
    'tokenwell-fingerprint-v1',
    options.tokenUrl || options.issuer || '',
    options.clientId,
    sorted(options.scope ?? []).join(' '),
    sorted(options.audience ?? []).join('\u001f'),
  ];
  for (const part of parts) {
    const bytes = Buffer.from(part, 'utf8');
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(bytes.length));
    hash.update(length);
    hash.update(bytes);
  }
  return hash.digest('hex');
}

function openAccount(args, { cache, fetch, onEvent }) {
  const options = { prefix: args.prefix, onEvent: onEvent ?? (() => {}) };
  for (const [flag, [, camel]] of Object.entries(FLAGS)) {
    if (flag in args.flags) options[camel] = args.flags[flag];
  }
  if (fetch) options.fetch = fetch;
  const account = ServiceAccount.fromEnv(options);
  if (!cache || args.noCache) return account;
  let cachePath = args.cachePath;
  if (cachePath === null) {
    const directory = cacheDir();
    if (directory === null) {
      process.stderr.write('tokenwell: warning: no cache directory (neither XDG_CACHE_HOME nor HOME is set): not caching\n');
      return account;
    }
    cachePath = path.join(directory, `${fingerprint(account.options)}.json`);
  }
  account.close();
  return ServiceAccount.fromEnv({ ...options, cachePath });
}

/** Cache-file problems as stderr warnings; a failed refresh ahead after the token was printed, one warning. */
function eventWarnings(state) {
  return (event) => {
    if (event.type === 'cache_file_problem') {
      if (event.problem === 'ignored' && event.detail === 'expired') return;
      const detail = event.detail ? `: ${event.detail}` : '';
      process.stderr.write(`tokenwell: warning: cache file ${event.path}: ${event.problem}${detail}\n`);
    } else if (event.type === 'refresh_failed' && state.printed) {
      process.stderr.write(
        `tokenwell: warning: the refresh ahead failed (${event.error?.kind}); the cached token stays in use until it expires\n`,
      );
    }
  };
}

// ---- token and exec -------------------------------------------------------------------

const quote = (value) => `'${value.replaceAll("'", "'\\''")}'`;

function render(token, format, name) {
  const expiresAt = Math.floor(token.expiresAt.getTime() / 1000);
  const scope = token.scope.join(' ');
  if (format === 'header') return `Authorization: Bearer ${token.accessToken}\n`;
  if (format === 'json') {
    const wire = { access_token: token.accessToken, token_type: token.tokenType, expires_at: expiresAt, scope };
    return `${JSON.stringify(wire)}\n`;
  }
  if (format === 'env') {
    return (
      `export ${name}=${quote(token.accessToken)}\nexport ${name}_EXPIRES_AT=${expiresAt}\n` +
      `export ${name}_SCOPE=${quote(scope)}\n`
    );
  }
  return `${token.accessToken}\n`;
}

async function runToken(args) {
  const state = { printed: false };
  let token;
  try {
    token = await openAccount(args, { cache: true, onEvent: eventWarnings(state) }).token();
  } catch (error) {
    return report(error, args);
  }
  await new Promise((resolve) => process.stdout.write(render(token, args.format, args.var), resolve));
  // A refresh ahead, if one was due, is in flight: the process exits when it is done.
  state.printed = true;
  return EXIT.ok;
}

async function runExec(args) {
  let token;
  try {
    const account = openAccount(args, { cache: true, onEvent: eventWarnings({ printed: false }) });
    await account.token();
    // The command may run long: take the fresher token if a refresh ahead was due.
    await waitForIdle(account);
    token = await account.getToken();
    account.close();
  } catch (error) {
    return report(error, args);
  }
  const [program, ...rest] = args.argv;
  const done = spawnSync(program, rest, { stdio: 'inherit', env: { ...process.env, [args.var]: token } });
  if (done.error) {
    const code = done.error.code === 'ENOENT' ? 127 : 126;
    process.stderr.write(`tokenwell: error: cannot run ${program} (${code === 127 ? 'NotFound' : 'PermissionDenied'})\n`);
    return code;
  }
  if (done.signal) {
    process.kill(process.pid, done.signal);
    return 128 + 15;
  }
  return done.status ?? EXIT.internal;
}

/** Until no token request is in flight (a refresh ahead), polling the engine's state. */
async function waitForIdle(account) {
  while (account.state === 'fetching') await new Promise((resolve) => setImmediate(resolve));
}

// ---- check ------------------------------------------------------------------------------

const rfc3339 = (ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
const line = (label, value) => process.stdout.write(`  ${`${label}:`.padEnd(20)}${value}\n`);
const listing = (values) => (values.length ? values.join(' ') : '(none)');
const withSource = (value, source) => (source ? `${value} (from ${source})` : value);

function jwtClaims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return claims !== null && typeof claims === 'object' && !Array.isArray(claims) ? claims : null;
  } catch {
    return null;
  }
}

const claimText = (value) =>
  typeof value === 'string' ? value : Array.isArray(value) ? value.map(claimText).join(' ') : JSON.stringify(value);

function sources(args) {
  const env = process.env;
  const p = args.prefix;
  const set = (name) => Boolean((env[p + name] ?? '').trim());
  const found = {};
  if (set('CLIENT_ID')) found.client_id = `${p}CLIENT_ID`;
  if (set('TOKEN_URL')) found.token_url = `${p}TOKEN_URL`;
  else if (set('HYDRA_URL')) found.token_url = `${p}HYDRA_URL`;
  if (set('ISSUER_URL')) found.issuer = `${p}ISSUER_URL`;
  if (set('CLIENT_PRIVATE_KEY_FILE')) found.private_key = `${p}CLIENT_PRIVATE_KEY_FILE`;
  if (set('CLIENT_SECRET')) found.client_secret = `${p}CLIENT_SECRET`;
  else if (set('CLIENT_SECRET_FILE')) found.client_secret = `${p}CLIENT_SECRET_FILE`;
  for (const [flag, [snake]] of Object.entries(FLAGS)) {
    if (flag in args.flags) found[snake === 'client_secret_file' ? 'client_secret' : snake] = flag;
  }
  return found;
}

async function cacheState(args, options) {
  if (args.noCache) return 'not used (--no-cache)';
  let cachePath = args.cachePath;
  if (cachePath === null) {
    const directory = cacheDir();
    if (directory === null) return 'none (neither XDG_CACHE_HOME nor HOME is set)';
    cachePath = path.join(directory, `${fingerprint(options)}.json`);
  }
  cachePath = path.resolve(cachePath);
  const problems = [];
  // A scratch account on the file, which never fetches: what would it serve?
  const scratch = openAccount(
    { ...args, noCache: false, cachePath },
    {
      cache: true,
      fetch: async () => {
        throw new Error('check: the scratch account does not fetch');
      },
      onEvent: (event) => {
        if (event.type === 'cache_file_problem') problems.push(event.detail);
        if (event.type === 'token_acquired' || event.type === 'snapshot_imported') problems.push(null);
      },
    },
  );
  let state;
  if (!fs.existsSync(cachePath) && !isSymlink(cachePath)) {
    state = 'empty (no token cached yet)';
  } else {
    try {
      const token = await scratch.token();
      const usable = scratchUsableUntil(token, scratch);
      state = `holds a token usable until ${rfc3339(usable)}`;
    } catch {
      const refused = problems.find((p) => p);
      state = refused ? (['corrupt', 'unsupported_version', 'fingerprint_mismatch', 'expired'].includes(refused)
        ? `holds no usable token (${refused})` : `ignored (${refused})`) : 'empty (no token cached yet)';
    }
  }
  scratch.close();
  return `${cachePath}: ${state}`;
}

function isSymlink(p) {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** `usable_until`: `expires_at` less the refresh margin (capped by the engine at half the lifetime). */
function scratchUsableUntil(token, account) {
  return token.expiresAt.getTime() - account.options.refreshMarginSeconds * 1000;
}

async function runCheck(args) {
  process.stdout.write('tokenwell check\n');
  const exchanges = [];
  const recording = async (input, init) => {
    const url = typeof input === 'string' ? input : input.url;
    const method = init?.method ?? 'GET';
    const started = performance.now();
    try {
      const response = await fetch(input, init);
      exchanges.push({ method, url, status: response.status, ms: Math.floor(performance.now() - started),
        date: response.headers.get('date'), at: Date.now() });
      return response;
    } catch (error) {
      exchanges.push({ method, url, failure: error?.cause?.code ?? error?.name ?? 'error', at: Date.now() });
      throw error;
    }
  };
  const events = [];
  let account;
  try {
    account = openAccount(args, { cache: false, fetch: recording, onEvent: (event) => events.push(event) });
  } catch (error) {
    explainFailure(error, args);
    return report(error, args);
  }
  const options = account.options;
  const found = sources(args);
  process.stdout.write('configuration\n');
  line('client id', withSource(options.clientId, found.client_id));
  if (options.issuer != null) line('issuer', withSource(options.issuer, found.issuer));
  const credentials = account.keyCount > 0 ? `${account.keyCount} private key(s)` : `${account.secretCount} secret(s), not shown`;
  line('credentials', withSource(credentials, found.client_secret ?? found.private_key));
  line('scope requested', listing(options.scope ?? []));
  line('audience requested', listing(options.audience ?? []));
  line('cache file', await cacheState(args, options));
  let failure = null;
  let token = null;
  try {
    token = await account.token();
  } catch (error) {
    failure = error;
  }
  const endpoint = account.tokenEndpoint ?? '(not known)';
  if (options.issuer != null && !found.token_url) line('token endpoint', `${endpoint} (discovered from the issuer's metadata)`);
  else line('token endpoint', withSource(endpoint, found.token_url));
  line('auth method', account.authMethod);
  account.close();
  process.stdout.write('requests\n');
  for (const e of exchanges) {
    line('request', `${e.method} ${e.url}: ${e.failure ? `no answer (${e.failure})` : `HTTP ${e.status} in ${e.ms} ms`}`);
  }
  const dated = exchanges.filter((e) => e.date);
  if (dated.length) {
    const { date, at } = dated[dated.length - 1];
    const server = Date.parse(date);
    if (Number.isNaN(server)) line('clock skew', `unknown (unreadable Date header: ${date})`);
    else {
      const skew = at - server;
      const secs = Math.abs(skew);
      const way = skew >= 0 ? 'ahead of' : 'behind';
      let text = `this machine is ${Math.floor(secs / 1000)}.${Math.floor((secs % 1000) / 100)} s ${way} the server (Date: ${date}; 1 s resolution)`;
      if (secs > 60_000) {
        text += ': too far apart, synchronize the clock (NTP): APIs may refuse the token as expired or not yet valid';
      }
      line('clock skew', text);
    }
  } else line('clock skew', 'unknown (the server sent no Date header)');
  if (failure !== null) {
    explainFailure(failure, args);
    return report(failure, args);
  }
  const acquired = events.filter((e) => e.type === 'token_acquired').pop();
  process.stdout.write('token\n');
  const claims = jwtClaims(token.accessToken);
  if (claims !== null) {
    line('access token', 'JWT (claims read, signature not verified)');
    const shown = ['iss', 'sub', 'client_id', 'aud', 'scope', 'scp', 'iat', 'exp']
      .filter((n) => n in claims)
      .map((n) => `${n}=${claimText(claims[n])}`);
    line('claims', shown.join(', '));
  } else line('access token', 'opaque (not a JWT: only the server can read it)');
  line('granted scopes', listing(token.scope));
  if (claims !== null && 'aud' in claims) {
    const aud = claimText(claims.aud);
    line('granted audience', aud ? `${aud} (the JWT's aud claim)` : "(none: the JWT's aud claim is empty)");
  } else line('granted audience', 'not shown (opaque token; the server did not say)');
  const expiresAt = token.expiresAt.getTime();
  const receivedAt = acquired?.at ?? Date.now();
  const source = { expires_in: 'expires_in', jwt_exp: "the JWT's exp claim" }[acquired?.lifetimeSource ?? acquired?.lifetime_source] ??
    'the default lifetime: the server sent no expires_in';
  line('lifetime', `${Math.floor(Math.max(expiresAt - receivedAt, 0) / 1000)} s (from ${source}), expires at ${rfc3339(expiresAt)}`);
  const refreshAt = acquired?.refreshAt ?? acquired?.refresh_at ?? expiresAt;
  const margin = Math.min(options.refreshMarginSeconds * 1000, Math.floor((expiresAt - receivedAt) / 2));
  const usableUntil = expiresAt - margin;
  line(
    'refresh',
    `ahead at ${rfc3339(refreshAt)} (${Math.floor(Math.max(refreshAt - receivedAt, 0) / 1000)} s after issue); never used after ` +
      `${rfc3339(usableUntil)} (${Math.floor(margin / 1000)} s before expiry)`,
  );
  process.stdout.write('result: ok\n');
  return EXIT.ok;
}

function explainFailure(error, args) {
  const [message, fault, kind, code] = describe(error, args);
  process.stdout.write('result: FAILED\n');
  line('error', message);
  line('fault', `${fault} (${kind}); exit ${code}`);
  line('what to do', WHAT_TO_DO[kind] ?? BUG);
}

// ---- entry point ----------------------------------------------------------------------------

async function run(argv) {
  let args;
  try {
    args = parse(argv);
  } catch (error) {
    if (!(error instanceof Usage)) throw error;
    process.stderr.write(`tokenwell: usage: ${error.message}\n`);
    process.stderr.write("tokenwell: run 'tokenwell --help' for the commands, flags and exit codes\n");
    return EXIT.usage;
  }
  if (args.command === 'help') {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  if (args.command === 'version') {
    process.stdout.write(`tokenwell ${require('../package.json').version}\n`);
    return EXIT.ok;
  }
  if (args.command === 'token') return runToken(args);
  if (args.command === 'exec') return runExec(args);
  return runCheck(args);
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`tokenwell: error: ${error?.message ?? error}\n`);
    process.exitCode = EXIT.internal;
  },
);
