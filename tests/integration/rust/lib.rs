//! Helpers for the Rust end-to-end suite: reads the `servers.json` written by
//! `tests/integration/servers/with-servers.sh` and builds tokenwell
//! configurations for its clients.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use tokenwell::blocking::ServiceAccount;
use tokenwell::{Config, Event};

/// The servers described by `$TOKENWELL_SERVERS`, or `None` (with a note on
/// stderr) when the suite runs without the harness. With
/// `TOKENWELL_REQUIRE_SERVERS=1` (set by `tests/integration/run.sh`) a missing
/// description is a failure, never a skip.
pub fn servers() -> Option<Value> {
    match std::env::var("TOKENWELL_SERVERS") {
        Ok(path) => {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
            Some(serde_json::from_str(&text).expect("servers.json is JSON"))
        }
        Err(_) if std::env::var("TOKENWELL_REQUIRE_SERVERS").as_deref() == Ok("1") => {
            panic!("TOKENWELL_SERVERS is not set but TOKENWELL_REQUIRE_SERVERS=1")
        }
        Err(_) => {
            eprintln!("skipped: run under tests/integration/servers/with-servers.sh to test against real servers");
            None
        }
    }
}

/// The two real servers by name: `hydra` and `oidc_provider`.
pub const SERVERS: [&str; 2] = ["hydra", "oidc_provider"];

/// A client of a server as described in servers.json.
#[derive(Debug, Clone)]
pub struct Client {
    /// `hydra` or `oidc_provider`.
    pub server: String,
    /// The token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed audiences.
    pub audience: Vec<String>,
    /// `audience` (Hydra) or `resource` (oidc-provider, RFC 8707).
    pub audience_parameter: String,
}

impl Client {
    /// The client with `role` on `server`.
    pub fn of(servers: &Value, server: &str, role: &str) -> Client {
        let s = &servers[server];
        let c = &s["clients"][role];
        assert!(c.is_object(), "no client {role} on {server}");
        Self::from_json(server, s, c)
    }

    /// A client entry of `server` (e.g. one of its bulk clients).
    pub fn from_json(server: &str, s: &Value, c: &Value) -> Client {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
        };
        Client {
            server: server.to_owned(),
            token_url: s["token_url"].as_str().unwrap().to_owned(),
            client_id: c["client_id"].as_str().unwrap().to_owned(),
            client_secret: c["client_secret"].as_str().unwrap().to_owned(),
            auth_method: c["auth_method"].as_str().unwrap_or("client_secret_basic").to_owned(),
            scopes: strings(&c["scopes"]),
            audience: strings(&c["audience"]),
            audience_parameter: s["audience_parameter"].as_str().unwrap_or("audience").to_owned(),
        }
    }

    /// Configuration options for this client, asking for `scopes` and `audiences`
    /// (sent as `audience`, or as `resource` where the server uses RFC 8707).
    pub fn options(&self, scopes: &[&str], audiences: &[&str]) -> Value {
        let mut options = json!({
            "token_url": self.token_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "auth_method": self.auth_method,
            "scope": scopes,
        });
        if self.audience_parameter == "audience" {
            options["audience"] = json!(audiences);
        } else {
            let extra: Vec<[&str; 2]> = audiences.iter().map(|a| [self.audience_parameter.as_str(), *a]).collect();
            options["extra_params"] = json!(extra);
        }
        options
    }

    /// The client's full allowed scopes and audience.
    pub fn default_options(&self) -> Value {
        let scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        let audience: Vec<&str> = self.audience.iter().map(String::as_str).collect();
        self.options(&scopes, &audience)
    }
}

/// A driver for `options`, recording every event.
pub fn account(options: &Value) -> (ServiceAccount, std::sync::Arc<std::sync::Mutex<Vec<Event>>>) {
    let config = Config::from_json(&options.to_string()).expect("valid configuration");
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&events);
    let account = ServiceAccount::with_event_handler(
        config,
        Some(Box::new(move |e: &Event| sink.lock().unwrap().push(e.clone()))),
    );
    (account, events)
}

