"""Client assertions re-implemented from the specifications, for generate.py.

Nothing here comes from the engine: the entropy pool (core/src/entropy.rs
module docs), RSASSA-PKCS1-v1_5 (RFC 8017 §8.2), ECDSA on P-256 with RFC 6979
deterministic nonces, and HMAC (stdlib) are written out in plain Python, so
the scenarios check the engine's bytes against the specifications.
"""

import base64
import hashlib
import hmac
import json
from pathlib import Path

KEYS = Path(__file__).resolve().parent / "keys"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_text(name: str) -> str:
    return (KEYS / name).read_text()


def jwk(name: str) -> dict:
    return json.loads(key_text(name))


def as_int(text: str) -> int:
    return int.from_bytes(unb64url(text), "big")


# ---- the entropy pool ---------------------------------------------------------------------


class Pool:
    """core/src/entropy.rs: SHA-256 key ratchet seeded with the scenario's entropy."""

    def __init__(self, seed: int):
        self.key = hashlib.sha256(b"tokenwell-entropy-v1" + seed.to_bytes(8, "big")).digest()

    def fill(self, n: int) -> bytes:
        out = b"".join(
            hashlib.sha256(b"tokenwell-entropy-out" + self.key + i.to_bytes(8, "big")).digest()
            for i in range((n + 31) // 32)
        )[:n]
        self.key = hashlib.sha256(b"tokenwell-entropy-next" + self.key).digest()
        return out


# ---- signatures -----------------------------------------------------------------------------

SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def rs256(key: dict, message: bytes) -> bytes:
    n, d = as_int(key["n"]), as_int(key["d"])
    k = (n.bit_length() + 7) // 8
    t = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")


# P-256 (SEC 2 / FIPS 186-4)
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
A = P - 3
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        slope = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def _mul(k, point):
    result = None
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _rfc6979_k(x: int, h1: bytes):
    """RFC 6979 §3.2 with HMAC-SHA-256, qlen = 256."""
    xb = x.to_bytes(32, "big")
    hb = (int.from_bytes(h1, "big") % N).to_bytes(32, "big")
    v, k = b"\x01" * 32, b"\x00" * 32
    k = hmac.new(k, v + b"\x00" + xb + hb, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    k = hmac.new(k, v + b"\x01" + xb + hb, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    while True:
        v = hmac.new(k, v, hashlib.sha256).digest()
        candidate = int.from_bytes(v, "big")
        if 1 <= candidate < N:
            yield candidate
        k = hmac.new(k, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(k, v, hashlib.sha256).digest()


def es256(key: dict, message: bytes) -> bytes:
    d = as_int(key["d"])
    h = hashlib.sha256(message).digest()
    e = int.from_bytes(h, "big") % N
    for k in _rfc6979_k(d, h):
        r = _mul(k, G)[0] % N
        if r == 0:
            continue
        s = pow(k, -1, N) * (e + r * d) % N
        if s != 0:
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def hs256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def public_thumbprint(key: dict) -> str:
    """RFC 7638 JWK thumbprint (SHA-256)."""
    if key["kty"] == "RSA":
        canonical = {"e": key["e"], "kty": "RSA", "n": key["n"]}
    else:
        canonical = {"crv": key["crv"], "kty": "EC", "x": key["x"], "y": key["y"]}
    return b64url(hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).digest())


# ---- the assertion ----------------------------------------------------------------------------


def assertion(pool: Pool, alg: str, signer, kid, client_id: str, aud: str, now_ms: int, lifetime_ms: int = 60_000):
    """One client assertion; draws 16 bytes (jti) and 32 (the signature's own pool) from ``pool``."""
    jti = b64url(pool.fill(16))
    pool.fill(32)
    header = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    iat = now_ms // 1000
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "jti": jti, "iat": iat, "exp": iat + lifetime_ms // 1000}
    enc = lambda d: b64url(json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode())
    signing_input = f"{enc(header)}.{enc(claims)}"
    return f"{signing_input}.{b64url(signer(signing_input.encode()))}"


if __name__ == "__main__":
    # RFC 6979 A.2.5 (P-256, SHA-256, message "sample"): the published k and signature.
    x = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
    k = next(_rfc6979_k(x, hashlib.sha256(b"sample").digest()))
    assert k == 0xA6E3C57DD01ABE90086538398355DD4C3B17AA873382B0F24D6129493D8AAD60, hex(k)
    sig = es256({"d": b64url(x.to_bytes(32, "big"))}, b"sample")
    assert sig.hex().upper() == (
        "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
        "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"), sig.hex()
    print("RFC 6979 A.2.5 ok")
