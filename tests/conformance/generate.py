#!/usr/bin/env python3
"""Writes tests/conformance/scenarios/*.json: the timelines every host replays.

Expected values are computed here independently of the engine (form encoding,
Basic credentials, lifetimes, margins, backoff steps, the snapshot
fingerprint and the SplitMix64 jitter are re-implemented in a few lines of
Python), so a scenario checks the engine against the specification, not
against itself.

    python3 tests/conformance/generate.py          # rewrite the files
    python3 tests/conformance/generate.py --check  # fail if they are stale
"""

import base64
import hashlib
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "scenarios"
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
URL = "https://auth.example/oauth2/token"
CID = "billing-worker"
SECRET = "s3cr3t-value"
HOLD = 300_000
DEADLINE = 11_000  # request_timeout_ms + 1 s grace

SCENARIOS = []


# ---- independent re-implementations of the specification ------------------------


def form(value: str) -> str:
    """application/x-www-form-urlencoded serializer (WHATWG / RFC 6749 Appendix B)."""
    out = []
    for b in value.encode("utf-8"):
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "*-._"):
            out.append(c)
        elif c == " ":
            out.append("+")
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def basic(cid: str, secret: str) -> str:
    raw = f"{form(cid)}:{form(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def headers(cid=CID, secret=SECRET, method="basic"):
    h = [["Content-Type", "application/x-www-form-urlencoded"], ["Accept", "application/json"]]
    if method == "basic":
        h.append(["Authorization", basic(cid, secret)])
    return h


def body(scope=(), audience=(), extra=(), post=None):
    parts = ["grant_type=client_credentials"]
    if scope:
        parts.append("scope=" + form(" ".join(scope)))
    parts += ["audience=" + form(a) for a in audience]
    parts += [form(k) + "=" + form(v) for k, v in extra]
    if post:
        parts += ["client_id=" + form(post[0]), "client_secret=" + form(post[1])]
    return "&".join(parts)


def times(received, lifetime, margin_cfg=30_000, ahead=0.75):
    margin = min(margin_cfg, lifetime // 2)
    expires = received + lifetime
    usable = expires - margin
    refresh = received + int((usable - received) * ahead)
    refresh = max(min(refresh, usable - 1), received)
    return {"received_at": received, "expires_at": expires, "usable_until": usable, "refresh_at": refresh}


def fingerprint(url, cid, scopes=(), audiences=()):
    h = hashlib.sha256()
    for part in ["tokenwell-fingerprint-v1", url, cid, " ".join(sorted(set(scopes))), "\x1f".join(sorted(set(audiences)))]:
        data = part.encode()
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def unit(self):
        return (self.next() >> 11) / float(1 << 53)


def jwt(claims):
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{enc({'alg': 'RS256', 'typ': 'JWT'})}.{enc(claims)}.c2lnbmF0dXJl"


# ---- scenario building ------------------------------------------------------------


def config(**overrides):
    c = {
        "token_url": URL,
        "client_id": CID,
        "client_secret": SECRET,
        "refresh_ahead_jitter": 0,
        "backoff_jitter": False,
    }
    c.update(overrides)
    return {k: v for k, v in c.items() if v is not None}


def scenario(name, description, covers, cfg, steps, entropy=0):
    SCENARIOS.append(
        {"name": name, "description": description, "covers": covers, "entropy": entropy, "config": cfg, "steps": steps}
    )


def config_error(name, description, cfg, field, problem=None):
    """A configuration the engine refuses: the field at fault and, since every
    host shows the engine's own wording, the problem word for word."""
    expected = {"field": field} if problem is None else {"field": field, "problem": problem}
    SCENARIOS.append(
        {"name": name, "description": description, "covers": ["configuration"], "config": cfg,
         "expect_config_error": expected}
    )


def poll(at, **expect):
    return {"do": "poll", "at": at, "expect": expect}


def send(at, fetch_id, **request):
    return poll(at, result="send", request={"fetch_id": fetch_id, **request})


def ok_body(token="at-1", expires_in=3600, token_type="Bearer", **more):
    d = {"access_token": token, "token_type": token_type}
    if expires_in is not None:
        d["expires_in"] = expires_in
    d.update(more)
    return json.dumps(d)


def respond(at, fetch_id, status=200, body_text=None, hdrs=None, **expect):
    step = {"do": "respond", "at": at, "fetch_id": fetch_id, "status": status,
            "headers": [["Content-Type", "application/json"]] if hdrs is None else hdrs,
            "body": ok_body() if body_text is None else body_text}
    if expect:
        step["expect"] = expect
    return step


def got(at, fetch_id, token="at-1", lifetime=3_600_000, body_text=None, **token_fields):
    text = body_text if body_text is not None else ok_body(token, lifetime // 1000)
    return respond(at, fetch_id, 200, text, result="token",
                   token={"access_token": token, **times(at, lifetime), **token_fields})


def err(kind, **fields):
    return {"result": "error", "error": {"kind": kind, **fields}}


def fail(at, kind, **fields):
    return poll(at, result="fail", error={"kind": kind, **fields})


def ready(at, token="at-1"):
    return poll(at, result="ready", token={"access_token": token})


def wakeup(at):
    return {"do": "next_wakeup", "expect": {"at": at}}


def events(*evs):
    return {"do": "events", "expect": {"events": list(evs)}}


def drain():
    return {"do": "events"}


def backoff(n, initial=1000, maximum=60_000, minimum=100):
    return max(min(maximum, initial * 2 ** (n - 1)), minimum)


# ---- 1. request building --------------------------------------------------------------

T = T0
scenario(
    "request-basic-exact",
    "The first poll asks for a client_secret_basic request with exact headers and body; the answer is served.",
    ["request building", "client_secret_basic", "scope"],
    config(scope=["billing:read", "billing:write"]),
    [
        poll(T, result="send", request={
            "fetch_id": 1, "method": "POST", "url": URL, "headers": headers(),
            "body": body(scope=["billing:read", "billing:write"]), "timeout_ms": 10_000}),
        got(T + 40, 1, token_type="Bearer", scope=["billing:read", "billing:write"], lifetime_source="expires_in"),
        ready(T + 1000),
    ],
)

scenario(
    "request-post-exact",
    "client_secret_post puts client_id and client_secret, form-encoded, at the end of the body and sends no Authorization.",
    ["request building", "client_secret_post"],
    config(auth_method="client_secret_post", scope="billing:read"),
    [
        send(T, 1, headers=headers(method="post"),
             body=body(scope=["billing:read"], post=(CID, SECRET))),
    ],
)

scenario(
    "request-scope-encoding",
    "Scopes are space-joined and the joined value is form-encoded (space as +, : / as %XX).",
    ["request building", "scope"],
    config(scope=["billing:read", "https://api.example/x", "a~b"]),
    [send(T, 1, body="grant_type=client_credentials&scope=billing%3Aread+https%3A%2F%2Fapi.example%2Fx+a%7Eb")],
)

scenario(
    "request-audiences-one-parameter-each",
    "Each audience is its own form parameter, in order.",
    ["request building", "audiences"],
    config(audience=["https://api.one.example", "https://api.two.example/v1"]),
    [send(T, 1, body=body(audience=["https://api.one.example", "https://api.two.example/v1"]))],
)

scenario(
    "request-scope-string-form",
    "A scope given as one space-separated string is split into tokens.",
    ["request building", "scope"],
    config(scope="  billing:read   billing:write ", audience="https://api.example"),
    [send(T, 1, body=body(scope=["billing:read", "billing:write"], audience=["https://api.example"]))],
)

scenario(
    "request-extra-params",
    "Extra parameters follow scope and audience, form-encoded.",
    ["request building", "extra parameters"],
    config(scope="s", audience=["aud"], extra_params=[["resource", "https://r.example/a b"], ["tenant", "é&="]]),
    [send(T, 1, body=body(scope=["s"], audience=["aud"], extra=[("resource", "https://r.example/a b"), ("tenant", "é&=")]))],
)

scenario(
    "request-extra-params-mapping",
    "Extra parameters given as a mapping: one parameter per value, names in order, each name's values in theirs.",
    ["request building", "extra parameters"],
    config(scope="s", extra_params={"tenant": "é&=", "resource": ["https://r.example/b", "https://r.example/a"]}),
    [send(T, 1, body=body(scope=["s"], extra=[("resource", "https://r.example/b"), ("resource", "https://r.example/a"),
                                               ("tenant", "é&=")]))],
)

SPECIAL_SECRET = "p@ss: %+&= é/"
SPECIAL_ID = "svc:billing+1"
scenario(
    "request-basic-special-characters",
    "RFC 6749 §2.3.1: id and secret with : % + & space = é are form-encoded before base64.",
    ["request building", "client_secret_basic", "special characters"],
    config(client_id=SPECIAL_ID, client_secret=SPECIAL_SECRET),
    [send(T, 1, headers=headers(cid=SPECIAL_ID, secret=SPECIAL_SECRET))],
)

scenario(
    "request-post-special-characters",
    "client_secret_post form-encodes the same characters in the body.",
    ["request building", "client_secret_post", "special characters"],
    config(client_id=SPECIAL_ID, client_secret=SPECIAL_SECRET, auth_method="client_secret_post"),
    [send(T, 1, body=body(post=(SPECIAL_ID, SPECIAL_SECRET)))],
)

scenario(
    "request-minimal-body",
    "Without scope or audience the body is only the grant type.",
    ["request building"],
    config(),
    [send(T, 1, body="grant_type=client_credentials", url=URL, method="POST")],
)

scenario(
    "request-loopback-http-allowed",
    "Plain http is accepted for a loopback token endpoint (local Hydra).",
    ["configuration"],
    config(token_url="http://127.0.0.1:4444/oauth2/token"),
    [send(T, 1, url="http://127.0.0.1:4444/oauth2/token")],
)

scenario(
    "request-insecure-http-explicitly-allowed",
    "A non-loopback http endpoint is accepted only with allow_insecure_http.",
    ["configuration"],
    config(token_url="http://hydra.internal:4444/oauth2/token", allow_insecure_http=True),
    [send(T, 1, url="http://hydra.internal:4444/oauth2/token")],
)

# ---- 2. configuration errors ------------------------------------------------------------

config_error("config-missing-token-url", "token_url is required.", config(token_url=None), "token_url",
             problem="is required")
config_error("config-bad-url", "token_url must be a URL.", config(token_url="hydra/oauth2/token"), "token_url",
             problem="is not a valid URL (relative URL without a base)")
config_error("config-non-ascii-host", "An internationalized host name must be written in punycode (every "
             "build leaves out the Unicode IDNA tables).", config(token_url="https://b\u00fccher.example/t"), "token_url",
             problem="has a host name that is not ASCII: write it in its punycode form (https://xn--...)")
config_error("config-http-not-loopback", "http to a remote host is refused.",
             config(token_url="http://auth.example/oauth2/token"), "token_url",
             problem="must use https (plain http is allowed only for loopback hosts unless allow_insecure_http is set)")
config_error("config-url-with-credentials", "Credentials in the URL are refused (and not echoed).",
             config(token_url="https://user:pw@auth.example/t"), "token_url",
             problem="must not contain credentials (user:password@)")
config_error("config-empty-client-id", "client_id must not be empty.", config(client_id=""), "client_id",
             problem="must not be empty")
config_error("config-no-secret", "A secret is required.", config(client_secret=None), "client_secret",
             problem="is required (or private_key for private_key_jwt)")
config_error("config-empty-secret-in-list", "Every secret must be non-empty.", config(client_secret=["a", ""]),
             "client_secret[1]",
             problem="must not be empty")
config_error("config-empty-scope-token", "An empty scope token is refused.", config(scope=["billing:read", ""]),
             "scope[1]",
             problem="empty scope token")
config_error("config-scope-with-space", "A list element holding a space is not one scope token.",
             config(scope=["billing:read billing:write"]), "scope[0]",
             problem="contains ' ', which RFC 6749 §3.3 does not allow in a scope token")
config_error("config-bad-auth-method", "auth_method is one of two names.", config(auth_method="basic"), "auth_method",
             problem="must be \"client_secret_basic\", \"client_secret_post\", \"private_key_jwt\" or \"client_secret_jwt\"")
config_error("config-unknown-option", "Unknown options are refused by name.", config(refresh_margin=5), "refresh_margin",
             problem="is not a known option")
config_error("config-reserved-extra-param", "extra_params cannot override grant_type.",
             config(extra_params=[["grant_type", "password"]]), "extra_params",
             problem="\"grant_type\" is set by the engine and cannot be overridden")
config_error("config-empty-audience", "An empty audience is refused.", config(audience=["a", " "]), "audience[1]",
             problem="must not be empty")

# ---- 3. response parsing and lifetimes ---------------------------------------------------

def lifetime_scenario(name, description, expires_json, lifetime, source="expires_in", clamped=False, **cfg):
    text = '{"access_token":"at-1","token_type":"Bearer"%s}' % (
        "" if expires_json is None else ',"expires_in":' + expires_json)
    scenario(name, description, ["response parsing", "lifetime"], config(**cfg), [
        poll(T, result="send"),
        respond(T + 100, 1, 200, text, result="token",
                token={"access_token": "at-1", "lifetime_source": source, **times(T + 100, lifetime)}),
        events({"type": "refresh_started"},
               {"type": "token_acquired", "lifetime_source": source, "lifetime_clamped": clamped}),
    ])


lifetime_scenario("lifetime-expires-in-number", "expires_in 3600 → one hour.", "3600", 3_600_000)
lifetime_scenario("lifetime-expires-in-string", "expires_in \"3600\" (a string) is read as a number.", '"3600"', 3_600_000)
lifetime_scenario("lifetime-expires-in-missing", "No expires_in and no JWT: the default lifetime (5 min).", None, 300_000,
                  "default")
lifetime_scenario("lifetime-expires-in-missing-custom-default", "The default lifetime is configurable.", None, 120_000,
                  "default", default_lifetime_ms=120_000)
lifetime_scenario("lifetime-expires-in-zero", "expires_in 0 is raised to the minimum lifetime (1 s).", "0", 1_000,
                  clamped=True)
lifetime_scenario("lifetime-expires-in-negative", "expires_in -5 is raised to the minimum lifetime.", "-5", 1_000,
                  clamped=True)
lifetime_scenario("lifetime-expires-in-fractional", "expires_in 1.5 is 1500 ms.", "1.5", 1_500)
lifetime_scenario("lifetime-expires-in-absurd", "expires_in 10^12 is lowered to the maximum (24 h).", "1000000000000",
                  86_400_000, clamped=True)
lifetime_scenario("lifetime-expires-in-not-numeric", "A non-numeric expires_in is treated as absent.", '"soon"', 300_000,
                  "default")
lifetime_scenario("lifetime-expires-in-null", "expires_in null is treated as absent.", "null", 300_000, "default")

JWT_EXP = (T0 + 100) // 1000 + 600
JWT_TOKEN = jwt({"sub": CID, "exp": JWT_EXP, "iat": T0 // 1000})
scenario("lifetime-jwt-exp-fallback", "No expires_in, but the token is a JWT: its exp claim sets the expiry.",
         ["response parsing", "lifetime", "jwt"], config(), [
             poll(T, result="send"),
             respond(T + 100, 1, 200, json.dumps({"access_token": JWT_TOKEN, "token_type": "bearer"}), result="token",
                     token={"lifetime_source": "jwt_exp", **times(T + 100, JWT_EXP * 1000 - (T + 100))}),
         ])
scenario("lifetime-expires-in-wins-over-jwt", "When both are present, expires_in is used.",
         ["response parsing", "lifetime", "jwt"], config(), [
             poll(T, result="send"),
             respond(T + 100, 1, 200, json.dumps({"access_token": JWT_TOKEN, "token_type": "Bearer", "expires_in": 60}),
                     result="token", token={"lifetime_source": "expires_in", **times(T + 100, 60_000)}),
         ])


def token_type_scenario(name, description, token_type_json, ok):
    text = '{"access_token":"at-1","expires_in":3600%s}' % (
        "" if token_type_json is None else ',"token_type":' + token_type_json)
    expect = {"result": "token", "token": {"token_type": "Bearer"}} if ok else err(
        "malformed_response", fault="malformed_response", retryable=True, status=200, retry_at=T + 100 + 1000)
    scenario(name, description, ["response parsing", "token_type"], config(), [
        poll(T, result="send"), {**respond(T + 100, 1, 200, text), "expect": expect}])


token_type_scenario("token-type-bearer", "token_type Bearer is accepted.", '"Bearer"', True)
token_type_scenario("token-type-lowercase", "token_type is compared case-insensitively.", '"bearer"', True)
token_type_scenario("token-type-missing", "A missing token_type is taken as Bearer.", None, True)
token_type_scenario("token-type-mac", "token_type mac is refused with a clear, retryable error.", '"mac"', False)


def malformed_scenario(name, description, status, text, kind, hdrs=None, says=None):
    expect = err(kind, status=status, retry_at=T + 100 + 1000, retryable=True)
    if says is not None:
        expect["error"]["description"] = says
    scenario(name, description, ["response parsing", "errors"], config(), [
        poll(T, result="send"),
        {**respond(T + 100, 1, status, text, [["Content-Type", "text/html"]] if hdrs is None else hdrs),
         "expect": expect},
        fail(T + 200, kind, retry_at=T + 1100, status=status),
        send(T + 1100, 2),
    ])


HTML_PAGE = "with an HTML body (not JSON; a proxy or load balancer page?)"
malformed_scenario("response-html-502", "An HTML 502 from a proxy is a server error: retried with backoff.", 502,
                   "<html><body><h1>502 Bad Gateway</h1></body></html>", "server_error", says="HTTP 502 " + HTML_PAGE)
malformed_scenario("response-html-200", "An HTML page with 200 (a captive proxy) is a malformed response.", 200,
                   "<!DOCTYPE html><html><body>Sign in</body></html>", "malformed_response",
                   says="HTTP 200 " + HTML_PAGE)
malformed_scenario("response-html-without-content-type", "An HTML page is recognised by its first bytes when no "
                   "Content-Type says so.", 200, "  <!doctype html><p>Sign in</p>", "malformed_response", hdrs=[],
                   says="HTTP 200 " + HTML_PAGE)
malformed_scenario("response-html-content-type-only", "A Content-Type naming HTML is enough to say so, whatever the "
                   "body starts with.", 503, "<h1>Service Unavailable</h1>", "server_error",
                   hdrs=[["Content-Type", "text/html; charset=utf-8"]], says="HTTP 503 " + HTML_PAGE)
malformed_scenario("response-text-with-content-type", "A plain-text error page is described with its Content-Type.",
                   502, "upstream connect error", "server_error", hdrs=[["Content-Type", "text/plain"]],
                   says="HTTP 502 with a text/plain body that is not valid JSON")
malformed_scenario("response-text-without-content-type", "A body that is not JSON, without a Content-Type.", 500,
                   "upstream connect error", "server_error", hdrs=[],
                   says="HTTP 500 with a body that is not valid JSON")
malformed_scenario("response-json-not-an-object", "A JSON value that is not an object is not a token response.", 200,
                   '["at-1"]', "malformed_response", hdrs=[["Content-Type", "application/json"]],
                   says="HTTP 200 with a JSON body that is not a token response object")
malformed_scenario("response-empty-body", "An empty 200 body is malformed.", 200, "", "malformed_response",
                   hdrs=[["Content-Type", "application/json"]], says="HTTP 200 with an empty body")
malformed_scenario("response-invalid-json", "Invalid JSON is malformed.", 200, '{"access_token": "at-1",',
                   "malformed_response", hdrs=[["Content-Type", "application/json"]])
malformed_scenario("response-missing-access-token", "A JSON object without access_token is malformed.", 200,
                   '{"token_type":"Bearer","expires_in":3600}', "malformed_response",
                   hdrs=[["Content-Type", "application/json"]], says="response has no access_token")
malformed_scenario("response-empty-access-token", "An empty access_token is no token (it would be an empty "
                   "Authorization header).", 200, '{"access_token":"","token_type":"Bearer","expires_in":3600}',
                   "malformed_response", hdrs=[["Content-Type", "application/json"]], says="access_token is empty")
malformed_scenario("response-access-token-not-a-string", "An access_token that is not a string is malformed.", 200,
                   '{"access_token":12345,"token_type":"Bearer"}', "malformed_response",
                   hdrs=[["Content-Type", "application/json"]], says="access_token is not a string")
malformed_scenario("response-redirect", "Redirects are not followed: a 302 is malformed, and the description says "
                   "to check token_url.", 302, "", "malformed_response",
                   hdrs=[["Location", "https://elsewhere.example/"]],
                   says="unexpected HTTP 302 (redirects are not followed; check token_url)")

scenario("response-error-body-with-200", "A 200 carrying an RFC 6749 error object is that error, not a token.",
         ["response parsing", "errors"], config(), [
             poll(T, result="send"),
             {**respond(T + 100, 1, 200, '{"error":"temporarily_unavailable","error_description":"try later"}'),
              "expect": err("temporarily_unavailable", status=200, oauth_error="temporarily_unavailable",
                            description="try later", retryable=True, retry_at=T + 1100)},
         ])

scenario("response-body-too-large", "A body over max_response_bytes is refused before parsing.",
         ["response parsing", "body size limit"], config(max_response_bytes=128), [
             poll(T, result="send"),
             {**respond(T + 100, 1, 200, ok_body("a" * 200)),
              "expect": err("malformed_response", description="response body is larger than 128 bytes")},
         ])

scenario("response-granted-scope", "The scope the server grants is the token's scope.",
         ["response parsing", "scope"], config(scope="billing:read billing:write"), [
             poll(T, result="send"),
             respond(T + 100, 1, 200, ok_body(scope="billing:read"), result="token",
                     token={"scope": ["billing:read"]}),
         ])

scenario("response-binary-body", "Non-UTF-8 bytes are a malformed response, never a crash.",
         ["response parsing", "errors"], config(), [
             poll(T, result="send"),
             {"do": "respond", "at": T + 100, "fetch_id": 1, "status": 200, "headers": [],
              "body_base64": base64.b64encode(bytes(range(256))).decode(),
              "expect": err("malformed_response", retryable=True)},
         ])

# ---- 4. the cache: single flight, refresh ahead, margin -----------------------------------

tt = times(T + 50, 3_600_000)
scenario("single-flight", "While a fetch is in flight every poll waits for it; nothing else is sent.",
         ["single flight"], config(), [
             poll(T, result="send", request={"fetch_id": 1}),
             poll(T + 1, result="wait", fetch_id=1),
             poll(T + 2, result="wait", fetch_id=1),
             wakeup(T + DEADLINE),
             got(T + 50, 1),
             ready(T + 60),
             wakeup(tt["refresh_at"]),
         ])

scenario("refresh-ahead", "Past the refresh point the token is served and one background refresh is asked for.",
         ["refresh ahead", "single flight"], config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             ready(tt["refresh_at"] - 1),
             poll(tt["refresh_at"], result="ready_and_send", token={"access_token": "at-1"},
                  request={"fetch_id": 2}),
             ready(tt["refresh_at"] + 10),
             wakeup(tt["refresh_at"] + DEADLINE),
             drain(),
             got(tt["refresh_at"] + 100, 2, token="at-2"),
             ready(tt["refresh_at"] + 200, token="at-2"),
             events({"type": "token_acquired", "fetch_id": 2, "secret_index": 0, "actor_type": "client",
                     "actor_id": CID, "at": tt["refresh_at"] + 100}),
         ])

scenario("expired-token-refetched", "A token past its margin is never served; the next poll fetches (reason expired).",
         ["refresh margin", "expiry"], config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             drain(),
             poll(tt["usable_until"], result="send", request={"fetch_id": 2}),
             events({"type": "refresh_started", "reason": "expired", "fetch_id": 2}),
         ])

scenario("margin-never-served", "The token is served 1 ms before expires_at - margin and not at it.",
         ["refresh margin"], config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             poll(tt["usable_until"] - 1, result="ready_and_send", request={"fetch_id": 2}),
             poll(tt["usable_until"], result="wait", fetch_id=2),
         ])

scenario("margin-custom", "refresh_margin_ms is configurable.", ["refresh margin"],
         config(refresh_margin_ms=120_000), [
             poll(T, result="send"),
             respond(T, 1, 200, ok_body(), result="token", token=times(T, 3_600_000, margin_cfg=120_000)),
         ])

five = [poll(T, result="send"), got(T, 1, token="t1", lifetime=5000)]
clock = T
fid = 1
for n in range(2, 8):
    tm = times(clock, 5000)
    five += [ready(tm["refresh_at"] - 1, token=f"t{n - 1}"),
             poll(tm["refresh_at"], result="ready_and_send", token={"access_token": f"t{n - 1}"},
                  request={"fetch_id": n}),
             ready(tm["refresh_at"] + 300, token=f"t{n - 1}"),
             got(tm["refresh_at"] + 400, n, token=f"t{n}", lifetime=5000)]
    clock = tm["refresh_at"] + 400
scenario("five-second-tokens", "5-second tokens: margin capped at half the lifetime (2.5 s); refreshes ahead "
         "keep callers served without waiting.", ["refresh margin", "refresh ahead", "5-second tokens"],
         config(), five)

scenario("next-wakeup-table", "next_wakeup is the earliest deadline: none, the fetch deadline, the refresh point, "
         "the retry time.", ["next wakeup", "deadlines"], config(), [
             wakeup(None),
             poll(T, result="send"),
             wakeup(T + DEADLINE),
             got(T + 50, 1),
             wakeup(tt["refresh_at"]),
             poll(tt["refresh_at"], result="ready_and_send"),
             wakeup(tt["refresh_at"] + DEADLINE),
             respond(tt["refresh_at"] + 10, 2, 503, "", result="error"),
             wakeup(tt["refresh_at"] + 10 + 1000),
         ])

scenario("abandoned-fetch", "A fetch never reported is abandoned at its deadline as a timeout; a late answer is stale.",
         ["single flight", "timeouts"], config(), [
             poll(T, result="send"),
             fail(T + DEADLINE, "timeout", retry_at=T + DEADLINE + 1000),
             send(T + DEADLINE + 1000, 2),
             {**respond(T + DEADLINE + 1001, 1), "expect": err("stale_fetch", fault="host", retryable=False)},
             got(T + DEADLINE + 1002, 2),
         ])

scenario("stale-fetch-id", "An outcome for an unknown fetch id is a typed error and changes nothing.",
         ["host errors"], config(), [
             poll(T, result="send"),
             {**respond(T + 1, 99), "expect": err("stale_fetch")},
             poll(T + 2, result="wait", fetch_id=1),
         ])

# ---- 5. outages, backoff, Retry-After -------------------------------------------------------

rt = tt["refresh_at"]
scenario("outage-during-refresh-ahead", "A 503 during refresh-ahead: the valid token keeps being served, the retry "
         "waits for backoff, then another background refresh is asked.", ["outage", "backoff", "refresh ahead"],
         config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             poll(rt, result="ready_and_send", request={"fetch_id": 2}),
             {**respond(rt + 10, 2, 503, "Service Unavailable", [["Content-Type", "text/plain"]]),
              "expect": err("server_error", status=503, retry_at=rt + 10 + 1000)},
             ready(rt + 20),
             ready(rt + 1009),
             poll(rt + 1010, result="ready_and_send", request={"fetch_id": 3}),
             respond(rt + 1020, 3, 503, "", result="error", error={"retry_at": rt + 1020 + 2000}),
             ready(rt + 1030),
         ])

