//! Shared pieces of the fuzz targets: the secrets the harness hands out, the
//! leak check, generators for token-shaped and server-shaped text, and the
//! token checks every target applies.
//!
//! The secrets come from a fixed pool of distinctive strings (never from the
//! fuzzer's bytes), so that "a secret appears in this text" means the engine
//! leaked it and not that a one-letter secret happens to occur in English.

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;

/// The ms-since-epoch instant every timeline starts at.
pub const T0: u64 = 1_700_000_000_000;

/// Valid secrets, each with characters that form encoding, JSON or `Debug`
/// spell differently, and none of which can occur in the engine's own text.
pub const SECRET_POOL: [&str; 8] = [
    "SECRET-a:+%& é=1",
    "SECRET-b/old 2",
    "SECRET-rotated+3",
    "SECRET-\"quote\\4",
    "SECRET-tab\there-5",
    "SÉCRET-ünïcödé-6€",
    "SECRET-~*-._7",
    "SECRET-long-888888888888888888888888888888888888888888888888888888888888",
];

/// Secrets the engine must refuse (empty, line break, NUL); refusals must not echo them.
pub const INVALID_SECRETS: [&str; 3] = ["", "SECRET-line\nbreak-9", "SECRET-nul\0-10"];

/// A secret index chosen by the fuzzer: a valid pool secret, or (rarely) an invalid one.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum SecretChoice {
    /// `SECRET_POOL[i % len]`.
    Pool(u8),
    /// `INVALID_SECRETS[i % len]`.
    Invalid(u8),
}

impl SecretChoice {
    /// The secret text.
    pub fn text(self) -> &'static str {
        match self {
            SecretChoice::Pool(i) => SECRET_POOL[usize::from(i) % SECRET_POOL.len()],
            SecretChoice::Invalid(i) => INVALID_SECRETS[usize::from(i) % INVALID_SECRETS.len()],
        }
    }
}

/// RFC 6749 Appendix B form encoding, done here rather than with the engine's
/// own helper so the check does not trust the code it checks.
pub fn form_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Every spelling of `secret` the check looks for: raw, form-encoded, as
/// `Debug` escapes it, and with control characters removed (which is how
/// server text is shown after sanitizing).
pub fn spellings(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned(), form_encode(secret), secret.escape_debug().to_string()];
    let stripped: String = secret.chars().filter(|c| !c.is_control()).collect();
    out.push(stripped);
    out.retain(|s| !s.is_empty());
    out.sort();
    out.dedup();
    out
}

/// Panics if any spelling of any of `secrets` occurs in `text`.
pub fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        for spelling in spellings(secret) {
            assert!(!text.contains(&spelling), "secret {secret:?} leaked (as {spelling:?}) in {what}: {text}");
        }
    }
}

/// Panics if any string anywhere in the JSON `text` (keys and values, after
/// JSON unescaping) contains a secret.
pub fn assert_no_secret_in_json(what: &str, text: &str, secrets: &[&str]) {
    assert_no_secret(what, text, secrets);
    let value: serde_json::Value = serde_json::from_str(text).expect("the engine serialized invalid JSON");
    let mut stack = vec![&value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::String(s) => assert_no_secret(what, s, secrets),
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    assert_no_secret(what, k, secrets);
                    stack.push(item);
                }
            }
            _ => {}
        }
    }
}

/// The floor the engine promises for every token it hands out: non-empty and
/// visible ASCII only (`%x21-7E`), so it is safe in an `Authorization` header.
pub fn assert_header_safe_token(what: &str, token: &str) {
    assert!(!token.is_empty(), "{what}: empty access token handed out");
    assert!(
        token.bytes().all(|b| (0x21..=0x7e).contains(&b)),
        "{what}: access token with bytes outside visible ASCII handed out: {token:?}"
    );
}

/// Characters access tokens are built from: mostly the b64token alphabet, and
/// a tail of characters that must never reach an `Authorization` header.
const TOKEN_ALPHABET: &[char] = &[
    'a', 'b', 'Z', '0', '9', '-', '.', '_', '~', '+', '/', '=', // b64token
    '!', '#', '$', '%', '&', '\'', '(', ')', '*', ',', ':', ';', '<', '>', '?', '@', '[', ']', '^', '`', '{', '|',
    '}', // other visible ASCII
    '"', '\\', // visible ASCII that JSON escapes
    ' ', '\t', '\r', '\n', '\0', '\u{7f}', '\u{1b}', // whitespace and controls
    'é', '€', '\u{2028}', '\u{feff}', '\u{0085}', '😀', // non-ASCII
];

/// A token-ish string: length and characters chosen by the fuzzer, mostly
/// from the first (safe) part of the alphabet.
#[derive(Debug, Clone, Arbitrary)]
pub struct TokenText {
    /// Indices into the alphabet.
    pub chars: Vec<u8>,
    /// When true, only the 12 b64token characters are used.
    pub plain: bool,
}

impl TokenText {
    /// The text, at most 64 characters.
    pub fn text(&self) -> String {
        let n = if self.plain { 12 } else { TOKEN_ALPHABET.len() };
        self.chars.iter().take(64).map(|&b| TOKEN_ALPHABET[usize::from(b) % n]).collect()
    }
}

