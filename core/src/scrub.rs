//! What server text may say: the rule that keeps credentials out of every
//! error, event and log line.
//!
//! Anything that came from the authorization server (an `error` code, an
//! `error_description`, a content type, a token type) or from the host's
//! transport (an exception message that may quote a proxy's answer) is checked
//! against every current and retired client secret **before** it is
//! sanitized or truncated. Text that holds a credential in any spelling is
//! withheld whole, replaced by [`WITHHELD`]: cutting holes in it would still
//! reveal where the secret stood and how long it is, and substring
//! replacement of a short secret mangles unrelated words.
//!
//! The spellings looked for are found by normalizing the text rather than by
//! listing encodings of the secret, so mixed forms are caught too:
//!
//! - the text as received, and with control characters removed (a tab or NUL
//!   inside the secret must not survive sanitizing as the secret);
//! - percent-decoded, with any hex case and any characters encoded, with `+`
//!   read as a space and as itself (form encoding and plain percent-encoding);
//! - JSON-unescaped (`\u00e9`, `\"`, `\/`);
//! - the UTF-8 bytes behind a latin-1 reading (a host that decoded the body as
//!   latin-1 turns `é` into `Ã©`);
//! - base64 and base64url runs decoded, at every alignment, which covers an
//!   echoed `Authorization: Basic` value of `form(id):form(secret)` or
//!   `id:secret`.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use zeroize::Zeroizing;

use crate::secret::ClientSecret;

/// The text that replaces server text holding a credential.
pub const WITHHELD: &str = "[withheld: contained a credential]";

/// The shortest base64 run worth decoding: shorter runs cannot hold a
/// secret's encoding and are common in ordinary words.
const MIN_BASE64_RUN: usize = 4;

const FORGIVING: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(false)
    .with_decode_allow_trailing_bits(true)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);
const FORGIVING_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, FORGIVING);
const FORGIVING_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, FORGIVING);

/// The credentials server text must never reveal.
pub(crate) struct Credentials {
    /// Each secret, and for a secret holding control characters also the
    /// spelling sanitizing would show (the same secret without them).
    /// Copies of secrets: zeroized on drop like the originals.
    secrets: Vec<Zeroizing<String>>,
}

impl Credentials {
    /// The secrets to look for (current and retired).
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a ClientSecret>) -> Self {
        let mut needles = Vec::new();
        for secret in secrets.into_iter().map(ClientSecret::expose).filter(|s| !s.is_empty()) {
            let shown: Zeroizing<String> = Zeroizing::new(secret.chars().filter(|c| !c.is_control()).collect());
            if !shown.is_empty() && shown.as_str() != secret {
                needles.push(shown);
            }
            needles.push(Zeroizing::new(secret.to_owned()));
        }
        Self { secrets: needles }
    }

    /// Also looks for a client assertion the request carried: the whole JWT,
    /// and its signature alone (the part only the key holder could make;
    /// header and claims are not secret, and short parts of them would match
    /// ordinary words).
    pub(crate) fn with_assertion(mut self, assertion: Option<&str>) -> Self {
        if let Some(assertion) = assertion.filter(|a| !a.is_empty()) {
            if let Some((_, signature)) = assertion.rsplit_once('.').filter(|(_, s)| s.len() >= 16) {
                self.secrets.push(Zeroizing::new(signature.to_owned()));
            }
            self.secrets.push(Zeroizing::new(assertion.to_owned()));
        }
        self
    }

    /// Whether `text` holds any spelling of any secret.
    pub(crate) fn found_in(&self, text: &str) -> bool {
        if self.secrets.is_empty() || text.is_empty() {
            return false;
        }
        let stripped: String = text.chars().filter(|c| !c.is_control()).collect();
        [text, stripped.as_str()].iter().any(|view| self.found_in_view(view, 2))
    }

    /// Checks one view and the views derived from it, `depth` decodings deep
    /// (a base64 value holding percent-encoded text needs two).
    fn found_in_view(&self, view: &str, depth: u8) -> bool {
        if self.holds_raw(view) {
            return true;
        }
        let mut derived = vec![
            percent_decode(view, true),
            percent_decode(view, false),
            json_unescape(view),
            latin1_bytes_as_utf8(view),
        ];
        derived.retain(|d| d != view);
        if derived.iter().any(|d| self.holds_raw(d)) {
            return true;
        }
        if depth == 0 {
            return false;
        }
        let decoded_runs = base64_runs(view).flat_map(decode_base64_run);
        for decoded in derived.iter().cloned().chain(decoded_runs) {
            if self.found_in_view(&decoded, depth - 1) {
                return true;
            }
        }
        false
    }

    fn holds_raw(&self, text: &str) -> bool {
        self.secrets.iter().any(|secret| text.contains(secret.as_str()))
    }
}

