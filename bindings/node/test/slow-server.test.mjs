// A scripted slow loopback token server (not a real authorization server): it
// sends its status line, its headers or its body one byte a second. The whole
// exchange must end within `timeoutMs` + 1 s as a `timeout` TokenError, and a
// caller arriving meanwhile must share that request, not start a second one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ServiceAccount, TokenError } from '../index.js';

const TIMEOUT_MS = 2000;
const SLACK_MS = 1000;

const BODY = JSON.stringify({ access_token: 'slow-token', token_type: 'bearer', expires_in: 300 });
const HEAD = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${BODY.length}\r\n\r\n`;

/**
 * Answers each connection by sending `fast` at once, then `slow` one byte a
 * second. Counts connections; `close()` drops them all.
 */
async function startSlowServer(fast, slow) {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.write(fast);
      let i = 0;
      const timer = setInterval(() => {
        if (i >= slow.length || socket.destroyed) {
          clearInterval(timer);
          return;
        }
        socket.write(slow[i++]);
      }, 1000);
      socket.on('close', () => clearInterval(timer));
    });
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  let connections = 0;
  server.on('connection', () => connections++);
  return {
    url: `http://127.0.0.1:${server.address().port}/oauth2/token`,
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const STAGES = {
  'status line': ['', HEAD + BODY],
  headers: ['HTTP/1.1 200 OK\r\n', HEAD.slice('HTTP/1.1 200 OK\r\n'.length) + BODY],
  body: [HEAD + BODY.slice(0, 2), BODY.slice(2)],
};

const TRANSPORTS = {
  'the default transport': {},
  'the global fetch': { fetch: (input, init) => globalThis.fetch(input, init) },
};

for (const [stage, [fast, slow]] of Object.entries(STAGES)) {
  test(`slow loopback server, ${stage} one byte a second: timeout within timeoutMs + 1 s, one request`, { concurrency: true }, async (t) => {
    await Promise.all(
      Object.entries(TRANSPORTS).map(([name, extra]) =>
        t.test(name, async () => {
          const server = await startSlowServer(fast, slow);
          const account = new ServiceAccount({
            tokenUrl: server.url,
            clientId: 'billing',
            clientSecret: 'slow-secret',
            timeoutMs: TIMEOUT_MS,
            backgroundRefresh: false,
            ...extra,
          });
          try {
            const started = performance.now();
            const settled = (promise) =>
              promise.then(
                () => assert.fail('a token was served'),
                (error) => ({ error, at: performance.now() - started }),
              );
            const first = settled(account.getToken());
            // A second caller while the first request hangs: it waits for that one.
            await sleep(TIMEOUT_MS / 3);
            const second = settled(account.getToken());
            for (const { error, at } of await Promise.all([first, second])) {
              assert.ok(error instanceof TokenError, `a TokenError, got ${error}`);
              assert.equal(error.kind, 'timeout');
              assert.equal(error.retryable, true);
              assert.ok(at <= TIMEOUT_MS + SLACK_MS, `${stage} via ${name}: ended after ${Math.round(at)} ms`);
            }
            assert.equal(server.connections(), 1, 'one token request for both callers');
          } finally {
            account.close();
            await server.close();
          }
        }),
      ),
    );
  });
}
