// `cachePath`: the cron cache file, shared with Python's `cache_path`. A Node
// cron and a Python cron with the same configuration share one file: each
// reads the token the other wrote (no token request), both honour one
// cross-process lock (`<path>.lock`, flock), files are 0600 and replaced
// atomically, and the engine's events say when the file is written (a token
// acquired) and deleted (a token invalidated).
//
// Python runs from the repository's venv (`make -C bindings/python build`
// creates it); without it the cross-language tests skip and say so. The token
// server is a scripted one on 127.0.0.1.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServiceAccount, engineBackend } from '../index.js';
import { CacheFile } from '../lib/cache-file.js';
import { startScriptedTokenServer } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const python = path.resolve(here, '../../python/.venv/bin/python');
const pythonReady =
  fs.existsSync(python) && spawnSync(python, ['-c', 'import tokenwell'], { encoding: 'utf8' }).status === 0;
const needsPython = pythonReady ? {} : { skip: `no ${python} with tokenwell: run make -C bindings/python build` };

const SECRET = 'Cr0n-s3cret';
const SCOPE = 'billing:write billing:read';

/** The same configuration in both languages. */
const nodeOptions = (tokenUrl, cachePath, extra = {}) => ({
  tokenUrl,
  clientId: 'nightly-cron',
  clientSecret: SECRET,
  scope: SCOPE,
  cachePath,
  backgroundRefresh: false,
  ...extra,
});

// `get URL PATH`: one cron run (a token, printed). `hold PATH`: takes the lock
// and prints what lock(0) said, then on a line `write URL` writes a snapshot of
// the token `at-python` and releases; on `release`, releases. `trylock PATH`:
// prints what lock(0) said.
const PYTHON_CRON = String.raw`
import sys, time
import tokenwell
from tokenwell._cache_file import CacheFile
mode, args = sys.argv[1], sys.argv[2:]
def config(url):
    return dict(token_url=url, client_id="nightly-cron", client_secret="${SECRET}", scope="${SCOPE}")
if mode == "get":
    url, path = args
    with tokenwell.ServiceAccount(cache_path=path, refresh_when_idle=False, **config(url)) as account:
        print(account.get_token(), flush=True)
elif mode == "trylock":
    cache = CacheFile(args[0], lambda *a, **k: None)
    outcome = cache.lock(0)
    print(outcome, flush=True)
    if outcome == "held":
        cache.unlock()
elif mode == "hold":
    cache = CacheFile(args[0], lambda *a, **k: None)
    print(cache.lock(0), flush=True)
    line = sys.stdin.readline().split()
    if line and line[0] == "write":
        engine = tokenwell.TokenCache(config(line[1]))
        now = int(time.time() * 1000)
        fetch_id = engine.poll(now).request.fetch_id
        engine.handle_response(fetch_id, 200, [], b'{"access_token":"at-python","token_type":"bearer","expires_in":600}', now)
        cache.write(engine.export_snapshot(now))
    cache.unlock()
    print("released", flush=True)
`;

function runPython(args) {
  return new Promise((resolve) => {
    execFile(python, ['-c', PYTHON_CRON, ...args], { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ status: error ? (error.code ?? 1) : 0, stdout: stdout.trim(), stderr }),
    );
  });
}

/** A Python process holding the lock of `cachePath` until told what to do. */
async function pythonHolding(cachePath) {
  const child = spawn(python, ['-c', PYTHON_CRON, 'hold', cachePath], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = [];
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    buffered += chunk;
    let at;
    while ((at = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, at));
      buffered = buffered.slice(at + 1);
      waiters.shift()?.();
    }
  });
  const nextLine = async () => {
    if (lines.length === 0) await new Promise((resolve) => waiters.push(resolve));
    return lines.shift();
  };
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return { first: await nextLine(), nextLine, send: (line) => child.stdin.write(`${line}\n`), exited };
}

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-cache-'));
const modeOf = (file) => fs.statSync(file).mode & 0o777;