/// Free text a server might send (descriptions, error codes, header values),
/// possibly carrying a secret in one of its spellings.
#[derive(Debug, Clone, Arbitrary)]
pub enum ServerText {
    /// Arbitrary text from the fuzzer.
    Free(String),
    /// Token-alphabet text.
    Token(TokenText),
    /// Text around a secret, spelled one way or another.
    Echo {
        /// Which secret.
        secret: SecretChoice,
        /// How it is spelled.
        spelling: EchoSpelling,
        /// Text before it.
        before: String,
        /// Text after it.
        after: String,
    },
    /// A long text (around the engine's 300-character cut) ending with a secret.
    LongEcho {
        /// Which secret.
        secret: SecretChoice,
        /// How many filler characters come first.
        pad: u16,
    },
}

/// How a server may spell an echoed secret.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum EchoSpelling {
    /// As is.
    Raw,
    /// Form-encoded, upper-case hex (what the engine sends).
    Form,
    /// Percent-encoded with lower-case hex.
    FormLower,
    /// With a control character inserted after the first character.
    ControlInside,
    /// base64 of `client_id:secret`, as inside an echoed Basic header.
    Basic,
}

impl ServerText {
    /// The text, given the client id (for the Basic spelling).
    pub fn text(&self, client_id: &str) -> String {
        match self {
            ServerText::Free(s) => s.chars().take(400).collect(),
            ServerText::Token(t) => t.text(),
            ServerText::Echo { secret, spelling, before, after } => {
                let before: String = before.chars().take(40).collect();
                let after: String = after.chars().take(40).collect();
                format!("{before}{}{after}", spell(secret.text(), *spelling, client_id))
            }
            ServerText::LongEcho { secret, pad } => {
                format!("{}{}", "x".repeat(usize::from(*pad) % 340), secret.text())
            }
        }
    }
}

fn spell(secret: &str, spelling: EchoSpelling, client_id: &str) -> String {
    match spelling {
        EchoSpelling::Raw => secret.to_owned(),
        EchoSpelling::Form => form_encode(secret),
        EchoSpelling::FormLower => {
            let form = form_encode(secret);
            let mut out = String::with_capacity(form.len());
            let mut chars = form.chars();
            while let Some(c) = chars.next() {
                out.push(c);
                if c == '%' {
                    out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
                }
            }
            out
        }
        EchoSpelling::ControlInside => {
            let mut chars = secret.chars();
            let first: String = chars.next().into_iter().collect();
            format!("{first}\u{1}{}", chars.as_str())
        }
        EchoSpelling::Basic => base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_encode(client_id),
            form_encode(secret)
        )),
    }
}

/// `expires_in` as a server may send it.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum ExpiresIn {
    /// A plain number of seconds.
    Seconds(u16),
    /// Absent.
    Absent,
    /// JSON null.
    Null,
    /// A numeric string.
    String(u16),
    /// Any signed number.
    Signed(i64),
    /// Any float (non-finite ones are written as huge numbers).
    Float(f64),
    /// Far beyond any clamp.
    Huge,
    /// Negative.
    Negative(u16),
    /// A string that is not a number.
    Garbage,
    /// A boolean.
    Bool,
}

impl ExpiresIn {
    /// The JSON value, or `None` to leave the member out.
    pub fn json(self) -> Option<serde_json::Value> {
        use serde_json::json;
        Some(match self {
            ExpiresIn::Seconds(s) => json!(s),
            ExpiresIn::Absent => return None,
            ExpiresIn::Null => serde_json::Value::Null,
            ExpiresIn::String(s) => json!(format!(" {s} ")),
            ExpiresIn::Signed(i) => json!(i),
            ExpiresIn::Float(f) if f.is_finite() => json!(f),
            ExpiresIn::Float(_) => serde_json::from_str("1e308").expect("a valid number"),
            ExpiresIn::Huge => serde_json::from_str("1e300").expect("a valid number"),
            ExpiresIn::Negative(s) => json!(-i64::from(s)),
            ExpiresIn::Garbage => json!("soon"),
            ExpiresIn::Bool => json!(true),
        })
    }
}

/// The `exp` claim of a JWT-shaped access token.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum JwtExp {
    /// `now/1000 + delta` seconds.
    Relative(i32),
    /// Any number.
    Float(f64),
    /// A string.
    String,
    /// No `exp` claim.
    Missing,
    /// Not base64url at all.
    BadPayload,
}

/// A JWT-shaped token whose payload carries `exp` (no signature is checked).
pub fn jwt(exp: JwtExp, now: u64, extra: &str) -> String {
    let claims = match exp {
        JwtExp::Relative(delta) => format!(r#"{{"exp":{},"sub":"c"}}"#, (now / 1000) as i64 + i64::from(delta)),
        JwtExp::Float(f) if f.is_finite() => format!(r#"{{"exp":{f}}}"#),
        JwtExp::Float(_) => r#"{"exp":1e308}"#.to_owned(),
        JwtExp::String => r#"{"exp":"tomorrow"}"#.to_owned(),
        JwtExp::Missing => r#"{"sub":"c"}"#.to_owned(),
        JwtExp::BadPayload => return format!("eyJhbGciOiJub25lIn0.!!!.{extra}"),
    };
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
    format!("eyJhbGciOiJub25lIn0.{payload}.sig{extra}")
}

/// Reads one value of `T` from the rest of `data` (for targets whose first
/// bytes select a mode).
pub fn arbitrary_from<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}