# Outage grace: after a transient refresh failure the cached token is served inside its margin, up to
# outage_grace_safety_ms (default 5 s) before it expires, with one event per outage.
G_EXP = T + 50 + 3_600_000
G_USABLE = G_EXP - 30_000
G_UNTIL = G_EXP - 5_000
G_RETRY = [["Retry-After", "3600"], ["Content-Type", "text/plain"]]  # the retry lands after the token expired


def grace_prefix(**cfg):
    return [
        poll(T, result="send"),
        got(T + 50, 1),
        poll(rt, result="ready_and_send", request={"fetch_id": 2}),
        {**respond(rt + 10, 2, 503, "busy", G_RETRY), "expect": err("server_error", retry_at=rt + 10 + 3_600_000)},
        drain(),
    ]


scenario("outage-grace-serves-inside-the-margin", "A refresh failed for a transient reason: the cached token is served "
         "inside its margin until 5 s before expiry (one event), then callers fail fast.",
         ["outage", "outage grace", "refresh margin"], config(), grace_prefix() + [
             ready(G_USABLE - 1),
             ready(G_USABLE),
             events({"type": "outage_grace_served", "expires_at": G_EXP, "until": G_UNTIL,
                     "error_kind": "server_error"}),
             wakeup(G_UNTIL),
             ready(G_UNTIL - 1),
             events(),
             fail(G_UNTIL, "server_error", retry_at=rt + 10 + 3_600_000),
         ])

