// The hand-written declarations (index.d.ts) accept the typed examples in test/types/
// (the API in use; the `fetch` option given global, undici and custom-agent fetches): `tsc --noEmit`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

test('tsc --noEmit accepts the typed examples', () => {
  const tsc = `${root}node_modules/typescript/bin/tsc`;
  assert.ok(fs.existsSync(tsc), 'typescript is a devDependency: run `npm install` (or make test) first');
  const run = spawnSync(process.execPath, [tsc, '--noEmit', '-p', `${root}test/types`], { encoding: 'utf8' });
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
});
