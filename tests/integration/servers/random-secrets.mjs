// Random client secrets for the "bulk" clients of the integration servers
// (with-servers.sh: Hydra's, through hydra-bulk-clients.mjs; oidc-provider's,
// in oidc-provider/server.mjs).
//
// Every secret is 8-40 characters (code points) of random printable ASCII
// (0x20-0x7E, space and `% + : & = " \` included) and, with `unicode: true`,
// random non-ASCII characters (Latin-1 and Latin Extended-A letters, Greek,
// Cyrillic, CJK ideographs, emoji outside the BMP, combining marks). Each one
// holds at least one of the characters that need form-urlencoding in HTTP Basic
// (RFC 6749 2.3.1) and, with `unicode`, at least one non-ASCII character.
// Leading and trailing spaces are allowed: neither server trims secrets.
//
// Randomness: node:crypto (a CSPRNG), so there is no seed to log or replay.

import crypto from 'node:crypto';

const ASCII = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i));
// Characters a naive client gets wrong in HTTP Basic: they must be
// form-urlencoded before base64 (and `"`, `\` must survive JSON).
export const RESERVED = [' ', '%', '+', ':', '&', '=', '"', '\\'];
const UNICODE_RANGES = [
  [0xa1, 0xff], // Latin-1: é, ß, ¿, ...
  [0x100, 0x17f], // Latin Extended-A
  [0x3b1, 0x3c9], // Greek lower case
  [0x410, 0x44f], // Cyrillic
  [0x4e00, 0x9fff], // CJK ideographs: 中, ...
  [0x1f300, 0x1f64f], // emoji (4 bytes in UTF-8, a surrogate pair in UTF-16)
  [0x300, 0x36f], // combining diacritical marks (may follow anything, or start the secret)
];

const pick = (items) => items[crypto.randomInt(items.length)];
const randomUnicode = () => {
  const [lo, hi] = pick(UNICODE_RANGES);
  return String.fromCodePoint(lo + crypto.randomInt(hi - lo + 1));
};

/** One random secret; `unicode` mixes in non-ASCII characters (about 1 in 3). */
export function randomSecret({ unicode = false, minLength = 8, maxLength = 40 } = {}) {
  const n = minLength + crypto.randomInt(maxLength - minLength + 1);
  const chars = Array.from({ length: n }, () => (unicode && crypto.randomInt(3) === 0 ? randomUnicode() : pick(ASCII)));
  const reservedAt = crypto.randomInt(n);
  chars[reservedAt] = pick(RESERVED);
  if (unicode && !chars.some((c) => c.codePointAt(0) > 0x7e)) {
    chars[(reservedAt + 1 + crypto.randomInt(n - 1)) % n] = randomUnicode();
  }
  const secret = chars.join('');
  // Valid UTF-8 (no lone surrogate can come out of the ranges above; checked anyway).
  if (Buffer.from(secret, 'utf8').toString('utf8') !== secret) throw new Error('random secret is not valid UTF-8');
  return secret;
}

/** `count` random secrets. */
export const randomSecrets = (count, options) => Array.from({ length: count }, () => randomSecret(options));