scenario("outage-grace-retry-serves-and-refreshes", "When the retry comes due inside the grace window, callers get the "
         "cached token and the overdue refresh (reason expired) is sent in the background.",
         ["outage", "outage grace", "backoff"], config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             poll(rt, result="ready_and_send", request={"fetch_id": 2}),
             {**respond(rt + 10, 2, 503, "busy", [["Retry-After", str((G_USABLE + 1_000 - rt - 10) // 1000 + 1)]]),
              "expect": err("server_error")},
             drain(),
             ready(G_USABLE + 500),
             poll(G_USABLE + 2_000, result="ready_and_send", token={"access_token": "at-1"},
                  request={"fetch_id": 3}),
             events({"type": "outage_grace_served", "expires_at": G_EXP, "until": G_UNTIL,
                     "error_kind": "server_error"},
                    {"type": "refresh_started", "fetch_id": 3, "reason": "expired", "secret_index": 0}),
             got(G_USABLE + 2_100, 3, token="at-2"),
             ready(G_USABLE + 2_200, token="at-2"),
         ])

scenario("outage-grace-custom-safety", "outage_grace_safety_ms sets how close to expiry grace may serve.",
         ["outage grace"], config(outage_grace_safety_ms=20_000), grace_prefix() + [
             ready(G_EXP - 20_001),
             fail(G_EXP - 20_000, "server_error"),
         ])

scenario("outage-grace-disabled", "With outage_grace false the margin holds during an outage too.",
         ["outage grace", "refresh margin"], config(outage_grace=False), grace_prefix() + [
             ready(G_USABLE - 1),
             fail(G_USABLE, "server_error"),
             events(),
         ])

scenario("outage-grace-not-after-a-hold", "A configuration-class refusal is no outage: the margin holds.",
         ["outage grace", "hold"], config(config_error_hold_ms=3_600_000), [
             poll(T, result="send"),
             got(T + 50, 1),
             poll(rt, result="ready_and_send", request={"fetch_id": 2}),
             {**respond(rt + 10, 2, 400, '{"error":"invalid_scope"}'), "expect": err("invalid_scope")},
             ready(G_USABLE - 1),
             fail(G_USABLE, "invalid_scope"),
         ])

scenario("outage-grace-not-for-an-invalidated-token", "A token the API refused is never served again, outage or not.",
         ["outage grace", "invalidate"], config(), grace_prefix() + [
             {"do": "invalidate", "at": G_USABLE + 10, "token": "at-1", "expect": {"result": "invalidated"}},
             fail(G_USABLE + 20, "server_error"),
         ])

scenario("outage-no-token-fail-fast", "A 503 with no token: callers fail fast with the error and its retry time "
         "until then; nothing is sent before retry_at.", ["outage", "fail fast", "backoff"], config(), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 503, '{"error":"server_error","error_description":"db down"}'),
              "expect": err("server_error", retry_at=T + 1010, oauth_error="server_error", description="db down")},
             fail(T + 20, "server_error", retry_at=T + 1010),
             fail(T + 1009, "server_error", retry_at=T + 1010),
             send(T + 1010, 2),
         ])

steps = [poll(T, result="send")]
clock = T
for n in range(1, 7):
    clock += 10
    steps.append(respond(clock, n, 500, "", result="error", error={"retry_at": clock + backoff(n)}))
    clock += backoff(n)
    steps.append(send(clock, n + 1))
scenario("backoff-exponential", "Consecutive failures double the delay: 1 s, 2 s, 4 s, ... (jitter off).",
         ["backoff"], config(), steps)

steps = [poll(T, result="send")]
clock = T
for n in range(1, 7):
    clock += 10
    steps.append(respond(clock, n, 500, "", result="error",
                         error={"retry_at": clock + backoff(n, maximum=5000)}))
    clock += backoff(n, maximum=5000)
    steps.append(send(clock, n + 1))
scenario("backoff-capped", "The delay is capped at backoff_max_ms.", ["backoff"], config(backoff_max_ms=5000), steps)

rng = SplitMix64(42)
steps = [poll(T, result="send")]
clock = T
for n in range(1, 6):
    clock += 10
    ceiling = min(60_000, 1000 * 2 ** (n - 1))
    delay = max(int(ceiling * rng.unit()), 100)
    steps.append(respond(clock, n, 503, "", result="error", error={"retry_at": clock + delay}))
    steps.append(fail(clock + delay - 1, "server_error"))
    clock += delay
    steps.append(send(clock, n + 1))
scenario("backoff-full-jitter-seeded", "Full jitter: each delay is uniform in [0, step], from the host-given seed; "
         "every language draws the same delays from the same seed.", ["backoff", "jitter"],
         config(backoff_jitter=True), steps, entropy=42)

scenario("backoff-reset-after-success", "A success resets the backoff sequence.", ["backoff"], config(), [
    poll(T, result="send"),
    respond(T + 10, 1, 500, "", result="error", error={"retry_at": T + 1010}),
    send(T + 1010, 2),
    respond(T + 1020, 2, 500, "", result="error", error={"retry_at": T + 3020}),
    send(T + 3020, 3),
    got(T + 3030, 3),
    {"do": "invalidate", "at": T + 3040, "token": "at-1", "expect": {"result": "invalidated"}},
    send(T + 3050, 4),
    respond(T + 3060, 4, 500, "", result="error", error={"retry_at": T + 4060}),
])

scenario("retry-after-seconds", "429 with Retry-After: 7 → nothing is sent for 7 s.", ["Retry-After", "rate limit"],
         config(), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 429, "", [["Retry-After", "7"]]),
              "expect": err("rate_limited", status=429, retry_at=T + 7010, fault="authorization_server")},
             fail(T + 7009, "rate_limited"),
             send(T + 7010, 2),
         ])

scenario("retry-after-http-date", "Retry-After as an HTTP-date is honoured.", ["Retry-After", "rate limit"], config(), [
    poll(T, result="send"),
    {**respond(T + 10, 1, 503, "", [["Retry-After", "Tue, 14 Nov 2023 22:14:00 GMT"]]),
     "expect": err("server_error", retry_at=T + 40_000)},
    fail(T + 39_999, "server_error"),
    send(T + 40_000, 2),
])

scenario("retry-after-shorter-than-backoff", "Retry-After: 0 does not undercut the backoff step.",
         ["Retry-After", "backoff"], config(), [
             poll(T, result="send"),
             respond(T + 10, 1, 503, "", [["Retry-After", "0"]], result="error", error={"retry_at": T + 1010}),
         ])

scenario("retry-after-capped", "An absurd Retry-After is capped at max_retry_after_ms.", ["Retry-After"],
         config(max_retry_after_ms=60_000), [
             poll(T, result="send"),
             respond(T + 10, 1, 429, "", [["Retry-After", "86400"]], result="error",
                     error={"retry_at": T + 60_010}),
         ])

scenario("rate-limited-slow-down", "The slow_down error code is a rate limit.", ["errors", "rate limit"], config(), [
    poll(T, result="send"),
    {**respond(T + 10, 1, 400, '{"error":"slow_down"}'), "expect": err("rate_limited", oauth_error="slow_down")},
])

scenario("transport-timeout", "A timeout reported by the host is a retryable timeout error.", ["transport", "timeouts"],
         config(), [
             poll(T, result="send"),
             {"do": "transport_error", "at": T + 10_000, "fetch_id": 1, "kind": "timeout", "message": "aborted",
              "expect": err("timeout", fault="transport", retryable=True, retry_at=T + 11_000, status=None)},
             fail(T + 10_500, "timeout"),
         ])

scenario("transport-connection-refused", "A refused connection is a transport error, retried with backoff.",
         ["transport"], config(), [
             poll(T, result="send"),
             {"do": "transport_error", "at": T + 5, "fetch_id": 1, "kind": "connect",
              "message": "connect ECONNREFUSED 127.0.0.1:4444",
              "expect": err("transport", description="connect ECONNREFUSED 127.0.0.1:4444", retry_at=T + 1005)},
             send(T + 1005, 2),
         ])

# ---- 6. configuration-class errors: holds ------------------------------------------------------


def hold_scenario(name, description, status, text, kind, oauth_error, **cfg):
    scenario(name, description, ["errors", "hold"], config(**cfg), [
        poll(T, result="send"),
        {**respond(T + 10, 1, status, text),
         "expect": err(kind, retryable=False, retry_at=T + 10 + HOLD, status=status, oauth_error=oauth_error,
                       fault="credentials" if kind == "invalid_client" else "configuration")},
        fail(T + 20, kind, retry_at=T + 10 + HOLD),
        fail(T + 10 + HOLD - 1, kind),
        send(T + 10 + HOLD, 2),
    ])


hold_scenario("hold-invalid-scope", "invalid_scope is a configuration error: not retried until a long hold ends.", 400,
              '{"error":"invalid_scope","error_description":"The requested scope is invalid, unknown, or malformed."}',
              "invalid_scope", "invalid_scope", scope="billing:admin")
hold_scenario("hold-audience-not-allowed", "Hydra answers a forbidden audience with invalid_request naming the "
              "audience: classified invalid_target and held.", 400,
              '{"error":"invalid_request","error_description":"Requested audience \'https://other\' has not been '
              'whitelisted by the OAuth 2.0 Client."}', "invalid_target", "invalid_request",
              audience=["https://other"])
hold_scenario("hold-unauthorized-client", "unauthorized_client is held.", 400, '{"error":"unauthorized_client"}',
              "unauthorized_client", "unauthorized_client")
hold_scenario("hold-unsupported-grant-type", "unsupported_grant_type is held.", 400,
              '{"error":"unsupported_grant_type"}', "unsupported_grant_type", "unsupported_grant_type")
hold_scenario("hold-unknown-error-code", "An unknown error code in a 4xx is a rejection, held.", 403,
              '{"error":"access_denied"}', "rejected", "access_denied")
hold_scenario("hold-endpoint-not-found", "A 404 without an OAuth error body means token_url is wrong: a configuration "
              "fault, held, not retried as an outage.", 404, "404 page not found", "endpoint_not_found", None)
hold_scenario("hold-endpoint-method-not-allowed", "A 405 (the URL exists but takes no POST) is the same wrong-URL fault.",
              405, "", "endpoint_not_found", None)
hold_scenario("hold-invalid-client-single-secret", "invalid_client with one secret is held (alert, rotate).", 401,
              '{"error":"invalid_client","error_description":"Client authentication failed."}', "invalid_client",
              "invalid_client")

# ---- 7. secrets: fallback, rotation -----------------------------------------------------------------

NEW, OLD = "new-secret:+1", "old-secret %2"
scenario("secret-fallback-second-works", "invalid_client with the first secret: the second is tried at once and "
         "remembered for later refreshes.", ["secret fallback", "rotation"], config(client_secret=[NEW, OLD]), [
             send(T, 1, headers=headers(secret=NEW)),
             {**respond(T + 10, 1, 401, '{"error":"invalid_client"}'),
              "expect": err("invalid_client", retryable=True, retry_at=T + 10)},
             events(
                 {"type": "refresh_started", "fetch_id": 1, "secret_index": 0, "reason": "initial"},
                 {"type": "refresh_failed", "fetch_id": 1, "error": {"kind": "invalid_client"}},
                 {"type": "secret_fallback", "fetch_id": 1, "from_index": 0, "to_index": 1}),
             send(T + 11, 2, headers=headers(secret=OLD)),
             got(T + 20, 2),
             poll(times(T + 20, 3_600_000)["refresh_at"], result="ready_and_send",
                  request={"fetch_id": 3, "headers": headers(secret=OLD)}),
         ])

scenario("secret-fallback-all-refused", "Every secret refused: held, then the next round starts from the first.",
         ["secret fallback", "hold"], config(client_secret=[NEW, OLD]), [
             send(T, 1, headers=headers(secret=NEW)),
             respond(T + 10, 1, 401, '{"error":"invalid_client"}', result="error"),
             send(T + 11, 2, headers=headers(secret=OLD)),
             {**respond(T + 20, 2, 401, '{"error":"invalid_client"}'),
              "expect": err("invalid_client", retryable=False, retry_at=T + 20 + HOLD)},
             fail(T + 30, "invalid_client"),
             send(T + 20 + HOLD, 3, headers=headers(secret=NEW)),
         ])

scenario("secret-replace-lifts-hold", "A rotated secret (re-read from a mounted file) lifts the invalid_client hold "
         "and is used at once.", ["rotation", "hold"], config(), [
             poll(T, result="send"),
             respond(T + 10, 1, 401, '{"error":"invalid_client"}', result="error"),
             fail(T + 20, "invalid_client"),
             {"do": "replace_secrets", "at": T + 30, "secrets": [NEW],
              "expect": {"result": "replaced", "changed": True}},
             send(T + 31, 2, headers=headers(secret=NEW)),
             got(T + 40, 2),
         ])

scenario("secret-replace-same-is-noop", "Replacing with identical secrets changes nothing (a file touched, "
         "not changed).", ["rotation"], config(client_secret=[NEW, OLD]), [
             {"do": "replace_secrets", "at": T, "secrets": [NEW, OLD], "expect": {"result": "replaced", "changed": False}},
             events(),
         ])

scenario("secret-replace-invalid", "Replacing with an empty list is refused by field, without echoing secrets.",
         ["rotation", "configuration"], config(), [
             {"do": "replace_secrets", "at": T, "secrets": [], "expect": {"result": "error",
                                                                          "error": {"field": "client_secret"}}},
             {"do": "replace_secrets", "at": T, "secrets": ["ok", ""],
              "expect": {"result": "error", "error": {"field": "client_secret[1]"}}},
         ])

scenario("secret-replace-during-flight", "A fetch sent with a secret that was replaced meanwhile and refused is "
         "retried at once with the new secret, without a hold.", ["rotation"], config(), [
             send(T, 1, headers=headers()),
             {"do": "replace_secrets", "at": T + 5, "secrets": [NEW], "expect": {"result": "replaced", "changed": True}},
             {**respond(T + 10, 1, 401, '{"error":"invalid_client"}'),
              "expect": err("invalid_client", retry_at=T + 10)},
             send(T + 11, 2, headers=headers(secret=NEW)),
         ])

scenario("secret-rotation-with-token", "Rotation while a token is cached: the token keeps being served and the next "
         "refresh uses the new secret.", ["rotation"], config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             {"do": "replace_secrets", "at": T + 60, "secrets": [NEW, SECRET],
              "expect": {"result": "replaced", "changed": True}},
             ready(T + 70),
             poll(tt["refresh_at"], result="ready_and_send", request={"headers": headers(secret=NEW)}),
         ])

# ---- 8. invalidate ---------------------------------------------------------------------------------

scenario("invalidate-current-token", "An API 401 invalidates the token; the next poll refetches (reason invalidated).",
         ["invalidate"], config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             drain(),
             {"do": "invalidate", "at": T + 100, "token": "at-1", "expect": {"result": "invalidated"}},
             send(T + 101, 2),
             events({"type": "token_invalidated", "expires_at": T + 50 + 3_600_000},
                    {"type": "refresh_started", "reason": "invalidated", "fetch_id": 2, "secret_index": 0}),
         ])

scenario("invalidate-not-current", "Invalidating a token that was already replaced does nothing.", ["invalidate"],
         config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             {"do": "invalidate", "at": T + 100, "token": "at-0", "expect": {"result": "not_current"}},
             ready(T + 101),
         ])