/// Runs the real `hydra` CLI (`$HYDRA_BIN`) with `args`; returns stdout, panics with stderr on failure.
pub fn hydra_cli(servers: &Value, args: &[&str]) -> String {
    let bin = PathBuf::from(servers["hydra"]["bin"].as_str().expect("hydra.bin"));
    let output = Command::new(bin).args(args).output().expect("run hydra");
    assert!(output.status.success(), "hydra {:?} failed: {}", args.first(), String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Decodes the claims of a JWT without verifying it.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Milliseconds since the Unix epoch, as the engine's hosts pass `now`.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// 32 bytes from the operating system, for a sans-IO cache's entropy pool.
pub fn os_random() -> [u8; 32] {
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("/dev/urandom");
    bytes
}

/// An HTTP response: status, headers, body.
pub type Response = (u16, Vec<(String, String)>, Vec<u8>);

/// One plain HTTP exchange on loopback (no redirects; a 4xx or 5xx is a
/// response, not an error). `body` is sent for every method but `GET`.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let sent = match method {
        "GET" => headers.iter().fold(agent.get(url), |b, (n, v)| b.header(*n, *v)).call(),
        "POST" => headers.iter().fold(agent.post(url), |b, (n, v)| b.header(*n, *v)).send(body),
        "PUT" => headers.iter().fold(agent.put(url), |b, (n, v)| b.header(*n, *v)).send(body),
        "PATCH" => headers.iter().fold(agent.patch(url), |b, (n, v)| b.header(*n, *v)).send(body),
        other => panic!("no {other} here"),
    };
    let mut response = sent.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
        .collect();
    let body = response.body_mut().with_config().limit(1 << 20).read_to_vec().expect("a response body");
    (status, headers, body)
}

/// Sends an engine request as the blocking driver does (GET without a body for
/// discovery, POST with the form otherwise).
pub fn send(request: &tokenwell::HttpRequest) -> Response {
    let headers: Vec<(&str, &str)> = request.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    http(&request.method, &request.url, &headers, request.body.as_bytes())
}

/// Drives a sans-IO cache until it serves a token or fails, sending its
/// requests (discovery included) and recording each one in `sent`.
pub fn drive(
    cache: &mut tokenwell::TokenCache,
    sent: &mut Vec<tokenwell::HttpRequest>,
) -> Result<tokenwell::Token, tokenwell::TokenError> {
    use tokenwell::PollResult;
    for _ in 0..8 {
        cache.add_entropy(&os_random());
        match cache.poll(now_ms()) {
            PollResult::Ready { token } | PollResult::ReadyAndSend { token, .. } => return Ok(token),
            PollResult::Send { request } => {
                let (status, headers, body) = send(&request.http);
                sent.push(request.http.clone());
                // An error here is read back through the next poll (discovery
                // complete, the next well-known URL, or a fail-fast hold).
                if let Ok(token) = cache.handle_response(request.fetch_id, status, &headers, &body, now_ms()) {
                    return Ok(token);
                }
            }
            PollResult::Fail { error } => return Err(error),
            PollResult::Wait { .. } => panic!("a single-threaded host never waits"),
        }
    }
    panic!("no token and no failure after 8 requests")
}

/// The value of form parameter `name` in an `application/x-www-form-urlencoded` body.
pub fn form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        (n == name).then(|| v.replace('+', " ")).map(|v| percent_decode(&v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|&c| hex(c)), bytes.get(i + 2).and_then(|&c| hex(c))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 form value")
}

