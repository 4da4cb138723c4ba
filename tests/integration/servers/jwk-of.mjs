// node jwk-of.mjs PEM ALG OUT_PRIVATE_JWK
//
// Reads a PKCS#8 PEM private key (RSA or EC P-256, made per run by
// with-servers.sh with openssl), writes its private JWK (mode 0600) to
// OUT_PRIVATE_JWK and prints {"kid","alg","kty","public_jwk"} on stdout.
// The kid is the RFC 7638 thumbprint (base64url SHA-256 of the required
// members, sorted, no spaces), so it is stable for a given key.
import { createHash, createPrivateKey } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const [pemPath, alg, outPath] = process.argv.slice(2);
if (!pemPath || !alg || !outPath) {
  console.error("usage: node jwk-of.mjs PEM ALG OUT_PRIVATE_JWK");
  process.exit(2);
}
const key = createPrivateKey(readFileSync(pemPath));
const priv = key.export({ format: "jwk" });
const required = priv.kty === "RSA" ? ["e", "kty", "n"] : ["crv", "kty", "x", "y"];
if (priv.kty === "EC" && (priv.crv !== "P-256" || alg !== "ES256")) throw new Error(`EC key needs P-256/ES256 (got ${priv.crv}/${alg})`);
if (priv.kty === "RSA" && !/^(RS|PS)(256|384|512)$/.test(alg)) throw new Error(`${alg} does not fit an RSA key`);
const thumbInput = JSON.stringify(Object.fromEntries(required.map((k) => [k, priv[k]])));
const kid = createHash("sha256").update(thumbInput).digest("base64url");
const pub = Object.fromEntries(required.map((k) => [k, priv[k]]));
const publicJwk = { ...pub, kid, alg, use: "sig" };
writeFileSync(outPath, JSON.stringify({ ...priv, kid, alg, use: "sig" }) + "\n", { mode: 0o600 });
console.log(JSON.stringify({ kid, alg, kty: priv.kty, public_jwk: publicJwk }));