scenario("invalidate-rate-limited", "A second invalidation within invalidate_min_interval_ms is ignored, so a "
         "misconfigured API cannot cause a refresh loop.", ["invalidate", "rate limit"], config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             {"do": "invalidate", "at": T + 100, "token": "at-1", "expect": {"result": "invalidated"}},
             send(T + 101, 2),
             got(T + 150, 2, token="at-2"),
             {"do": "invalidate", "at": T + 200, "token": "at-2", "expect": {"result": "rate_limited"}},
             ready(T + 201, token="at-2"),
             {"do": "invalidate", "at": T + 10_100, "token": "at-2", "expect": {"result": "invalidated"}},
             send(T + 10_101, 3),
         ])

# ---- 9. clock ---------------------------------------------------------------------------------------

back = 3_600_000
# The engine cannot know how much time passed between its last call (T + 50) and the
# jump, so it assumes none: every stored instant moves back by (T + 50) - (T + 1000 - back).
by = (T + 50) - (T + 1000 - back)
shifted = {k: v - by for k, v in tt.items()}
scenario("clock-backwards", "The host clock jumps back an hour: deadlines shift with it, so the token keeps its "
         "remaining life instead of living an hour longer.", ["clock"], config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             drain(),
             poll(T + 1000 - back, result="ready", token={"access_token": "at-1", **shifted}),
             events({"type": "clock_went_backwards", "by_ms": by}),
             wakeup(shifted["refresh_at"]),
             poll(shifted["refresh_at"], result="ready_and_send"),
         ])

scenario("clock-backwards-during-backoff", "A clock jump back during backoff keeps the remaining delay instead of "
         "blocking for the jump.", ["clock", "backoff"], config(), [
             poll(T, result="send"),
             respond(T + 10, 1, 503, "", result="error", error={"retry_at": T + 1010}),
             fail(T + 500 - back, "server_error", retry_at=T + 1010 - (T + 10 - (T + 500 - back))),
             send(T + 1010 - (T + 10 - (T + 500 - back)), 2),
         ])

# ---- 10. snapshots ---------------------------------------------------------------------------------

FP = fingerprint(URL, CID, ["billing:read"], [])
snap = {"version": 1, "fingerprint": FP, "access_token": "at-snap", "token_type": "Bearer", "scope": ["billing:read"],
        "received_at": T - 600_000, "expires_at": T + 3_000_000}
scenario("snapshot-export", "The cached token exports as JSON with a fingerprint of endpoint, client id, scopes and "
         "audiences, and no secret.", ["snapshot"], config(scope="billing:read"), [
             {"do": "export_snapshot", "at": T, "expect": {"result": "none"}},
             poll(T, result="send"),
             got(T + 50, 1),
             {"do": "export_snapshot", "at": T + 60, "forbid_substrings": [SECRET],
              "expect": {"result": "snapshot", "snapshot": {
                  "version": 1, "fingerprint": FP, "access_token": "at-1", "token_type": "Bearer",
                  "scope": ["billing:read"], "received_at": T + 50, "expires_at": T + 50 + 3_600_000}}},
         ])

scenario("snapshot-import-reused", "A cron run imports the previous run's token and makes no request.",
         ["snapshot"], config(scope="billing:read"), [
             {"do": "import_snapshot", "at": T, "snapshot": snap, "expect": {"result": "imported"}},
             poll(T + 1, result="ready", token={"access_token": "at-snap", "expires_at": T + 3_000_000}),
             events({"type": "snapshot_imported", "expires_at": T + 3_000_000}),
         ])

scenario("snapshot-import-foreign", "A snapshot of another client configuration is refused (fingerprint).",
         ["snapshot"], config(scope="billing:write"), [
             {"do": "import_snapshot", "at": T, "snapshot": snap,
              "expect": {"result": "error", "reason": "fingerprint_mismatch"}},
             send(T + 1, 1),
         ])

scenario("snapshot-import-expired", "An expired snapshot is refused.", ["snapshot"], config(scope="billing:read"), [
    {"do": "import_snapshot", "at": T + 3_000_000, "snapshot": snap, "expect": {"result": "error", "reason": "expired"}},
    {"do": "import_snapshot", "at": T + 2_970_000, "snapshot": snap, "expect": {"result": "error", "reason": "expired"}},
])

scenario("snapshot-import-corrupt", "Corrupt or foreign-version snapshots are refused with a reason.", ["snapshot"],
         config(scope="billing:read"), [
             {"do": "import_snapshot", "at": T, "snapshot_text": "{\"version\":1,", "expect": {"result": "error",
                                                                                            "reason": "corrupt"}},
             {"do": "import_snapshot", "at": T, "snapshot_text": "[]", "expect": {"result": "error",
                                                                                 "reason": "corrupt"}},
             {"do": "import_snapshot", "at": T, "snapshot": {**snap, "version": 9},
              "expect": {"result": "error", "reason": "unsupported_version"}},
             {"do": "import_snapshot", "at": T, "snapshot": {**snap, "expires_at": "soon"},
              "expect": {"result": "error", "reason": "corrupt"}},
             send(T + 1, 1),
         ])

# ---- 11. events and secrets in output ----------------------------------------------------------------

scenario("events-audit-fields", "Every event names the actor (client, client id); a whole cycle's events in order.",
         ["events"], config(), [
             poll(T, result="send"),
             respond(T + 10, 1, 503, "", result="error"),
             send(T + 1010, 2),
             got(T + 1020, 2),
             events(
                 {"type": "refresh_started", "at": T, "actor_type": "client", "actor_id": CID, "reason": "initial"},
                 {"type": "refresh_failed", "at": T + 10, "actor_type": "client", "actor_id": CID,
                  "error": {"kind": "server_error", "status": 503}},
                 {"type": "backoff_scheduled", "at": T + 10, "actor_type": "client", "actor_id": CID,
                  "retry_at": T + 1010, "attempt": 1, "error_kind": "server_error", "hold": False},
                 {"type": "refresh_started", "at": T + 1010, "actor_type": "client", "actor_id": CID,
                  "reason": "initial", "fetch_id": 2},
                 {"type": "token_acquired", "at": T + 1020, "actor_type": "client", "actor_id": CID,
                  "lifetime_source": "expires_in", "lifetime_clamped": False, "expires_at": T + 1020 + 3_600_000}),
         ])

WITHHELD = "[withheld: contained a credential]"
ECHO = "Client secret '%s' (form: %s) is wrong" % (SPECIAL_SECRET, form(SPECIAL_SECRET))
scenario("secrets-never-in-errors-or-events", "A server that echoes the secret in error_description: the whole "
         "description is withheld from the error and the events.", ["redaction", "errors", "events"],
         config(client_secret=SPECIAL_SECRET), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 400, json.dumps({"error": "invalid_request", "error_description": ECHO})),
              "forbid_substrings": [SPECIAL_SECRET, form(SPECIAL_SECRET)],
              "expect": err("invalid_request", description=WITHHELD)},
             {"do": "events", "forbid_substrings": [SPECIAL_SECRET, form(SPECIAL_SECRET)]},
             {**fail(T + 20, "invalid_request"), "forbid_substrings": [SPECIAL_SECRET]},
             {"do": "transport_error", "at": T + 21, "fetch_id": 1, "kind": "other", "message": "x",
              "expect": err("stale_fetch")},
         ])


# Every spelling of a credential a hostile server (or a proxy quoted by the host's transport) may echo. The text
# holding it is withheld whole; everything else in the error stays as it was.
ID_SPECIAL = "svc:billing+1"
def echo_scenario(name, description, text, where="description", secrets=(SPECIAL_SECRET,), cid=ID_SPECIAL,
                  forbid=(SPECIAL_SECRET,)):
    cfg = config(client_id=cid, client_secret=list(secrets))
    if where == "transport":
        step = {"do": "transport_error", "at": T + 10, "fetch_id": 1, "kind": "other", "message": text,
                "expect": err("transport", description=WITHHELD, retry_at=T + 1010)}
    elif where == "code":
        step = {**respond(T + 10, 1, 400, json.dumps({"error": text, "error_description": "see the code"})),
                "expect": err("rejected", oauth_error=WITHHELD, description="see the code", retryable=False)}
    else:
        step = {**respond(T + 10, 1, 400, json.dumps({"error": "invalid_request", "error_description": text})),
                "expect": err("invalid_request", oauth_error="invalid_request", description=WITHHELD)}
    scenario(name, description, ["redaction", "errors", "events"], cfg, [
        poll(T, result="send"),
        {**step, "forbid_substrings": list(forbid)},
        {"do": "events", "forbid_substrings": list(forbid)},
    ])


def pct_every_byte(text, fmt="%%%02x"):
    return "".join(fmt % b for b in text.encode("utf-8"))


echo_scenario("redaction-echo-in-error-code", "A secret echoed in the error code itself: the code is withheld, the "
              "classification (an unknown code: rejected) and the description stay.", "bad_" + SPECIAL_SECRET,
              where="code")
echo_scenario("redaction-echo-basic-header", "The server echoes the Authorization header it got: base64 of "
              "form(id):form(secret) is found and withheld.",
              "Authorization: " + basic(ID_SPECIAL, SPECIAL_SECRET) + " rejected",
              forbid=(SPECIAL_SECRET, basic(ID_SPECIAL, SPECIAL_SECRET)[6:]))
echo_scenario("redaction-echo-basic-unencoded", "base64url of id:secret (a client that skipped form encoding) is "
              "found too.",
              "creds=" + base64.urlsafe_b64encode(f"{ID_SPECIAL}:{SPECIAL_SECRET}".encode()).decode().rstrip("="))
echo_scenario("redaction-echo-near-the-cut", "A secret straddling the 300-character cut is found before anything is "
              "cut: the whole text is withheld, not a truncated remainder.", "x" * 295 + SPECIAL_SECRET)
echo_scenario("redaction-echo-lowercase-percent", "Percent-encoding with lowercase hex is decoded before the check.",
              "secret=" + form(SPECIAL_SECRET).lower(), forbid=(SPECIAL_SECRET, form(SPECIAL_SECRET).lower()))
echo_scenario("redaction-echo-every-byte-encoded", "Characters that form encoding leaves alone, percent-encoded "
              "anyway, are decoded before the check.", "secret=" + pct_every_byte(SPECIAL_SECRET, "%%%02X"))
echo_scenario("redaction-echo-with-tab", "A tab inside the echoed secret: control characters are checked before "
              "they are stripped, and after.", SPECIAL_SECRET.replace(" ", "\t "), forbid=(SPECIAL_SECRET,))
echo_scenario("redaction-echo-json-escaped", "A JSON-escaped secret (\\u00e9) is unescaped before the check.",
              json.dumps(SPECIAL_SECRET, ensure_ascii=True)[1:-1])
echo_scenario("redaction-echo-latin1-transport", "A host that read the server's UTF-8 bytes as latin-1 passes "
              "mojibake (Ã©) in a transport message: found and withheld.",
              "proxy said: " + SPECIAL_SECRET.encode("utf-8").decode("latin-1"), where="transport",
              forbid=(SPECIAL_SECRET, SPECIAL_SECRET.encode("utf-8").decode("latin-1")))
echo_scenario("redaction-echo-retired-secret", "A secret that was replaced, echoed later, is found too (the engine "
              "remembers the last replaced secrets).", "old one: " + SPECIAL_SECRET,
              secrets=("new-current-secret", SPECIAL_SECRET))
scenario("redaction-short-secret-withholds-whole-text", "A one-character secret is withheld with the whole text, "
         "never by cutting holes in it (which would mangle words and show where the secret stood); the kind still "
         "says what happened.",
         ["redaction", "errors"], config(client_secret="s"), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 400, '{"error":"invalid_scope","error_description":"this scope is not allowed"}'),
              "expect": err("invalid_scope", description=WITHHELD, oauth_error=WITHHELD)},
             respond(T + 11, 1, 400, "{}", result="error", error={"kind": "stale_fetch"}),
         ])
scenario("redaction-echo-in-granted-scope", "A granted scope echoing the secret never reaches the token or the "
         "token_acquired event: the scope is withheld.", ["redaction", "scope", "events"],
         config(client_secret=SPECIAL_SECRET), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 200, ok_body(scope="read " + form(SPECIAL_SECRET))),
              "expect": {"result": "token", "token": {"access_token": "at-1", "scope": [WITHHELD]}},
              "forbid_substrings": [SPECIAL_SECRET, form(SPECIAL_SECRET)]},
             {"do": "events", "forbid_substrings": [SPECIAL_SECRET, form(SPECIAL_SECRET)],
              "expect": {"events": [{"type": "refresh_started"}, {"type": "token_acquired", "scope": [WITHHELD]}]}},
         ])
scenario("redaction-ordinary-text-kept", "Server text that holds no credential is shown as it was sent.",
         ["redaction", "errors"], config(client_secret=SPECIAL_SECRET), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 400,
                        '{"error":"invalid_scope","error_description":"The requested scope is invalid."}'),
              "expect": err("invalid_scope", description="The requested scope is invalid.")},
         ])


# ---- tokens that cannot go in a header -------------------------------------------------------------

def unsafe_token_scenario(name, description, token_json):
    scenario(name, description, ["response parsing", "errors", "header safety"], config(), [
        poll(T, result="send"),
        {**respond(T + 100, 1, 200, '{"access_token":%s,"token_type":"Bearer","expires_in":3600}' % token_json),
         "expect": err("malformed_response", retryable=True, retry_at=T + 1100, status=200,
                       description="access_token holds characters that cannot be sent in an Authorization header "
                                   "(only visible ASCII is allowed)")},
        fail(T + 200, "malformed_response"),
        send(T + 1100, 2),
    ])


unsafe_token_scenario("token-header-unsafe-crlf", "A token with CR LF (header injection) is refused, never cached.",
                      '"at-1\\r\\nX-Injected: yes"')
unsafe_token_scenario("token-header-unsafe-nul", "A token with a NUL is refused.", '"at\\u0000-1"')
unsafe_token_scenario("token-header-unsafe-space", "A token with a space is refused.", '"at 1"')
unsafe_token_scenario("token-header-unsafe-non-ascii", "A non-ASCII token is refused.", '"jeton-\\u00e9"')
unsafe_token_scenario("token-header-unsafe-del", "A token with DEL (0x7F) is refused.", '"at\\u007f"')
VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
scenario("token-every-visible-ascii-accepted", "Every visible ASCII character (0x21-0x7E) is accepted in a token.",
         ["response parsing", "header safety"], config(), [
             poll(T, result="send"),
             respond(T + 100, 1, 200, json.dumps({"access_token": VISIBLE, "expires_in": 3600}), result="token",
                     token={"access_token": VISIBLE}),
         ])

# ---- TLS certificate failures -----------------------------------------------------------------------

TLS_HINT = ("; if the server's certificate comes from a private CA, trust that CA with TOKENWELL_CA_FILE or the "
            "CA-file option (ca_file / caFile), else check the host name in token_url")