/// Decodes the header of a JWT (a client assertion) without verifying it.
pub fn jwt_header(token: &str) -> Value {
    use base64::Engine as _;
    let header = token.split('.').next().expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Every engine event of an account, with a condition wait on them.
#[derive(Default)]
pub struct EventLog {
    events: std::sync::Mutex<Vec<Event>>,
    changed: std::sync::Condvar,
}

impl EventLog {
    /// A copy of the events so far.
    pub fn snapshot(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// How many events so far.
    pub fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// Whether there is no event yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until `condition` holds for the events (checked at each new
    /// event), at most `timeout`; returns whether it holds.
    pub fn wait_for(&self, timeout: std::time::Duration, condition: impl Fn(&[Event]) -> bool) -> bool {
        let guard = self.events.lock().unwrap();
        let (guard, _) = self.changed.wait_timeout_while(guard, timeout, |events| !condition(events)).unwrap();
        condition(&guard)
    }

    /// Records `event` (the account's event handler calls this).
    pub fn record(&self, event: &Event) {
        self.events.lock().unwrap().push(event.clone());
        self.changed.notify_all();
    }
}

/// A driver for `options`, recording every event in an [`EventLog`].
pub fn account_with_log(options: &Value) -> (ServiceAccount, std::sync::Arc<EventLog>) {
    let config = Config::from_json(&options.to_string()).expect("valid configuration");
    let log = std::sync::Arc::new(EventLog::default());
    let sink = std::sync::Arc::clone(&log);
    let account = ServiceAccount::with_event_handler(config, Some(Box::new(move |e: &Event| sink.record(e))));
    (account, log)
}

/// Sets the key set of Hydra client `client_id` with the admin API (JSON
/// Patch; takes effect at once).
pub fn hydra_set_jwks(servers: &Value, client_id: &str, keys: &[Value]) {
    let admin = servers["hydra"]["admin_url"].as_str().expect("hydra.admin_url");
    let patch = json!([{"op": "replace", "path": "/jwks", "value": {"keys": keys}}]).to_string();
    let (status, _, body) = http(
        "PATCH",
        &format!("{admin}/admin/clients/{client_id}"),
        &[("Content-Type", "application/json")],
        patch.as_bytes(),
    );
    assert_eq!(status, 200, "PATCH of Hydra client {client_id}: {}", String::from_utf8_lossy(&body));
}

/// Keycloak's admin REST API, as the master realm's admin of servers.json.
pub struct KeycloakAdmin {
    base_url: String,
    realm: String,
    username: String,
    password: String,
}

impl KeycloakAdmin {
    /// The admin of `servers.keycloak`, for its realm.
    pub fn of(servers: &Value) -> KeycloakAdmin {
        let k = &servers["keycloak"];
        let text = |v: &Value| v.as_str().expect("a string in servers.json keycloak").to_owned();
        KeycloakAdmin {
            base_url: text(&k["base_url"]),
            realm: text(&k["realm"]),
            username: text(&k["admin"]["username"]),
            password: text(&k["admin"]["password"]),
        }
    }

    /// A fresh admin access token (admin-cli, password grant, master realm):
    /// one per call, so that none expires during a long test.
    fn token(&self) -> String {
        use tokenwell::form_urlencode;
        let form = format!(
            "grant_type=password&client_id=admin-cli&username={}&password={}",
            form_urlencode(&self.username),
            form_urlencode(&self.password)
        );
        let (status, _, body) = http(
            "POST",
            &format!("{}/realms/master/protocol/openid-connect/token", self.base_url),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        );
        // Never print the body of a token response.
        assert_eq!(status, 200, "Keycloak admin login failed");
        let parsed: Value = serde_json::from_slice(&body).expect("JSON");
        parsed["access_token"].as_str().expect("access_token").to_owned()
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let bearer = format!("Bearer {}", self.token());
        let url = format!("{}/admin/realms/{}{path}", self.base_url, self.realm);
        let body = body.map(Value::to_string).unwrap_or_default();
        http(method, &url, &[("Authorization", &bearer), ("Content-Type", "application/json")], body.as_bytes())
    }

    /// The representation of the client whose `clientId` is `client_id`.
    pub fn client(&self, client_id: &str) -> Value {
        let (status, _, body) =
            self.call("GET", &format!("/clients?clientId={}", form_urlencode_path(client_id)), None);
        assert_eq!(status, 200, "Keycloak: listing clients: {}", String::from_utf8_lossy(&body));
        let list: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(list.as_array().map(Vec::len), Some(1), "Keycloak: clients named {client_id}");
        list[0].clone()
    }

    /// Replaces a client's representation (`PUT .../clients/{id}`).
    pub fn update_client(&self, client: &Value) -> Result<(), String> {
        let id = client["id"].as_str().expect("a client representation has an id");
        let (status, _, body) = self.call("PUT", &format!("/clients/{id}"), Some(client));
        match status {
            200..=299 => Ok(()),
            _ => Err(format!("Keycloak: PUT client: HTTP {status}: {}", String::from_utf8_lossy(&body))),
        }
    }

    /// Sets the public keys Keycloak checks a `client-jwt` client's
    /// assertions with: the client attribute `jwks.string` (with
    /// `use.jwks.string` = `true`).
    pub fn set_client_jwks(&self, client_id: &str, keys: &[Value]) -> Result<(), String> {
        let mut client = self.client(client_id);
        client["attributes"]["use.jwks.string"] = json!("true");
        client["attributes"]["jwks.string"] = json!(json!({"keys": keys}).to_string());
        self.update_client(&client)
    }
}

fn form_urlencode_path(text: &str) -> String {
    tokenwell::form_urlencode(text).replace('+', "%20")
}