/// Percent-decoding of any `%XX` (either hex case); `+` is a space when
/// `plus_is_space`. Invalid escapes stay as they are; invalid UTF-8 is replaced.
fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// JSON string escapes (`\uXXXX` with surrogate pairs, `\"`, `\\`, `\/`, `\n`, ...)
/// decoded; anything that is not an escape stays.
fn json_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('u') => {
                chars.next();
                let unit = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<u32> {
                    let digits: String = (0..4).filter_map(|_| chars.next()).collect();
                    (digits.len() == 4).then(|| u32::from_str_radix(&digits, 16).ok()).flatten()
                };
                let Some(high) = unit(&mut chars) else { continue };
                let code = if (0xD800..0xDC00).contains(&high) {
                    let mut lookahead = chars.clone();
                    match (lookahead.next(), lookahead.next()) {
                        (Some('\\'), Some('u')) => match unit(&mut lookahead) {
                            Some(low) if (0xDC00..0xE000).contains(&low) => {
                                chars = lookahead;
                                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                            }
                            _ => high,
                        },
                        _ => high,
                    }
                } else {
                    high
                };
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            Some(escaped @ ('"' | '\\' | '/' | '\'')) => {
                chars.next();
                out.push(escaped);
            }
            Some(letter @ ('n' | 't' | 'r' | 'b' | 'f')) => {
                chars.next();
                out.push(match letter {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'b' => '\u{8}',
                    _ => '\u{c}',
                });
            }
            _ => out.push(c),
        }
    }
    out
}