scenario("transport-tls-certificate", "A certificate the host could not verify is a configuration fault with a hint "
         "on trusting a CA: held, not retried as a network blip.", ["transport", "TLS", "hold"], config(), [
             poll(T, result="send"),
             {"do": "transport_error", "at": T + 20, "fetch_id": 1, "kind": "tls",
              "message": "unable to verify the first certificate",
              "expect": err("tls_certificate", fault="configuration", retryable=False, retry_at=T + 20 + HOLD,
                            status=None, description="unable to verify the first certificate" + TLS_HINT)},
             fail(T + 30, "tls_certificate", retry_at=T + 20 + HOLD),
             fail(T + 20 + HOLD - 1, "tls_certificate"),
             send(T + 20 + HOLD, 2),
         ])

# ---- snapshots a file cannot stretch -----------------------------------------------------------------

TEN_YEARS = 10 * 365 * 86_400_000
scenario("snapshot-import-lifetime-clamped", "A snapshot claiming a 10-year expiry gets the same clamp as a fresh "
         "response: at most max_lifetime_ms (24 h) from received_at.", ["snapshot", "lifetime"],
         config(scope="billing:read"), [
             {"do": "import_snapshot", "at": T,
              "snapshot": {**snap, "received_at": T - 60_000, "expires_at": T - 60_000 + TEN_YEARS},
              "expect": {"result": "imported"}},
             poll(T + 1, result="ready", token={"access_token": "at-snap",
                                                **times(T - 60_000, 86_400_000)}),
             poll(T - 60_000 + 86_400_000 - 30_000, result="send"),
         ])
scenario("snapshot-import-from-the-future", "A snapshot whose received_at lies in the future is refused (it could "
         "stretch the lifetime past the clamp).", ["snapshot"], config(scope="billing:read"), [
             {"do": "import_snapshot", "at": T, "snapshot": {**snap, "received_at": T + 1, "expires_at": T + 600_000},
              "expect": {"result": "error", "reason": "corrupt"}},
             {"do": "import_snapshot", "at": T, "snapshot": {**snap, "received_at": T, "expires_at": T + 600_000},
              "expect": {"result": "imported"}},
         ])
scenario("snapshot-import-header-unsafe-token", "A snapshot holding a token that cannot go in a header is refused.",
         ["snapshot", "header safety"], config(scope="billing:read"), [
             {"do": "import_snapshot", "at": T, "snapshot": {**snap, "access_token": "at\r\nX: y"},
              "expect": {"result": "error", "reason": "corrupt"}},
             send(T + 1, 1),
         ])

# ---- 12. jitter -------------------------------------------------------------------------------------

rng = SplitMix64(7)
u = rng.unit()
fraction = 0.75 + 0.05 * (2.0 * u - 1.0)
received = T + 50
usable = received + 3_600_000 - 30_000
refresh = received + int((usable - received) * fraction)
scenario("refresh-ahead-jitter-seeded", "The refresh point is spread around 75 % of the usable life by the host's "
         "seed; the same seed gives the same point in every language.", ["refresh ahead", "jitter"],
         config(refresh_ahead_jitter=0.05), [
             poll(T, result="send"),
             respond(received, 1, 200, ok_body(), result="token",
                     token={"refresh_at": refresh, "usable_until": usable}),
             ready(refresh - 1),
             poll(refresh, result="ready_and_send"),
         ], entropy=7)


# ---- 13. the rarer branches and exact boundaries ---------------------------------------------------
#
# Each scenario pins one decision that no scenario above reaches: found by mutation testing of the engine
# (make mutants), which showed that the branch could be changed or deleted without any host noticing.

scenario("response-token-beside-an-error-code", "A 2xx body holding an access_token is a token, even beside an "
         "error member.", ["response parsing", "errors"], config(), [
             poll(T, result="send"),
             respond(T + 100, 1, 200, ok_body(error="invalid_request"), result="token",
                     token={"access_token": "at-1", **times(T + 100, 3_600_000)}),
         ])
scenario("response-error-code-beside-a-token", "A non-2xx body with an error member is that error, even beside an "
         "access_token.", ["response parsing", "errors"], config(), [
             poll(T, result="send"),
             {**respond(T + 100, 1, 400, ok_body(error="invalid_scope")),
              "expect": err("invalid_scope", status=400, oauth_error="invalid_scope", retryable=False,
                            retry_at=T + 100 + HOLD)},
         ])
scenario("response-unknown-error-code-on-5xx", "An unknown error code on a 5xx is a server error: retried with "
         "backoff, not held as a rejection.", ["errors", "backoff"], config(), [
             poll(T, result="send"),
             {**respond(T + 100, 1, 503, '{"error":"database_unavailable"}'),
              "expect": err("server_error", fault="authorization_server", retryable=True, retry_at=T + 1100,
                            status=503, oauth_error="database_unavailable")},
             send(T + 1100, 2),
         ])
scenario("response-server-error-code-on-4xx", "The server_error code is a server error whatever the status.",
         ["errors", "backoff"], config(), [
             poll(T, result="send"),
             {**respond(T + 100, 1, 400, '{"error":"server_error","error_description":"try again"}'),
              "expect": err("server_error", retryable=True, retry_at=T + 1100, status=400, oauth_error="server_error",
                            description="try again")},
             send(T + 1100, 2),
         ])
hold_scenario("hold-invalid-target", "invalid_target (RFC 8707) is a configuration fault: held.", 400,
              '{"error":"invalid_target"}', "invalid_target", "invalid_target", audience=["https://api.example"])
hold_scenario("hold-invalid-grant", "invalid_grant is held like the other configuration-class codes.", 400,
              '{"error":"invalid_grant"}', "invalid_grant", "invalid_grant")

LIMIT = 128
AT_LIMIT = "a" * (LIMIT - len(ok_body("")))
assert len(ok_body(AT_LIMIT).encode()) == LIMIT
scenario("response-body-exactly-the-limit", "A body of exactly max_response_bytes is read; one byte more is refused.",
         ["response parsing", "body size limit"], config(max_response_bytes=LIMIT), [
             poll(T, result="send"),
             respond(T + 100, 1, 200, ok_body(AT_LIMIT), result="token", token={"access_token": AT_LIMIT}),
             {"do": "invalidate", "at": T + 200, "token": AT_LIMIT, "expect": {"result": "invalidated"}},
             send(T + 201, 2),
             {**respond(T + 300, 2, 200, ok_body(AT_LIMIT + "a")),
              "expect": err("malformed_response", description=f"response body is larger than {LIMIT} bytes")},
         ])

SAID = "d" * 300
scenario("response-description-cut-at-300-characters", "Server text is shown whole up to 300 characters; longer text "
         "is cut there and marked with an ellipsis; control characters are dropped first.",
         ["errors", "response parsing"], config(), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 503, json.dumps({"error": "temporarily_unavailable", "error_description": SAID})),
              "expect": err("temporarily_unavailable", description=SAID, retry_at=T + 1010)},
             send(T + 1010, 2),
             {**respond(T + 1020, 2, 503, json.dumps({"error": "temporarily_unavailable",
                                                       "error_description": "e" * 400})),
              "expect": err("temporarily_unavailable", description="e" * 300 + "…", retry_at=T + 3020)},
             send(T + 3020, 3),
             {**respond(T + 3030, 3, 503, json.dumps({"error": "temporarily_unavailable",
                                                       "error_description": "line one\nline\ttwo\u0000" + SAID[15:]})),
              "expect": err("temporarily_unavailable", description="line onelinetwo" + SAID[15:])},
         ])

lifetime_scenario("lifetime-exactly-the-minimum", "expires_in 1 is exactly the minimum lifetime (1 s): kept as it is, "
                  "not reported as clamped.", "1", 1_000)
lifetime_scenario("lifetime-exactly-the-maximum", "expires_in 86400 is exactly the maximum lifetime (24 h): kept as "
                  "it is, not reported as clamped.", "86400", 86_400_000)


