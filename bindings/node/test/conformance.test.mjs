// Replays every shared conformance scenario (tests/conformance/scenarios/*.json,
// format in tests/conformance/README.md) through the binding's TokenCache.
// Options go in as camelCase, as a JS caller writes them; outputs are converted
// back to the canonical snake_case shape and matched as subsets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
// tokenwell/signed: scenarios sign with RSA and EC keys, which the default wasm engine leaves out.
import { TokenCache, TokenError } from '../signed.js';
import { camelKeys, canonical, snake, subsetMismatch } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const scenarioDir = process.env.TOKENWELL_SCENARIOS ?? path.join(here, '../../../tests/conformance/scenarios');
const files = fs.existsSync(scenarioDir)
  ? fs.readdirSync(scenarioDir).filter((f) => f.endsWith('.json')).sort()
  : [];

function runStep(cache, step) {
  const at = step.at ?? 0;
  switch (step.do) {
    case 'poll':
      return { raw: cache.poll(at) };
    case 'respond': {
      const body = step.body_base64 !== undefined ? Buffer.from(step.body_base64, 'base64') : (step.body ?? '');
      return { raw: cache.handleResponse(step.fetch_id, step.status, step.headers ?? [], body, at) };
    }
    case 'transport_error':
      return { raw: cache.handleTransportError(step.fetch_id, step.kind, step.message ?? '', at) };
    case 'invalidate':
      return { raw: { result: cache.invalidate(step.token, at) } };
    case 'replace_secrets': {
      const raw = cache.replaceSecrets(step.secrets, at);
      if (raw.result === 'error') {
        return { raw, actual: { result: 'error', error: { field: snake(raw.error.field), problem: raw.error.problem } } };
      }
      return { raw };
    }
    case 'next_wakeup':
      return { raw: { at: cache.nextWakeup() } };
    case 'export_snapshot': {
      const text = cache.exportSnapshot(at);
      return { raw: text === null ? { result: 'none' } : { result: 'snapshot', snapshot: JSON.parse(text) } };
    }
    case 'import_snapshot': {
      const text = step.snapshot_text ?? JSON.stringify(step.snapshot);
      return { raw: cache.importSnapshot(text, at) };
    }
    case 'events':
      return { raw: { events: cache.drainEvents() } };
    default:
      throw new Error(`unknown step kind ${JSON.stringify(step.do)}`);
  }
}

let totalSteps = 0;

test('the shared scenarios exist', () => {
  assert.ok(files.length > 0, `no scenario in ${scenarioDir}`);
});

for (const file of files) {
  test(`conformance: ${file.replace(/\.json$/, '')}`, () => {
    const scenario = JSON.parse(fs.readFileSync(path.join(scenarioDir, file), 'utf8'));
    const options = camelKeys(scenario.config);
    if (scenario.expect_config_error) {
      let error;
      try {
        new TokenCache(options, scenario.entropy ?? 0);
      } catch (e) {
        error = e;
      }
      assert.ok(error instanceof TokenError, 'the configuration was accepted');
      assert.equal(error.kind, 'config');
      const mismatch = subsetMismatch(scenario.expect_config_error, canonical(error), 'config_error');
      assert.equal(mismatch, null, `${mismatch}\n  actual: ${JSON.stringify(canonical(error))}`);
      totalSteps += 1;
      return;
    }
    const cache = new TokenCache(options, scenario.entropy ?? 0);
    scenario.steps.forEach((step, i) => {
      const { raw, actual = canonical(raw) } = runStep(cache, step);
      const what = `step ${i} (${step.do})`;
      if (step.expect !== undefined) {
        const mismatch = subsetMismatch(step.expect, actual);
        assert.equal(mismatch, null, `${what}: ${mismatch}\n  actual: ${JSON.stringify(actual)}`);
      }
      for (const needle of step.forbid_substrings ?? []) {
        const text = JSON.stringify(actual);
        assert.ok(!text.includes(needle), `${what}: output contains ${JSON.stringify(needle)}: ${text}`);
        const shown = inspect(raw, { depth: 10 });
        assert.ok(!shown.includes(needle), `${what}: inspect output contains ${JSON.stringify(needle)}`);
      }
    });
    totalSteps += scenario.steps.length;
  });
}

test('conformance summary', (t) => {
  t.diagnostic(`${files.length} scenarios, ${totalSteps} steps replayed through the Node binding`);
});