test('a cache file written by a Python cron is used by a Node cron, and the reverse: one token request each way', needsPython, async () => {
  const dir = tempDir();
  const server = await startScriptedTokenServer();
  try {
    // Python first: it fetches and writes; Node reads it.
    const shared = path.join(dir, 'cache', 'token.json');
    const py = await runPython(['get', server.url, shared]);
    assert.equal(py.status, 0, py.stderr);
    assert.equal(py.stdout, 'at-1');
    assert.equal(modeOf(shared), 0o600);
    const node = new ServiceAccount(nodeOptions(server.url, shared));
    assert.equal(await node.getToken(), 'at-1', "Node uses Python's token");
    node.close();
    assert.equal(server.requests.length, 1, 'no token request from Node');

    // Node first: it fetches and writes; Python reads it.
    const second = path.join(dir, 'node', 'token.json');
    const writer = new ServiceAccount(nodeOptions(server.url, second));
    assert.equal(await writer.getToken(), 'at-2');
    writer.close();
    assert.equal(modeOf(second), 0o600, 'the file is 0600');
    const text = fs.readFileSync(second, 'utf8');
    assert.ok(!text.includes(SECRET), 'no secret in the file');
    assert.ok(JSON.parse(text).fingerprint, "the engine's snapshot, as is");
    assert.deepEqual(
      fs.readdirSync(path.dirname(second)).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file left behind',
    );
    const back = await runPython(['get', server.url, second]);
    assert.equal(back.status, 0, back.stderr);
    assert.equal(back.stdout, 'at-2', "Python uses Node's token");
    assert.equal(server.requests.length, 2, 'no token request from Python');
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the lock is the one Python takes: held by one language, busy for the other', needsPython, async () => {
  const dir = tempDir();
  const file = path.join(dir, 'token.json');
  try {
    const holder = await pythonHolding(file);
    assert.equal(holder.first, 'held');
    const node = new CacheFile(file, () => {});
    const whileHeld = await node.lock(0);
    if (engineBackend() === 'native') {
      assert.equal(whileHeld, 'busy', 'Node sees the flock Python holds');
    } else {
      // The wasm engine has no flock: the file is shared without the lock (documented).
      assert.equal(whileHeld, 'held');
      node.unlock();
    }
    holder.send('release');
    assert.equal(await holder.nextLine(), 'released');
    await holder.exited;
    assert.equal(await node.lock(0), 'held');
    const python = await runPython(['trylock', file]);
    assert.equal(python.stdout, engineBackend() === 'native' ? 'busy' : 'held', 'Python sees the flock Node holds');
    node.unlock();
    assert.equal((await runPython(['trylock', file])).stdout, 'held', 'released');
    assert.equal(modeOf(`${file}.lock`), 0o600);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a Node cron waits for the Python cron holding the lock, then uses its token without a request', needsPython, async (t) => {
  if (engineBackend() !== 'native') {
    t.skip('the wasm engine has no flock (the cache file is shared without the lock)');
    return;
  }
  const dir = tempDir();
  const file = path.join(dir, 'token.json');
  const server = await startScriptedTokenServer();
  const holder = await pythonHolding(file);
  const account = new ServiceAccount(nodeOptions(server.url, file));
  try {
    assert.equal(holder.first, 'held');
    const token = account.getToken();
    holder.send(`write ${server.url}`);
    assert.equal(await holder.nextLine(), 'released');
    assert.equal(await token, 'at-python');
    assert.equal(server.requests.length, 0, 'Node waited for the lock and found the fresh snapshot');
  } finally {
    account.close();
    await holder.exited;
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the engine says when the file goes: a token the API refused is deleted, so the next run fetches anew', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'token.json');
  const server = await startScriptedTokenServer();
  try {
    const first = new ServiceAccount(nodeOptions(server.url, file));
    assert.equal(await first.getToken(), 'at-1');
    assert.ok(fs.existsSync(file));
    assert.equal(first.invalidate('at-1'), 'invalidated');
    assert.ok(!fs.existsSync(file), 'token_invalidated deleted the snapshot');
    first.close();
    const next = new ServiceAccount(nodeOptions(server.url, file));
    assert.equal(await next.getToken(), 'at-2');
    next.close();
    // Another configuration (scope) shares no token: the engine refuses the snapshot.
    const other = new ServiceAccount(nodeOptions(server.url, file, { scope: 'billing:read' }));
    assert.equal(await other.getToken(), 'at-3');
    other.close();
    assert.equal(server.requests.length, 3);
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a cache file others could write, or a symlink planted at its path, is not used (a warning says why)', async () => {
  const dir = tempDir();
  const server = await startScriptedTokenServer();
  try {
    const file = path.join(dir, 'token.json');
    const writer = new ServiceAccount(nodeOptions(server.url, file));
    assert.equal(await writer.getToken(), 'at-1');
    writer.close();
    fs.chmodSync(file, 0o666);
    const warnings = [];
    const reader = new ServiceAccount(nodeOptions(server.url, file, { logger: { warn: (m) => warnings.push(m) } }));
    assert.equal(await reader.getToken(), 'at-2', 'a planted token is never sent');
    reader.close();
    assert.ok(
      warnings.some((w) => w.endsWith(`cache_file_problem (client nightly-cron): ignored ${file}: insecure_permissions: 0o666`)),
      warnings.join('\n'),
    );
    assert.equal(modeOf(file), 0o600, 'replaced by the new snapshot, 0600');

    const target = path.join(dir, 'elsewhere.json');
    fs.copyFileSync(file, target);
    const link = path.join(dir, 'link.json');
    fs.symlinkSync(target, link);
    const linked = [];
    const third = new ServiceAccount(nodeOptions(server.url, link, { logger: { warn: (m) => linked.push(m) } }));
    assert.equal(await third.getToken(), 'at-3');
    third.close();
    assert.ok(linked.some((w) => /cache_file_problem .*: ignored .*link\.json: symlink$/.test(w)), linked.join('\n'));
    assert.ok(!fs.lstatSync(link).isSymbolicLink(), 'the rename replaced the link itself, not its target');
    assert.equal(fs.readFileSync(target, 'utf8'), fs.readFileSync(file, 'utf8'), 'the target was not written');
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** The `cache_file_problem` events among `events`, as `[problem, path, detail]`. */
const fileProblems = (events) =>
  events.filter((e) => e.type === 'cache_file_problem').map((e) => [e.problem, e.path, e.detail]);

test("every cache file problem is the engine's cache_file_problem event, named and worded as in Python", async () => {
  const dir = tempDir();
  const server = await startScriptedTokenServer();
  try {
    const file = path.join(dir, 'token.json');
    const writer = new ServiceAccount(nodeOptions(server.url, file));
    assert.equal(await writer.getToken(), 'at-1');
    writer.close();

    // Readable by others: tightened to 0600 and used.
    fs.chmodSync(file, 0o644);
    const events = [];
    const reader = new ServiceAccount(nodeOptions(server.url, file, { onEvent: (e) => events.push(e) }));
    assert.equal(await reader.getToken(), 'at-1');
    reader.close();
    assert.deepEqual(fileProblems(events), [['permissions_tightened', file, '0o644']]);
    assert.equal(events.find((e) => e.type === 'cache_file_problem').actorId, 'nightly-cron');
    assert.equal(modeOf(file), 0o600);

    // Writable by others: ignored, with the reason and the mode.
    fs.chmodSync(file, 0o666);
    events.length = 0;
    const refused = new ServiceAccount(nodeOptions(server.url, file, { onEvent: (e) => events.push(e) }));
    assert.equal(await refused.getToken(), 'at-2');
    refused.close();
    assert.deepEqual(fileProblems(events), [['ignored', file, 'insecure_permissions: 0o666']]);

    // A directory where the file should be: ignored, and the snapshot cannot be written (the error code).
    const taken = path.join(dir, 'taken.json');
    fs.mkdirSync(path.join(taken, 'inside'), { recursive: true });
    events.length = 0;
    const blocked = new ServiceAccount(nodeOptions(server.url, taken, { onEvent: (e) => events.push(e) }));
    assert.equal(await blocked.getToken(), 'at-3');
    blocked.close();
    const [ignored, written] = fileProblems(events);
    assert.deepEqual(ignored, ['ignored', taken, 'not_regular_file']);
    assert.equal(written[0], 'write_failed');
    assert.equal(written[1], taken);
    assert.match(written[2], /^E[A-Z]+$/, 'the error code (EISDIR, ENOTEMPTY)');
    const types = events.map((e) => e.type);
    assert.ok(types.indexOf('token_acquired') < types.lastIndexOf('cache_file_problem'), 'after the token it could not keep');

    // A symlink planted at the lock file's name (the native engine takes the lock; wasm has none).
    const locked = path.join(dir, 'locked.json');
    fs.symlinkSync(path.join(dir, 'elsewhere'), `${locked}.lock`);
    events.length = 0;
    const unlocked = new ServiceAccount(nodeOptions(server.url, locked, { onEvent: (e) => events.push(e) }));
    assert.equal(await unlocked.getToken(), 'at-4');
    unlocked.close();
    assert.deepEqual(
      fileProblems(events),
      engineBackend() === 'native' ? [['lock_failed', `${locked}.lock`, 'symlink']] : [],
    );
    assert.ok(!fs.existsSync(path.join(dir, 'elsewhere')), 'nothing created where the link points');
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an expired snapshot is an ignored event with detail "expired", and no warning', async () => {
  const dir = tempDir();
  const server = await startScriptedTokenServer();
  try {
    const file = path.join(dir, 'token.json');
    const start = Date.now();
    const writer = new ServiceAccount(nodeOptions(server.url, file, { clock: () => start }));
    assert.equal(await writer.getToken(), 'at-1');
    writer.close();
    const later = () => start + 3_600_000; // the token (300 s) is long gone
    const events = [];
    const seen = new ServiceAccount(nodeOptions(server.url, file, { clock: later, onEvent: (e) => events.push(e) }));
    assert.equal(await seen.getToken(), 'at-2');
    seen.close();
    assert.deepEqual(fileProblems(events), [['ignored', file, 'expired']]);

    const warnings = [];
    const stale = new ServiceAccount(
      nodeOptions(server.url, file, { clock: () => later() + 3_600_000, logger: { warn: (m) => warnings.push(m) } }),
    );
    assert.equal(await stale.getToken(), 'at-3');
    stale.close();
    assert.deepEqual(warnings, [], 'routine: not worth a warning');
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a cache file problem is reported once until it changes', () => {
  const dir = tempDir();
  try {
    const reports = [];
    const target = path.join(dir, 'target.json');
    fs.writeFileSync(target, '{}', { mode: 0o600 });
    const file = path.join(dir, 'token.json');
    fs.symlinkSync(target, file);
    const cache = new CacheFile(file, (...report) => reports.push(report));
    assert.equal(cache.readIfChanged(), null);
    assert.equal(cache.readIfChanged(), null);
    assert.deepEqual(reports, [['ignored', file, 'symlink']], 'once');
    fs.unlinkSync(file);
    fs.mkdirSync(file);
    assert.equal(cache.readIfChanged(), null);
    assert.deepEqual(reports.at(-1), ['ignored', file, 'not_regular_file'], 'a new problem is reported');
    fs.rmdirSync(file);
    assert.equal(cache.readIfChanged(), null, 'no file: nothing to report, and the slate is clean');
    fs.symlinkSync(target, file);
    assert.equal(cache.readIfChanged(), null);
    assert.deepEqual(reports.length, 3, 'the symlink again, after the problem went away');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a lock held past the wait is lock_timeout, with an empty detail', async () => {
  const dir = tempDir();
  try {
    const reports = [];
    const file = path.join(dir, 'token.json');
    const cache = new CacheFile(file, (...report) => reports.push(report));
    assert.equal(await cache.lock(1000), 'held');
    const alive = setTimeout(() => {}, 5000); // the wait's timer is unref'd: something must keep the loop running
    try {
      assert.equal(await cache.lock(20), 'busy');
    } finally {
      clearTimeout(alive);
    }
    assert.deepEqual(reports, [['lock_timeout', file, '']]);
    cache.unlock();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('in one process, callers of one cache file take its lock in turn', async () => {
  const dir = tempDir();
  try {
    const file = new CacheFile(path.join(dir, 'token.json'), () => {});
    assert.equal(await file.lock(1000), 'held');
    assert.equal(await file.lock(0), 'busy', 'not free now');
    const order = [];
    const second = file.lock(5000).then((outcome) => {
      order.push(`second ${outcome}`);
      file.unlock();
    });
    order.push('first unlocks');
    file.unlock();
    await second;
    assert.deepEqual(order, ['first unlocks', 'second held']);
    assert.equal(await file.lock(0), 'held', 'free again');
    file.unlock();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