def jwt_payload_chars(chars, exp):
    """A JWT whose payload (claims padded with a filler claim) is exactly `chars` base64url characters."""
    assert chars % 4 == 0
    skeleton = json.dumps({"exp": exp, "pad": ""}, separators=(",", ":"))
    claims = json.dumps({"exp": exp, "pad": "x" * (chars // 4 * 3 - len(skeleton))}, separators=(",", ":"))
    payload = base64.urlsafe_b64encode(claims.encode()).rstrip(b"=").decode()
    assert len(payload) == chars
    return "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2lnbmF0dXJl"


def jwt_lifetime_scenario(name, description, token, from_jwt):
    lifetime = JWT_EXP * 1000 - (T + 100) if from_jwt else 300_000
    scenario(name, description, ["response parsing", "lifetime", "jwt"], config(), [
        poll(T, result="send"),
        respond(T + 100, 1, 200, json.dumps({"access_token": token, "token_type": "Bearer"}), result="token",
                token={"lifetime_source": "jwt_exp" if from_jwt else "default", **times(T + 100, lifetime)}),
    ])


jwt_lifetime_scenario("lifetime-jwt-payload-at-the-cap", "A JWT payload of exactly 16 KiB is still read for its exp.",
                      jwt_payload_chars(16 * 1024, JWT_EXP), True)
jwt_lifetime_scenario("lifetime-jwt-payload-over-the-cap", "A JWT payload over 16 KiB is not decoded: the default "
                      "lifetime applies.", jwt_payload_chars(16 * 1024 + 4, JWT_EXP), False)
jwt_lifetime_scenario("lifetime-jwt-more-than-three-parts", "A token of four dot-separated parts is no JWT (a JWE has "
                      "five): the default lifetime applies.", JWT_TOKEN + ".c2lnbmF0dXJl", False)

scenario("snapshot-export-ends-at-usable-until", "A token is exported while it may be served, and not from its usable "
         "limit on: a file never carries a token the next run must not use.", ["snapshot", "refresh margin"],
         config(scope="billing:read"), [
             poll(T, result="send"),
             got(T + 50, 1),
             {"do": "export_snapshot", "at": tt["usable_until"] - 1,
              "expect": {"result": "snapshot", "snapshot": {"access_token": "at-1"}}},
             {"do": "export_snapshot", "at": tt["usable_until"], "expect": {"result": "none"}},
         ])


def import_step(at, snapshot, result="imported", reason=None):
    expect = {"result": result} if reason is None else {"result": "error", "reason": reason}
    return {"do": "import_snapshot", "at": at, "snapshot": snapshot, "expect": expect}


scenario("snapshot-import-inconsistent-fields", "A snapshot whose token is empty, whose expiry is not after its "
         "receipt, or whose type is not Bearer is refused as corrupt; a lowercase bearer is fine.", ["snapshot"],
         config(scope="billing:read"), [
             import_step(T, {**snap, "access_token": ""}, reason="corrupt"),
             import_step(T, {**snap, "expires_at": snap["received_at"]}, reason="corrupt"),
             import_step(T, {**snap, "token_type": "mac"}, reason="corrupt"),
             import_step(T, {**snap, "token_type": "bearer"}),
             ready(T + 1, token="at-snap"),
         ])

HELD_UNTIL = T + 50 + 3_600_000
scenario("snapshot-import-only-a-longer-lived-token-replaces", "Importing while a token is cached keeps whichever "
         "expires later: a snapshot that expires sooner or at the same instant is accepted but changes nothing.",
         ["snapshot"], config(scope="billing:read"), [
             poll(T, result="send"),
             got(T + 50, 1),
             drain(),
             import_step(T + 100, {**snap, "expires_at": HELD_UNTIL - 1}),
             import_step(T + 100, {**snap, "expires_at": HELD_UNTIL}),
             ready(T + 101, token="at-1"),
             events(),
             import_step(T + 200, {**snap, "expires_at": HELD_UNTIL + 1}),
             poll(T + 201, result="ready", token={"access_token": "at-snap", "expires_at": HELD_UNTIL + 1}),
             events({"type": "snapshot_imported", "expires_at": HELD_UNTIL + 1}),
         ])

scenario("expired-refetch-failure-keeps-its-reason", "A fetch for an expired token that fails is retried for the "
         "same reason (expired), not as an initial fetch.", ["refresh margin", "events", "backoff"], config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             poll(tt["usable_until"], result="send", request={"fetch_id": 2}),
             respond(tt["usable_until"] + 10, 2, 503, "", result="error"),
             drain(),
             send(tt["usable_until"] + 1010, 3),
             events({"type": "refresh_started", "fetch_id": 3, "reason": "expired"}),
         ])
scenario("invalidated-refetch-failure-keeps-its-reason", "A fetch after invalidate that fails is retried for the "
         "same reason (invalidated).", ["invalidate", "events", "backoff"], config(), [
             poll(T, result="send"),
             got(T + 50, 1),
             {"do": "invalidate", "at": T + 100, "token": "at-1", "expect": {"result": "invalidated"}},
             send(T + 101, 2),
             respond(T + 110, 2, 503, "", result="error"),
             drain(),
             send(T + 1110, 3),
             events({"type": "refresh_started", "fetch_id": 3, "reason": "invalidated"}),
         ])
scenario("imported-token-expired-during-a-failed-fetch", "A token imported while the first fetch was in flight "
         "expires before that fetch fails: the retry is for an expired token, not an initial one.",
         ["snapshot", "refresh margin", "events"], config(scope="billing:read"), [
             poll(T, result="send"),
             import_step(T + 10, {**snap, "received_at": T - 100_000, "expires_at": T + 35_000}),
             ready(T + 4_999, token="at-snap"),
             poll(T + 5_000, result="wait", fetch_id=1),
             respond(T + 6_000, 1, 503, "", result="error", error={"retry_at": T + 7_000}),
             drain(),
             send(T + 7_000, 2),
             events({"type": "refresh_started", "fetch_id": 2, "reason": "expired"}),
         ])
five_tt = times(T, 5000)
scenario("refresh-ahead-failure-after-expiry-is-expired", "A background refresh still in flight when the token "
         "reaches its usable limit, then failing: the retry is for an expired token, not a refresh ahead.",
         ["refresh ahead", "refresh margin", "events"], config(), [
             poll(T, result="send"),
             got(T, 1, lifetime=5000),
             poll(five_tt["refresh_at"], result="ready_and_send", request={"fetch_id": 2}),
             poll(five_tt["usable_until"], result="wait", fetch_id=2),
             respond(five_tt["usable_until"] + 100, 2, 503, "", result="error",
                     error={"retry_at": five_tt["usable_until"] + 1100}),
             drain(),
             send(five_tt["usable_until"] + 1100, 3),
             events({"type": "refresh_started", "fetch_id": 3, "reason": "expired"}),
         ])


scenario("outage-grace-wakes-at-the-usable-limit-first", "During an outage the host is woken at the token's usable "
         "limit (where the poll announces the grace), and only then at the end of the grace.",
         ["outage grace", "next wakeup"], config(), grace_prefix() + [
             wakeup(G_USABLE),
             ready(G_USABLE),
             wakeup(G_UNTIL),
         ])


rng = SplitMix64(42)
YEAR_FRACTION = 0.5 + 0.49 * (2.0 * rng.unit() - 1.0)
YEAR_USABLE = T + 50 + 365 * 86_400_000 - 30_000
scenario("refresh-ahead-jitter-seeded-year-long-token", "A year-long token shows the seeded refresh point to the "
         "millisecond: every language draws the same 53 bits from the same seed.", ["refresh ahead", "jitter"],
         config(max_lifetime_ms=365 * 86_400_000, refresh_ahead=0.5, refresh_ahead_jitter=0.49), [
             poll(T, result="send"),
             respond(T + 50, 1, 200, ok_body(expires_in=365 * 86_400), result="token",
                     token={"usable_until": YEAR_USABLE,
                            "refresh_at": T + 50 + int((YEAR_USABLE - T - 50) * YEAR_FRACTION)}),
         ], entropy=42)


def replaced(at, secrets):
    return {"do": "replace_secrets", "at": at, "secrets": secrets, "expect": {"result": "replaced", "changed": True}}


def echo_of(at, fetch_id, secret):
    return {**respond(at, fetch_id, 400, json.dumps({"error": "invalid_request",
                                                     "error_description": "old one: " + secret})),
            "forbid_substrings": [secret], "expect": err("invalid_request", description=WITHHELD)}


scenario("redaction-echo-eighth-retired-secret", "The engine remembers the last eight secrets replaced at run time: "
         "the first of eight retired secrets, echoed, is still withheld.", ["redaction", "rotation"],
         config(client_secret=SPECIAL_SECRET), [
             poll(T, result="send"),
             *[replaced(T + 1 + i, [f"rotated-secret-{i}"]) for i in range(8)],
             echo_of(T + 20, 1, SPECIAL_SECRET),
         ])
scenario("redaction-echo-retired-secret-after-rotating-back-and-forth", "Rotating back and forth between two secrets "
         "remembers each once, so an older retired secret is not pushed out of memory.", ["redaction", "rotation"],
         config(client_secret=SPECIAL_SECRET), [
             poll(T, result="send"),
             *[replaced(T + 1 + i, ["blue-secret" if i % 2 == 0 else "green-secret"]) for i in range(12)],
             echo_of(T + 20, 1, SPECIAL_SECRET),
         ])

scenario("request-basic-named-explicitly", "auth_method client_secret_basic named explicitly is the default: a Basic "
         "Authorization header.", ["request building", "client_secret_basic"], config(auth_method="client_secret_basic"),
         [send(T, 1, headers=headers(), body="grant_type=client_credentials")])

config_error("config-empty-secret", "A single empty secret is refused, named without an index.", config(client_secret=""),
             "client_secret",
             problem="must not be empty")
config_error("config-secret-with-line-feed", "A secret holding a line feed (a file read raw) is refused.",
             config(client_secret="s3cr3t\n"), "client_secret",
             problem="must not contain line breaks or NUL (was the secret file read raw?)")
config_error("config-secret-with-carriage-return", "A secret holding a carriage return is refused.",
             config(client_secret="s3cr3t\r"), "client_secret",
             problem="must not contain line breaks or NUL (was the secret file read raw?)")
config_error("config-secret-with-nul", "A secret holding NUL is refused.", config(client_secret="s3cr\u0000t"),
             "client_secret",
             problem="must not contain line breaks or NUL (was the secret file read raw?)")
config_error("config-url-with-user-only", "A user name alone in the URL is refused like user:password.",
             config(token_url="https://svc@auth.example/t"), "token_url",
             problem="must not contain credentials (user:password@)")
config_error("config-refresh-ahead-zero", "refresh_ahead must be above 0.", config(refresh_ahead=0), "refresh_ahead",
             problem="must be a fraction between 0 and 1 (exclusive)")
config_error("config-refresh-ahead-one", "refresh_ahead must be below 1.", config(refresh_ahead=1), "refresh_ahead",
             problem="must be a fraction between 0 and 1 (exclusive)")
config_error("config-jitter-negative", "refresh_ahead_jitter cannot be negative.", config(refresh_ahead_jitter=-0.01),
             "refresh_ahead_jitter",
             problem="must be >= 0 and keep refresh_ahead +/- jitter strictly between 0 and 1")
config_error("config-jitter-reaches-zero", "refresh_ahead - jitter must stay above 0.",
             config(refresh_ahead=0.25, refresh_ahead_jitter=0.25), "refresh_ahead_jitter",
             problem="must be >= 0 and keep refresh_ahead +/- jitter strictly between 0 and 1")
config_error("config-jitter-reaches-one", "refresh_ahead + jitter must stay below 1.",
             config(refresh_ahead=0.75, refresh_ahead_jitter=0.25), "refresh_ahead_jitter",
             problem="must be >= 0 and keep refresh_ahead +/- jitter strictly between 0 and 1")
config_error("config-response-limit-too-small", "max_response_bytes is at least 64.", config(max_response_bytes=63),
             "max_response_bytes",
             problem="must be between 64 and 16777216")
config_error("config-response-limit-too-large", "max_response_bytes is at most 16 MiB.",
             config(max_response_bytes=16 * 1024 * 1024 + 1), "max_response_bytes",
             problem="must be between 64 and 16777216")
YEAR = 365 * 86_400_000
config_error("config-duration-below-its-range", "A duration below its range is refused by name (the hold is at least "
             "1 ms).", config(config_error_hold_ms=0), "config_error_hold_ms",
             problem="must be between 1 and 86400000 (got 0)")
config_error("config-duration-above-its-range", "A duration above its range is refused by name (the margin is at most "
             "a year).", config(refresh_margin_ms=YEAR + 1), "refresh_margin_ms",
             problem="must be between 0 and 31536000000 (got 31536000001)")
config_error("config-max-lifetime-below-min", "max_lifetime_ms cannot be below min_lifetime_ms.",
             config(min_lifetime_ms=5_000, max_lifetime_ms=4_999), "max_lifetime_ms",
             problem="must be between 5000 and 31536000000 (got 4999)")
scenario("config-accepts-the-lower-bounds", "Every range includes its lower end.", ["configuration"],
         config(max_response_bytes=64, config_error_hold_ms=1, request_timeout_ms=1, backoff_initial_ms=1,
                backoff_max_ms=1, backoff_min_ms=0, max_retry_after_ms=0, invalidate_min_interval_ms=0,
                min_lifetime_ms=1, max_lifetime_ms=1, default_lifetime_ms=1, refresh_margin_ms=0,
                outage_grace_safety_ms=0, refresh_ahead=0.5, refresh_ahead_jitter=0.49),
         [send(T, 1, timeout_ms=1)])
scenario("config-accepts-the-upper-bounds", "Every range includes its upper end.", ["configuration"],
         config(max_response_bytes=16 * 1024 * 1024, refresh_margin_ms=YEAR, min_lifetime_ms=YEAR,
                max_lifetime_ms=YEAR, default_lifetime_ms=YEAR, request_timeout_ms=3_600_000,
                backoff_initial_ms=86_400_000, backoff_max_ms=86_400_000, backoff_min_ms=86_400_000,
                max_retry_after_ms=86_400_000, config_error_hold_ms=86_400_000,
                invalidate_min_interval_ms=86_400_000, outage_grace_safety_ms=86_400_000),
         [send(T, 1, timeout_ms=3_600_000)])


# ---- 14. signed client assertions (private_key_jwt, client_secret_jwt) ------------------------------
#
# The assertions are signed here by tests/conformance/jose.py (plain-Python RS256, ES256 with RFC 6979,
# HS256 and the engine's entropy pool, from the specifications), with the published test keys in
# tests/conformance/keys/: fixed entropy and a fixed key give exact bytes.

import jose  # noqa: E402  (beside this file)

RSA_PEM = jose.key_text("test-only-rsa-2048.pkcs8.pem")
RSA_JWK = jose.jwk("test-only-rsa-2048.jwk.json")
EC_JWK_TEXT = jose.key_text("test-only-p256.jwk.json")
EC_JWK = jose.jwk("test-only-p256.jwk.json")
# A PEM key has no kid: the engine uses its RFC 7638 thumbprint. The JWK names its own.
RS256 = ("RS256", lambda m: jose.rs256(RSA_JWK, m), jose.public_thumbprint(RSA_JWK))
ES256 = ("ES256", lambda m: jose.es256(EC_JWK, m), EC_JWK["kid"])
HS256 = ("HS256", lambda m: jose.hs256(SECRET, m), None)
JWT_HEADERS = [["Content-Type", "application/x-www-form-urlencoded"], ["Accept", "application/json"]]


def jwt_body(signed, scope=(), cid=CID):
    return body(scope) + "&client_id=" + form(cid) + "&client_assertion_type=" + form(jose.ASSERTION_TYPE) + \
        "&client_assertion=" + signed


def signed(pool, signer, at, aud=URL, lifetime=60_000, cid=CID):
    alg, sign, kid = signer
    return jose.assertion(pool, alg, sign, kid, cid, aud, at, lifetime)


def jwt_request(fetch_id, assertion_text, url=URL, scope=()):
    return {"fetch_id": fetch_id, "method": "POST", "url": url, "headers": JWT_HEADERS,
            "body": jwt_body(assertion_text, scope), "timeout_ms": 10_000}


def key_config(**overrides):
    return config(client_secret=None, auth_method="private_key_jwt", **overrides)


pool = jose.Pool(7)
first = signed(pool, RS256, T)
tt = times(T + 40, 3_600_000)
second = signed(pool, RS256, tt["refresh_at"])
scenario("assertion-private-key-jwt-rs256", "private_key_jwt with an RSA PKCS#8 key: the body carries client_id, "
         "the assertion type and an RS256 assertion (kid = the key's RFC 7638 thumbprint, iss = sub = client id, "
         "aud = the token endpoint, exp = iat + 60, a jti from the entropy pool); no Authorization header. "
         "Each request signs a new assertion with a fresh jti.", ["private_key_jwt", "request building"],
         key_config(private_key=RSA_PEM), [
             poll(T, result="send", request=jwt_request(1, first)),
             events({"type": "refresh_started", "fetch_id": 1, "reason": "initial", "secret_index": 0}),
             got(T + 40, 1),
             poll(tt["refresh_at"], result="ready_and_send", token={"access_token": "at-1"},
                  request=jwt_request(2, second)),
         ], entropy=7)

pool = jose.Pool(3)
scenario("assertion-private-key-jwt-es256", "private_key_jwt with a P-256 JWK: ES256 with RFC 6979 nonces, so the "
         "signature is exact; the JWK's kid and alg are used; the scope is in the body before the client "
         "authentication.", ["private_key_jwt", "request building"],
         key_config(private_key=EC_JWK_TEXT, scope="billing:read"), [
             poll(T + 999, result="send", request=jwt_request(1, signed(pool, ES256, T + 999), scope=["billing:read"])),
         ], entropy=3)

pool = jose.Pool(5)
scenario("assertion-client-secret-jwt-hs256", "client_secret_jwt: an HS256 assertion keyed with the client "
         "secret, no kid; the secret itself is not sent; the assertion lives assertion_lifetime_ms.",
         ["client_secret_jwt", "request building"],
         config(auth_method="client_secret_jwt", assertion_lifetime_ms=30_000), [
             poll(T, result="send", request=jwt_request(1, signed(pool, HS256, T, lifetime=30_000))),
         ], entropy=5)

pool = jose.Pool(11)
scenario("assertion-audience-issuer", "assertion_audience \"issuer\": aud is the configured issuer, not the "
         "token endpoint (token_url given, so nothing is discovered).", ["private_key_jwt"],
         key_config(private_key=EC_JWK_TEXT, issuer="https://auth.example", assertion_audience="issuer"), [
             poll(T, result="send", request=jwt_request(1, signed(pool, ES256, T, aud="https://auth.example"))),
         ], entropy=11)

pool = jose.Pool(13)
new_signed = signed(pool, ES256, T)
old_signed = signed(pool, RS256, T + 11)
tt = times(T + 20, 3_600_000)
later = signed(pool, RS256, tt["refresh_at"])
scenario("assertion-key-fallback-new-then-old", "Keys [new, old]: invalid_client with the new key makes the engine "
         "sign with the old one at once; the key that worked is remembered for the next refresh.",
         ["private_key_jwt", "key rotation", "secret fallback"],
         key_config(private_key=[EC_JWK_TEXT, RSA_PEM]), [
             poll(T, result="send", request=jwt_request(1, new_signed)),
             {**respond(T + 10, 1, 401, '{"error":"invalid_client"}'),
              "expect": err("invalid_client", retryable=True, retry_at=T + 10)},
             events(
                 {"type": "refresh_started", "fetch_id": 1, "secret_index": 0, "reason": "initial"},
                 {"type": "refresh_failed", "fetch_id": 1, "error": {"kind": "invalid_client"}},
                 {"type": "secret_fallback", "fetch_id": 1, "from_index": 0, "to_index": 1}),
             poll(T + 11, result="send", request=jwt_request(2, old_signed)),
             got(T + 20, 2),
             poll(tt["refresh_at"], result="ready_and_send", request=jwt_request(3, later)),
         ], entropy=13)

pool = jose.Pool(17)
echoed = signed(pool, ES256, T)
scenario("assertion-echo-withheld", "A server that echoes the client assertion (or only its signature) in "
         "error_description has that text withheld, like an echoed secret.", ["redaction", "private_key_jwt"],
         key_config(private_key=EC_JWK_TEXT), [
             poll(T, result="send", request=jwt_request(1, echoed)),
             {**respond(T + 10, 1, 400, json.dumps({"error": "invalid_request",
                                                    "error_description": "bad signature " + echoed.split(".")[2]})),
              "expect": err("invalid_request", description=WITHHELD),
              "forbid_substrings": [echoed.split(".")[2]]},
             {"do": "events", "forbid_substrings": [echoed.split(".")[2]]},
         ], entropy=17)

config_error("config-private-key-jwt-without-key", "private_key_jwt needs a private key.",
             key_config(), "private_key")
config_error("config-private-key-not-a-key", "A private_key that is neither PEM nor a JWK is refused by name "
             "(never quoted).", key_config(private_key="hunter2"), "private_key")
config_error("config-private-key-rsa-too-short", "An RSA key under 2048 bits is refused.",
             key_config(private_key=jose.key_text("test-only-rsa-1024.pkcs8.pem")), "private_key")
config_error("config-private-key-second-bad", "The bad key of a list is named by its index.",
             key_config(private_key=[RSA_PEM, "{}"]), "private_key[1]")
config_error("config-assertion-alg-not-hmac", "client_secret_jwt signs with HS256/384/512 only.",
             config(auth_method="client_secret_jwt", assertion_signing_alg="RS256"), "assertion_signing_alg")
config_error("config-assertion-alg-does-not-fit-key", "An EC key cannot sign RS256.",
             key_config(private_key=EC_JWK_TEXT.replace('"alg": "ES256",', ''), assertion_signing_alg="RS256"),
             "private_key")
config_error("config-assertion-audience-issuer-without-issuer", "assertion_audience \"issuer\" needs issuer.",
             key_config(private_key=EC_JWK_TEXT, assertion_audience="issuer"), "assertion_audience")
config_error("config-assertion-lifetime-too-long", "An assertion lives at most 10 minutes.",
             key_config(private_key=EC_JWK_TEXT, assertion_lifetime_ms=600_001), "assertion_lifetime_ms")

# ---- 15. issuer discovery ---------------------------------------------------------------------------

ISS = "https://auth.example"
AS_META = ISS + "/.well-known/oauth-authorization-server"
OIDC_META = ISS + "/.well-known/openid-configuration"
TOKEN_V2 = ISS + "/oauth2/v2/token"


def disc_config(**overrides):
    return config(**{"token_url": None, "issuer": ISS, **overrides})


def metadata(issuer=ISS, token_endpoint=URL, methods=None, **more):
    doc = {"issuer": issuer, **({"token_endpoint": token_endpoint} if token_endpoint else {}), **more}
    if methods is not None:
        doc["token_endpoint_auth_methods_supported"] = methods
    return json.dumps(doc)


def get(fetch_id, url):
    return {"fetch_id": fetch_id, "method": "GET", "url": url, "headers": [["Accept", "application/json"]],
            "body": "", "timeout_ms": 10_000}


def discovered(at, fetch_id, doc_text, token_endpoint=URL, method="client_secret_basic"):
    return [
        {**respond(at, fetch_id, 200, doc_text),
         "expect": err("discovery_complete", fault="host", retryable=True, retry_at=at, status=200)},
    ]


def secret_post(fetch_id, url=URL):
    return {"fetch_id": fetch_id, "method": "POST", "url": url, "headers": headers(), "body": body()}


scenario("discovery-rfc8414-document", "issuer without token_url: the first request is a GET of the RFC 8414 "
         "metadata; a document naming the issuer exactly gives the token endpoint; with no "
         "token_endpoint_auth_methods_supported the method is client_secret_basic (RFC 8414's default).",
         ["discovery"], disc_config(), [
             poll(T, result="send", request=get(1, AS_META)),
             poll(T + 5, result="wait", fetch_id=1),
             *discovered(T + 10, 1, metadata()),
             events({"type": "discovery_started", "fetch_id": 1, "url": AS_META, "cause": "initial"},
                    {"type": "discovery_completed", "fetch_id": 1, "token_endpoint": URL,
                     "auth_method": "client_secret_basic"}),
             poll(T + 11, result="send", request=secret_post(2)),
             events({"type": "refresh_started", "fetch_id": 2, "reason": "initial", "secret_index": 0}),
             got(T + 20, 2),
         ])

scenario("discovery-404-then-openid-configuration", "No RFC 8414 document (404): the OpenID Connect one is asked "
         "for at once, without backoff.", ["discovery"], disc_config(), [
             poll(T, result="send", request=get(1, AS_META)),
             events({"type": "discovery_started", "fetch_id": 1, "url": AS_META, "cause": "initial"}),
             {**respond(T + 10, 1, 404, "not found", hdrs=[["Content-Type", "text/plain"]]),
              "expect": err("discovery_failed", status=404, retryable=True, retry_at=T + 10)},
             events(),  # an absent RFC 8414 document is normal (Hydra, Keycloak): no refresh_failed warning
             poll(T + 11, result="send", request=get(2, OIDC_META)),
             events({"type": "discovery_started", "fetch_id": 2, "url": OIDC_META, "cause": "initial"}),
             *discovered(T + 20, 2, metadata()),
             poll(T + 21, result="send", request=secret_post(3)),
         ])

scenario("discovery-issuer-with-a-path", "An issuer with a path: RFC 8414 inserts the well-known segment before "
         "the path, OpenID Connect appends it.", ["discovery"],
         disc_config(issuer=ISS + "/tenant-a/"), [
             poll(T, result="send", request=get(1, ISS + "/.well-known/oauth-authorization-server/tenant-a")),
             respond(T + 10, 1, 410, "", result="error"),
             poll(T + 11, result="send", request=get(2, ISS + "/tenant-a/.well-known/openid-configuration")),
             *discovered(T + 20, 2, metadata(issuer=ISS + "/tenant-a/")),
         ])

scenario("discovery-both-documents-missing", "Neither document exists: a configuration fault, held.",
         ["discovery", "hold"], disc_config(), [
             poll(T, result="send", request=get(1, AS_META)),
             respond(T + 10, 1, 404, "", result="error"),
             poll(T + 11, result="send", request=get(2, OIDC_META)),
             {**respond(T + 20, 2, 404, ""),
              "expect": err("discovery_failed", fault="configuration", retryable=False, retry_at=T + 20 + HOLD)},
             fail(T + 30, "discovery_failed"),
             poll(T + 20 + HOLD, result="send", request=get(3, AS_META)),
         ])

scenario("discovery-issuer-mismatch", "A document naming another issuer (even by a trailing slash) is refused: "
         "its endpoints are not trusted. Held like a configuration error.", ["discovery", "hold"], disc_config(), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 200, metadata(issuer=ISS + "/")),
              "expect": err("issuer_mismatch", fault="configuration", retryable=False, retry_at=T + 10 + HOLD,
                            description="the metadata document names issuer \"https://auth.example/\", not the "
                                        "configured \"https://auth.example\" (they must be equal, character for "
                                        "character)")},
             fail(T + 20, "issuer_mismatch"),
         ])