/// The text as a host that read UTF-8 bytes as latin-1 would show it, turned
/// back: characters up to U+00FF become the bytes they stand for, others keep
/// their UTF-8 bytes; the result is read as UTF-8.
fn latin1_bytes_as_utf8(text: &str) -> String {
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        if (c as u32) <= 0xFF {
            bytes.push(c as u32 as u8);
        } else {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Maximal runs of base64 / base64url characters. `=` ends a run: padding
/// carries nothing, and `name=value` must not glue the name to the value.
fn base64_runs(text: &str) -> impl Iterator<Item = &str> {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_');
    text.split(move |c: char| !is_b64(c)).filter(|run| run.len() >= MIN_BASE64_RUN)
}

/// Every decoding of a run: both alphabets, from each of the four alignments,
/// ignoring padding and a trailing partial quantum.
fn decode_base64_run(run: &str) -> Vec<String> {
    let core = run;
    let mut out = Vec::new();
    for offset in 0..4.min(core.len()) {
        let Some(tail) = core.get(offset..) else { continue };
        // A lone trailing character cannot be decoded; two or three can.
        let usable = if tail.len() % 4 == 1 { tail.len() - 1 } else { tail.len() };
        let Some(piece) = tail.get(..usable) else { continue };
        for engine in [&FORGIVING_STANDARD, &FORGIVING_URL_SAFE] {
            if let Ok(bytes) = engine.decode(piece) {
                out.push(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::form_urlencode;

    fn creds(secrets: &[&str]) -> Vec<ClientSecret> {
        secrets.iter().map(|s| ClientSecret::new(*s)).collect()
    }

    fn found(secrets: &[&str], text: &str) -> bool {
        let owned = creds(secrets);
        Credentials::new(&owned).found_in(text)
    }

    const SECRET: &str = "p@ss: %+&= é/";

    #[test]
    fn base64_followed_by_one_more_base64_character_is_still_decoded() {
        // A run whose length from the secret's alignment leaves one character
        // over (4k + 1): that lone character is dropped before decoding, or the
        // whole run would fail to decode and the secret go unnoticed.
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let secret = "a-long-client-secret-value-0123456789";
        for extra in ["A", "AAAAA", "AAAAAAAAA"] {
            let encoded = b64.encode(format!("id:{secret}"));
            let padded = format!("{encoded}{}", "A".repeat((4 - encoded.len() % 4) % 4));
            let run = format!("{padded}{extra}");
            assert_eq!(run.len() % 4, 1, "{run}");
            assert!(found(&[secret], &format!("echo {run} end")), "not found in a run of {} characters", run.len());
        }
    }

    #[test]
    fn raw_and_every_encoding_of_the_secret_are_found() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let form = form_urlencode(SECRET);
        let spellings = [
            SECRET.to_owned(),
            form.clone(),
            form.to_lowercase(),
            // every byte percent-encoded, even letters form encoding leaves alone
            SECRET.bytes().map(|b| format!("%{b:02x}")).collect::<String>(),
            SECRET.replace(' ', "\t "),
            serde_json::to_string(SECRET).unwrap().replace('é', "\\u00e9"),
            SECRET.bytes().map(|b| b as char).collect::<String>(), // latin-1 view of the UTF-8 bytes
            format!("Basic {}", b64.encode(format!("svc%3Abilling:{form}"))),
            format!("Basic {}", b64.encode(format!("svc:billing:{SECRET}"))),
            b64url.encode(format!("id:{SECRET}")),
            format!("xx{}", b64.encode(format!("id:{form}"))),
        ];
        for spelling in spellings {
            let text = format!("Client authentication failed for {spelling} (see docs)");
            assert!(found(&[SECRET], &text), "not found: {text:?}");
        }
    }

    #[test]
    fn a_secret_split_by_control_characters_is_found() {
        assert!(found(&["hunter2"], "bad secret hun\tter2"));
        assert!(found(&["hunter2"], "bad secret hunter\u{0}2"));
    }

    /// Found by the engine_timeline fuzz target: a secret holding a tab, echoed
    /// with another control character inserted, matched neither view, and
    /// sanitizing then showed it without its tab.
    #[test]
    fn a_secret_holding_a_control_character_is_found_as_sanitizing_would_show_it() {
        let secret = "SECRET-tab\there-5";
        assert!(found(&[secret], "S\u{1}ECRET-tab\there-5"));
        assert!(found(&[secret], "SECRET-tabhere-5"));
    }

    /// A secret of control characters only has no sanitized spelling to look
    /// for: an empty one would be "found" in every text.
    #[test]
    fn a_secret_of_control_characters_only_does_not_withhold_everything() {
        assert!(!found(&["\t\u{1}"], "The requested scope is invalid."));
        assert!(found(&["\t\u{1}"], "echo: \t\u{1}"));
    }

    /// The search is bounded (hostile text must not make it unbounded work):
    /// two layers of encoding are unwrapped, a third is not.
    #[test]
    fn decoding_stops_two_layers_deep() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(found(&["hunter2-xyz"], &format!("x {} x", b64(&b64("id:hunter2-xyz")))));
        assert!(!found(&["hunter2-xyz"], &format!("x {} x", b64(&b64(&b64("id:hunter2-xyz"))))));
    }

    #[test]
    fn ordinary_text_is_not_withheld() {
        for text in [
            "The requested scope is invalid, unknown, or malformed.",
            "Client authentication failed (e.g., unknown client, no client authentication included).",
            "Basic realm=\"hydra\"",
            "",
        ] {
            assert!(!found(&[SECRET, "hunter2"], text), "{text:?}");
        }
        assert!(!found(&[], "anything"));
    }

    #[test]
    fn an_echoed_assertion_or_its_signature_is_found() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJjIn0.c2lnbmF0dXJlLWJ5dGVzLW9mLXRoZS1rZXk";
        let with = |a: Option<&str>| Credentials::new(&creds(&["hunter2"])).with_assertion(a);
        assert!(with(Some(jwt)).found_in(&format!("bad assertion {jwt}")));
        assert!(with(Some(jwt)).found_in("sig c2lnbmF0dXJlLWJ5dGVzLW9mLXRoZS1rZXk"));
        assert!(!with(Some(jwt)).found_in("header eyJhbGciOiJFUzI1NiJ9 is fine"));
        assert!(with(Some("a.b.c")).found_in("a.b.c"), "a short signature: the whole assertion still counts");
        assert!(!with(Some("a.b.c")).found_in("c"));
        assert!(!with(Some("")).found_in("anything"));
        assert!(!with(None).found_in("anything"));
        assert!(with(None).found_in("hunter2"));
    }

    #[test]
    fn retired_secrets_count_too() {
        assert!(found(&["current-one", "old-secret-xyz"], "server said old-secret-xyz"));
    }

    #[test]
    fn decoders_leave_unrelated_text_alone() {
        assert_eq!(percent_decode("100% sure%zz", true), "100% sure%zz");
        assert_eq!(percent_decode("a+b%2Bc%2b", false), "a+b+c+");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(json_unescape(r#"\ud83d\ude00 \"q\" \x"#), "😀 \"q\" \\x");
        assert_eq!(latin1_bytes_as_utf8("Ã©"), "é");
        assert_eq!(latin1_bytes_as_utf8("€"), "€");
    }

    #[test]
    fn percent_decoding_at_the_end_of_the_text() {
        for (text, decoded) in
            [("50%", "50%"), ("a%4", "a%4"), ("%", "%"), ("%41", "A"), ("a%41", "aA"), ("%4a%4A", "JJ")]
        {
            assert_eq!(percent_decode(text, true), decoded, "{text}");
        }
    }

    #[test]
    fn every_json_escape_is_decoded() {
        assert_eq!(json_unescape(r#"\n\t\r\b\f\/\'\\"#), "\n\t\r\u{8}\u{c}/'\\");
        // A high surrogate followed by something other than a low one stands alone.
        assert_eq!(json_unescape(r"\ud83d\u0041"), "\u{fffd}A");
        assert_eq!(json_unescape(r"\ud83dx"), "\u{fffd}x");
        assert_eq!(json_unescape(r"\u12"), "");
    }
}