scenario("discovery-missing-token-endpoint", "A document without token_endpoint: discovery failed, held.",
         ["discovery", "hold"], disc_config(), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 200, metadata(token_endpoint=None)),
              "expect": err("discovery_failed", retryable=False,
                            description="issuer discovery: the metadata document has no token_endpoint")},
         ])

scenario("discovery-http-token-endpoint-off-loopback", "A discovered token_endpoint is checked like token_url: "
         "plain http off loopback is refused.", ["discovery", "hold"], disc_config(), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 200, metadata(token_endpoint="http://auth.example/oauth2/token")),
              "expect": err("discovery_failed", retryable=False)},
         ])

scenario("discovery-unsupported-method", "A configured auth method the server does not list: discovery failed, "
         "naming what it supports.", ["discovery", "hold"], disc_config(auth_method="client_secret_post"), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 200, metadata(methods=["client_secret_basic", "private_key_jwt"])),
              "expect": err("discovery_failed", retryable=False, status=200,
                            description="the server does not support auth_method client_secret_post (it supports: "
                                        "client_secret_basic, private_key_jwt)")},
         ])

pool = jose.Pool(19)
scenario("discovery-picks-private-key-jwt", "With a key and a secret and no configured method, the engine picks "
         "private_key_jwt when the server supports it; aud is the discovered token endpoint.",
         ["discovery", "private_key_jwt"],
         disc_config(private_key=EC_JWK_TEXT, allow_insecure_http=None), [
             poll(T, result="send", request=get(1, AS_META)),
             *discovered(T + 10, 1, metadata(token_endpoint=TOKEN_V2,
                                              methods=["client_secret_basic", "private_key_jwt"])),
             events({"type": "discovery_started"},
                    {"type": "discovery_completed", "token_endpoint": TOKEN_V2, "auth_method": "private_key_jwt"}),
             poll(T + 11, result="send",
                  request=jwt_request(2, signed(pool, ES256, T + 11, aud=TOKEN_V2), url=TOKEN_V2)),
         ], entropy=19)

scenario("discovery-server-error-retried", "A 503 for the metadata is an outage: backoff, then the same URL again.",
         ["discovery", "backoff"], disc_config(), [
             poll(T, result="send", request=get(1, AS_META)),
             {**respond(T + 10, 1, 503, ""), "expect": err("server_error", retryable=True, retry_at=T + 1010)},
             fail(T + 20, "server_error", retry_at=T + 1010),
             poll(T + 1010, result="send", request=get(2, AS_META)),
             *discovered(T + 1020, 2, metadata()),
             poll(T + 1021, result="send", request=secret_post(3)),
         ])

scenario("discovery-not-json", "An HTML page instead of the metadata: a malformed response, retried.",
         ["discovery", "backoff"], disc_config(), [
             poll(T, result="send"),
             {**respond(T + 10, 1, 200, "<html>proxy</html>", hdrs=[["Content-Type", "text/html"]]),
              "expect": err("malformed_response", retryable=True, retry_at=T + 1010)},
         ])

scenario("discovery-transport-error-retried", "A connection failure during discovery is transient.",
         ["discovery", "transport"], disc_config(), [
             poll(T, result="send"),
             {"do": "transport_error", "at": T + 10, "fetch_id": 1, "kind": "connect", "message": "refused",
              "expect": err("transport", retryable=True, retry_at=T + 1010)},
             poll(T + 1010, result="send", request=get(2, AS_META)),
         ])

scenario("discovery-refetched-after-token-endpoint-404", "The discovered token endpoint answers 404: the document "
         "is fetched again at once and the token request goes to the endpoint it names now.",
         ["discovery", "endpoint not found"], disc_config(), [
             poll(T, result="send"),
             *discovered(T + 10, 1, metadata()),
             poll(T + 11, result="send", request=secret_post(2)),
             drain(),
             {**respond(T + 20, 2, 404, ""), "expect": err("endpoint_not_found", retryable=True, retry_at=T + 20)},
             # the event says what the engine does: retried at once
             events({"type": "refresh_failed", "fetch_id": 2,
                     "error": {"kind": "endpoint_not_found", "retryable": True, "retry_at": T + 20}}),
             poll(T + 21, result="send", request=get(3, AS_META)),
             events({"type": "discovery_started", "fetch_id": 3, "cause": "endpoint_not_found"}),
             *discovered(T + 30, 3, metadata(token_endpoint=TOKEN_V2)),
             poll(T + 31, result="send", request=secret_post(4, TOKEN_V2)),
             got(T + 40, 4),
         ])

scenario("discovery-second-token-endpoint-404-held", "A 404 again from the endpoint the fresh document names: "
         "held as endpoint_not_found (no loop).", ["discovery", "endpoint not found", "hold"], disc_config(), [
             poll(T, result="send"),
             *discovered(T + 10, 1, metadata()),
             poll(T + 11, result="send"),
             respond(T + 20, 2, 404, "", result="error"),
             poll(T + 21, result="send", request=get(3, AS_META)),
             *discovered(T + 30, 3, metadata()),
             poll(T + 31, result="send", request=secret_post(4)),
             {**respond(T + 40, 4, 404, ""),
              "expect": err("endpoint_not_found", retryable=False, retry_at=T + 40 + HOLD)},
         ])

tt = times(T + 20, 3_600_000)
scenario("discovery-refreshed-after-its-interval", "A document older than discovery_refresh_ms is fetched again "
         "before the next token request, which then goes to the endpoint it names.", ["discovery"],
         disc_config(discovery_refresh_ms=600_000), [
             poll(T, result="send"),
             *discovered(T + 10, 1, metadata()),
             poll(T + 11, result="send"),
             got(T + 20, 2),
             drain(),
             poll(tt["refresh_at"], result="ready_and_send", request=get(3, AS_META)),
             events({"type": "discovery_started", "fetch_id": 3, "cause": "interval"}),
             *discovered(tt["refresh_at"] + 10, 3, metadata(token_endpoint=TOKEN_V2)),
             poll(tt["refresh_at"] + 11, result="ready_and_send", request=secret_post(4, TOKEN_V2)),
         ])

scenario("discovery-refresh-outage-keeps-the-document", "A periodic refresh of the document that fails for a "
         "transient reason keeps the cached document: the token request goes out at once.", ["discovery", "outage"],
         disc_config(discovery_refresh_ms=600_000), [
             poll(T, result="send"),
             *discovered(T + 10, 1, metadata()),
             poll(T + 11, result="send"),
             got(T + 20, 2),
             poll(tt["refresh_at"], result="ready_and_send", request=get(3, AS_META)),
             drain(),
             {**respond(tt["refresh_at"] + 10, 3, 503, ""),
              "expect": err("server_error", retryable=True, retry_at=tt["refresh_at"] + 10)},
             events({"type": "refresh_failed", "fetch_id": 3,
                     "error": {"kind": "server_error", "retryable": True, "retry_at": tt["refresh_at"] + 10}},
                    {"type": "discovery_kept_cached", "fetch_id": 3, "retry_at": tt["refresh_at"] + 10 + 60_000}),
             poll(tt["refresh_at"] + 11, result="ready_and_send", request=secret_post(4)),
         ])

scenario("discovery-refetch-after-404-in-an-outage-backs-off", "The document asked for again after a token-endpoint "
         "404 meets a 503: the endpoint that answered 404 is not used again; the engine backs off.",
         ["discovery", "endpoint not found", "backoff"], disc_config(), [
             poll(T, result="send"),
             *discovered(T + 10, 1, metadata()),
             poll(T + 11, result="send"),
             respond(T + 20, 2, 404, "", result="error"),
             poll(T + 21, result="send", request=get(3, AS_META)),
             {**respond(T + 30, 3, 503, ""), "expect": err("server_error", retryable=True, retry_at=T + 1030)},
             fail(T + 40, "server_error"),
             poll(T + 1030, result="send", request=get(4, AS_META)),
         ])

tt = times(T + 20, 3_600_000)
scenario("discovery-refresh-when-the-token-expired", "The document is due when the token has expired: the token "
         "request that follows the metadata is started for the reason 'expired'.", ["discovery"],
         disc_config(discovery_refresh_ms=600_000), [
             poll(T, result="send"),
             *discovered(T + 10, 1, metadata()),
             poll(T + 11, result="send"),
             got(T + 20, 2),
             drain(),
             poll(tt["usable_until"], result="send", request=get(3, AS_META)),
             *discovered(tt["usable_until"] + 10, 3, metadata()),
             poll(tt["usable_until"] + 11, result="send", request=secret_post(4)),
             events({"type": "discovery_started", "fetch_id": 3, "cause": "interval"},
                    {"type": "discovery_completed", "fetch_id": 3},
                    {"type": "refresh_started", "fetch_id": 4, "reason": "expired"}),
         ])

config_error("config-issuer-http-not-loopback", "issuer is checked like token_url.",
             disc_config(issuer="http://auth.example"), "issuer")
config_error("config-issuer-with-query", "An issuer has no query (RFC 8414 §2).",
             disc_config(issuer="https://auth.example/?tenant=a"), "issuer")
config_error("config-no-token-url-and-no-issuer", "token_url or issuer is required.",
             config(token_url=None), "token_url")


# ---- the host contract: environment → options (every host's fromEnv / from_env) ------------------
#
# Files in host/ (see README "Host-contract scenarios"): the environment, the options a caller passed
# explicitly (snake_case; each host passes them in its own spelling), the secret file's contents, and
# either the resulting configuration or the error (field and problem, the exact words every host shows).

HOST_OUT = OUT.parent / "host"
HOST = []


def env_case(name, description, env, expect=None, error=None, prefix="", explicit=None, explicit_secret_file=None,
             explicit_ca_file=None, secret_file_contents=None, key_file_contents=None):
    case = {"name": name, "kind": "env", "description": description, "prefix": prefix, "env": env,
            "explicit": explicit or {}, "explicit_secret_file": explicit_secret_file,
            "explicit_ca_file": explicit_ca_file, "secret_file_contents": secret_file_contents}
    if key_file_contents is not None:
        case["key_file_contents"] = key_file_contents
    if error is not None:
        case["expect_error"] = error
    else:
        base = {"auth_method": "client_secret_basic", "scopes": [], "audiences": [], "secret_file": None,
                "ca_file": None}
        case["expect"] = {**base, **expect}
    HOST.append(case)


BASE_ENV = {"CLIENT_ID": "billing-worker", "TOKEN_URL": URL, "CLIENT_SECRET": "s3cr3t"}
env_case("env-minimal", "The three required variables make a configuration.", BASE_ENV,
         {"token_url": URL, "client_id": "billing-worker", "secret_count": 1})
env_case("env-prefix-and-lists", "A prefix applies to every variable but TOKENWELL_*; SCOPE and AUDIENCE are "
         "space-separated; CLIENT_SECRET is comma-separated, current first.",
         {"BILLING_CLIENT_ID": "c", "BILLING_TOKEN_URL": URL, "BILLING_CLIENT_SECRET": "new , old",
          "BILLING_SCOPE": " billing:read  billing:write ", "BILLING_AUDIENCE": "https://a.example https://b.example",
          "BILLING_AUTH_METHOD": "client_secret_post", "CLIENT_ID": "unprefixed-is-ignored"},
         {"client_id": "c", "secret_count": 2, "scopes": ["billing:read", "billing:write"],
          "audiences": ["https://a.example", "https://b.example"], "auth_method": "client_secret_post"},
         prefix="BILLING_")
env_case("env-hydra-url", "HYDRA_URL is Ory Hydra's public URL: /oauth2/token is appended (no discovery).",
         {"CLIENT_ID": "c", "CLIENT_SECRET": "s", "HYDRA_URL": "https://hydra.example/"},
         {"token_url": "https://hydra.example/oauth2/token"})
env_case("env-issuer-url", "ISSUER_URL is the issuer: the token endpoint is discovered (no token_url), and the "
         "issuer is kept exactly as given.",
         {"CLIENT_ID": "c", "CLIENT_SECRET": "s", "ISSUER_URL": "https://issuer.example"},
         {"token_url": "", "issuer": "https://issuer.example"})
env_case("env-issuer-url-with-token-url", "TOKEN_URL (or HYDRA_URL) wins for the token endpoint; ISSUER_URL is "
         "still the issuer (for assertion_audience \"issuer\").",
         {"CLIENT_ID": "c", "CLIENT_SECRET": "s", "ISSUER_URL": "https://issuer.example/", "HYDRA_URL": "https://h/"},
         {"token_url": "https://h/oauth2/token", "issuer": "https://issuer.example/"})
env_case("env-private-key-file", "CLIENT_PRIVATE_KEY_FILE: the host reads it; with no secret the method is "
         "private_key_jwt.",
         {"CLIENT_ID": "c", "ISSUER_URL": "https://issuer.example", "CLIENT_PRIVATE_KEY_FILE": "/run/keys/client"},
         {"token_url": "", "auth_method": "private_key_jwt", "secret_count": 0, "key_count": 2,
          "key_file": "/run/keys/client"},
         key_file_contents=jose.key_text("test-only-p256.pkcs8.pem") + jose.key_text("test-only-rsa-2048.pkcs8.pem"))
env_case("env-private-key-file-not-a-key", "A key file that holds no key is named by its variable, never quoted.",
         {"CLIENT_ID": "c", "TOKEN_URL": URL, "CLIENT_PRIVATE_KEY_FILE": "/run/keys/client"},
         error={"field": "CLIENT_PRIVATE_KEY_FILE",
                "problem": "the key file is neither PEM (-----BEGIN ...) nor a JWK / JWKS (JSON)"},
         key_file_contents="hunter2")
env_case("env-auth-method-private-key-jwt", "AUTH_METHOD=private_key_jwt with a key file and a secret.",
         {**BASE_ENV, "AUTH_METHOD": "private_key_jwt", "CLIENT_PRIVATE_KEY_FILE": "/k"},
         {"auth_method": "private_key_jwt", "key_count": 1, "secret_count": 1, "key_file": "/k"},
         key_file_contents=jose.key_text("test-only-p256.jwk.json"))
env_case("env-explicit-options-win", "Explicit options win over the environment, field by field.",
         {**BASE_ENV, "SCOPE": "from:env", "AUDIENCE": "https://env.example"},
         {"client_id": "explicit-id", "scopes": ["a", "b"], "audiences": ["https://env.example"],
          "token_url": URL, "secret_count": 2},
         explicit={"client_id": "explicit-id", "scope": ["a", "b"], "client_secret": ["x", "y"]})
env_case("env-everything-missing-at-once", "Every missing required variable is named in one error, not one per run.",
         {"SCOPE": "a"}, error={"field": "CLIENT_ID", "problem": "is not set; also not set: TOKEN_URL (or HYDRA_URL / "
                                "ISSUER_URL), CLIENT_SECRET (or CLIENT_SECRET_FILE / CLIENT_PRIVATE_KEY_FILE)"})
env_case("env-missing-named-with-prefix", "A missing variable is named with its prefix and its alternatives.",
         {"P_CLIENT_ID": "c", "P_CLIENT_SECRET": "s"}, prefix="P_",
         error={"field": "P_TOKEN_URL", "problem": "is not set (or P_HYDRA_URL / P_ISSUER_URL)"})
env_case("env-explicit-fills-what-is-missing", "An explicit option satisfies a required field the environment lacks.",
         {"CLIENT_SECRET": "s"}, {"client_id": "x", "token_url": URL, "secret_count": 1},
         explicit={"client_id": "x", "token_url": URL})
env_case("env-scope-error-keeps-its-index", "An error in a value from a variable names the variable, with the index.",
         {**BASE_ENV, "SCOPE": 'ok bad"quote'},
         error={"field": "SCOPE[1]",
                "problem": "contains '\"', which RFC 6749 §3.3 does not allow in a scope token"})
env_case("env-explicit-error-keeps-the-option-name", "An error in an explicit option names the option.",
         BASE_ENV, explicit={"audience": ["https://a.example", " "]},
         error={"field": "audience[1]", "problem": "must not be empty"})
env_case("env-token-url-not-a-url", "A malformed TOKEN_URL is named by its variable.",
         {**BASE_ENV, "TOKEN_URL": "hydra/oauth2/token"},
         error={"field": "TOKEN_URL", "problem": "is not a valid URL (relative URL without a base)"})
env_case("env-plain-http-off-loopback-refused", "Plain http to a remote host is refused by the variable's name.",
         {**BASE_ENV, "TOKEN_URL": "http://hydra:4444/oauth2/token"},
         error={"field": "TOKEN_URL", "problem": "must use https (plain http is allowed only for loopback hosts "
                "unless allow_insecure_http is set)"})
env_case("env-allow-insecure-http", "TOKENWELL_ALLOW_INSECURE_HTTP=1 allows a compose network's http://hydra:4444.",
         {**BASE_ENV, "TOKEN_URL": "http://hydra:4444/oauth2/token", "TOKENWELL_ALLOW_INSECURE_HTTP": "1"},
         {"token_url": "http://hydra:4444/oauth2/token"})
env_case("env-allow-insecure-http-malformed", "TOKENWELL_ALLOW_INSECURE_HTTP takes 1 or 0.",
         {**BASE_ENV, "TOKENWELL_ALLOW_INSECURE_HTTP": "yes"},
         error={"field": "TOKENWELL_ALLOW_INSECURE_HTTP", "problem": "must be 1 or 0"})
env_case("env-auth-method-malformed", "A malformed AUTH_METHOD is named by its variable.",
         {**BASE_ENV, "AUTH_METHOD": "basic"},
         error={"field": "AUTH_METHOD", "problem": "must be \"client_secret_basic\", \"client_secret_post\", "
                                                   "\"private_key_jwt\" or \"client_secret_jwt\""})
env_case("env-secret-and-secret-file", "CLIENT_SECRET and CLIENT_SECRET_FILE together are refused.",
         {**BASE_ENV, "CLIENT_SECRET_FILE": "/run/secrets/s"},
         error={"field": "CLIENT_SECRET", "problem": "set only one of CLIENT_SECRET and CLIENT_SECRET_FILE"})
env_case("env-secret-file", "CLIENT_SECRET_FILE: one secret per line, current first, blank lines ignored.",
         {"CLIENT_ID": "c", "TOKEN_URL": URL, "CLIENT_SECRET_FILE": "/run/secrets/client"},
         {"secret_count": 2, "secret_file": "/run/secrets/client"}, secret_file_contents="new-secret\n\n  old-secret \n")
env_case("env-secret-file-empty", "A secret file holding no secret is named by its variable.",
         {"CLIENT_ID": "c", "TOKEN_URL": URL, "CLIENT_SECRET_FILE": "/run/secrets/client"},
         error={"field": "CLIENT_SECRET_FILE", "problem": "the secret file holds no secret"},
         secret_file_contents=" \n\n")
env_case("env-explicit-secret-replaces-the-file", "An explicit secret replaces the environment's secret, file or not.",
         {"CLIENT_ID": "c", "TOKEN_URL": URL, "CLIENT_SECRET_FILE": "/run/secrets/client"},
         {"secret_count": 1, "secret_file": None}, explicit={"client_secret": "explicit"})
env_case("env-explicit-secret-file-replaces-the-secret", "An explicit secret file replaces CLIENT_SECRET.",
         BASE_ENV, {"secret_count": 3, "secret_file": "/etc/tokenwell/secret"},
         explicit_secret_file="/etc/tokenwell/secret", secret_file_contents="a,b,c\n")
env_case("env-explicit-secret-and-secret-file", "An explicit secret and an explicit secret file together are "
         "refused, rather than one silently winning.",
         BASE_ENV, error={"field": "client_secret", "problem": "set only one of client_secret and client_secret_file"},
         explicit={"client_secret": "explicit"}, explicit_secret_file="/etc/tokenwell/secret",
         secret_file_contents="a\n")
env_case("env-ca-file", "TOKENWELL_CA_FILE (never prefixed) names the CA file; an explicit ca_file wins.",
         {**BASE_ENV, "TOKENWELL_CA_FILE": "/etc/ssl/private-ca.pem"}, {"ca_file": "/etc/ssl/private-ca.pem"})
env_case("env-explicit-ca-file-wins", "An explicit ca_file wins over TOKENWELL_CA_FILE.",
         {**BASE_ENV, "TOKENWELL_CA_FILE": "/etc/ssl/private-ca.pem"}, {"ca_file": "/opt/ca.pem"},
         explicit_ca_file="/opt/ca.pem")
env_case("env-blank-values-are-unset", "Blank values count as unset.",
         {**BASE_ENV, "SCOPE": "   ", "AUTH_METHOD": ""}, {"scopes": []})


# ---- the host contract: a secret file's contents → the secrets, or a rejection event ---------------

def file_case(name, description, contents, expect, current=("current-secret",), source="CLIENT_SECRET_FILE"):
    HOST.append({"name": name, "kind": "secret_file", "description": description, "current": list(current),
                 "source": source, "contents": contents, "expect": expect})


def rejected(problem, source="CLIENT_SECRET_FILE"):
    return {"result": "rejected", "error": {"field": source, "problem": problem}, "secret_count": 1,
            "events": [{"type": "secret_file_rejected", "source": source, "problem": problem}]}


file_case("file-lines", "One secret per line, current first; blank lines and surrounding spaces ignored.",
          "new-secret\n\n  old-secret  \n", {"result": "replaced", "changed": True, "secret_count": 2,
                                             "events": [{"type": "secrets_replaced", "count": 2, "hold_lifted": False}]})
file_case("file-one-line-with-commas", "A single line may hold several comma-separated secrets.",
          "new-secret, old-secret\n", {"result": "replaced", "changed": True, "secret_count": 2})
file_case("file-unchanged", "The same secrets again (the file was touched) change nothing and say nothing.",
          "current-secret\n", {"result": "replaced", "changed": False, "secret_count": 1, "events": []})
file_case("file-empty-rejected", "A file with no secret keeps the current secrets, with one event naming the file.",
          "\n \n", rejected("the secret file holds no secret"))
file_case("file-crlf", "Windows line ends are trimmed like spaces.", "new-secret\r\nold-secret\r\n",
          {"result": "replaced", "changed": True, "secret_count": 2})
file_case("file-named-by-option", "A file given as an option is named by the option in the event.",
          "", rejected("the secret file holds no secret", source="client_secret_file"), source="client_secret_file")


# ---- the host contract: the 401 rule of the authorized request helpers ------------------------------
#
# An API answered 401 for the token the helper sent. The helper calls invalidate(token) and retries the
# request once with the next token if the outcome allows it; the retry is never retried.

def unauthorized_case(name, description, outcome, retry):
    HOST.append({"name": name, "kind": "unauthorized", "description": description, "invalidate_outcome": outcome,
                 "expect": {"retry": retry}})


unauthorized_case("401-invalidated-retries-once", "The token was dropped: retry once with a fresh token.",
                  "invalidated", True)
unauthorized_case("401-not-current-retries-once", "A newer token already replaced it: retry once with that one.",
                  "not_current", True)
unauthorized_case("401-rate-limited-does-not-retry", "Invalidated too recently: the same token would be sent again; "
                  "the 401 goes to the caller.", "rate_limited", False)

def write(out, cases, check):
    """Writes (or with ``check`` compares) one folder of scenario files; returns how many."""
    out.mkdir(exist_ok=True)
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), f"duplicate scenario names in {out.name}"
    wanted = {f"{c['name']}.json": json.dumps(c, indent=2, ensure_ascii=False) + "\n" for c in cases}
    if check:
        present = {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.json")}
        if present != wanted:
            stale = sorted(set(present) ^ set(wanted) | {k for k in wanted if present.get(k) != wanted[k]})
            sys.exit(f"conformance scenarios are stale; run tests/conformance/generate.py ({', '.join(stale[:5])})")
        return len(wanted)
    for old in out.glob("*.json"):
        if old.name not in wanted:
            old.unlink()
    for name, text in wanted.items():
        (out / name).write_text(text, encoding="utf-8")
    return len(wanted)


def main():
    check = "--check" in sys.argv
    engine = write(OUT, SCENARIOS, check)
    host = write(HOST_OUT, HOST, check)
    verb = "up to date" if check else "written"
    print(f"{engine} engine scenarios and {host} host-contract scenarios {verb}")


if __name__ == "__main__":
    main()
