//! Private keys for `private_key_jwt`: parsed from PEM or JWK text, redacted
//! everywhere, zeroized on drop.
//!
//! A key text may hold one key or several, in order (current first):
//!
//! - PEM blocks: `PRIVATE KEY` (PKCS#8: RSA, EC P-256, EC P-384),
//!   `RSA PRIVATE KEY` (PKCS#1), `EC PRIVATE KEY` (SEC1);
//! - JSON: one private JWK (`{"kty":...,"d":...}`), a JWKS (`{"keys":[...]}`)
//!   or a list of JWKs.
//!
//! Each key gets its JWS algorithm from the JWK's `alg`, else from the
//! configured `assertion_signing_alg`, else from its type (`RS256`, `ES256`
//! for P-256, `ES384` for P-384); and its `kid` from the JWK's `kid`, else the
//! RFC 7638 thumbprint of its public key (what `hydra` and most JWKS tools
//! use). No error names anything from the key text but its position.
//!
//! RSA and EC keys need the `asymmetric` cargo feature (on by default). Without
//! it no key parses: every key text is refused with a configuration error that
//! says how to get a build that signs, and [`PrivateKey`] has no values.

use std::fmt;

#[cfg(feature = "asymmetric")]
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
#[cfg(feature = "asymmetric")]
use base64::Engine as _;
#[cfg(feature = "asymmetric")]
use rsa::traits::PublicKeyParts;
#[cfg(feature = "asymmetric")]
use rsa::{BigUint, RsaPrivateKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
#[cfg(feature = "asymmetric")]
use sha2::{Digest, Sha256};
#[cfg(feature = "asymmetric")]
use zeroize::Zeroizing;

use crate::error::ConfigError;

/// A JWS algorithm for a client assertion (RFC 7518 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 (salt of 32 bytes).
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256 (RFC 6979 deterministic nonces).
    ES256,
    /// ECDSA P-384 with SHA-384 (RFC 6979).
    ES384,
    /// HMAC SHA-256 with the client secret (`client_secret_jwt`).
    HS256,
    /// HMAC SHA-384.
    HS384,
    /// HMAC SHA-512.
    HS512,
}

impl SigningAlg {
    /// Every algorithm, for listings and tests.
    pub const ALL: [SigningAlg; 11] = [
        SigningAlg::RS256,
        SigningAlg::RS384,
        SigningAlg::RS512,
        SigningAlg::PS256,
        SigningAlg::PS384,
        SigningAlg::PS512,
        SigningAlg::ES256,
        SigningAlg::ES384,
        SigningAlg::HS256,
        SigningAlg::HS384,
        SigningAlg::HS512,
    ];

    /// The JWS name (`"ES256"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::RS384 => "RS384",
            SigningAlg::RS512 => "RS512",
            SigningAlg::PS256 => "PS256",
            SigningAlg::PS384 => "PS384",
            SigningAlg::PS512 => "PS512",
            SigningAlg::ES256 => "ES256",
            SigningAlg::ES384 => "ES384",
            SigningAlg::HS256 => "HS256",
            SigningAlg::HS384 => "HS384",
            SigningAlg::HS512 => "HS512",
        }
    }

    /// Parses a JWS name (exact case).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    /// Whether this is an HMAC algorithm (`client_secret_jwt`).
    pub fn is_hmac(self) -> bool {
        matches!(self, SigningAlg::HS256 | SigningAlg::HS384 | SigningAlg::HS512)
    }

    #[cfg(feature = "asymmetric")]
    fn fits(self, material: &KeyMaterial) -> bool {
        match material {
            KeyMaterial::Rsa(_) => matches!(
                self,
                SigningAlg::RS256
                    | SigningAlg::RS384
                    | SigningAlg::RS512
                    | SigningAlg::PS256
                    | SigningAlg::PS384
                    | SigningAlg::PS512
            ),
            KeyMaterial::P256(_) => self == SigningAlg::ES256,
            KeyMaterial::P384(_) => self == SigningAlg::ES384,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine says of a private key when it is built without the
/// `asymmetric` feature (the npm package's default wasm engine is).
#[cfg(not(feature = "asymmetric"))]
const NO_ASYMMETRIC_SIGNING: &str = "needs RS/PS/ES signing (private_key_jwt), which this build of tokenwell \
     leaves out: npm: import from \"tokenwell/signed\"; Rust: enable the `asymmetric` feature";

/// A key's material; without the `asymmetric` feature an empty enum, so no
/// [`PrivateKey`] can exist and every use of one is statically unreachable.
pub(crate) enum KeyMaterial {
    #[cfg(feature = "asymmetric")]
    Rsa(Box<RsaPrivateKey>),
    #[cfg(feature = "asymmetric")]
    P256(p256::ecdsa::SigningKey),
    #[cfg(feature = "asymmetric")]
    P384(p384::ecdsa::SigningKey),
}

#[cfg(feature = "asymmetric")]
impl KeyMaterial {
    fn default_alg(&self) -> SigningAlg {
        match self {
            KeyMaterial::Rsa(_) => SigningAlg::RS256,
            KeyMaterial::P256(_) => SigningAlg::ES256,
            KeyMaterial::P384(_) => SigningAlg::ES384,
        }
    }

    /// The EC public point's coordinates (empty for RSA).
    fn public_point(&self) -> (Vec<u8>, Vec<u8>) {
        let coordinates =
            |x: Option<&[u8]>, y: Option<&[u8]>| (x.unwrap_or_default().to_vec(), y.unwrap_or_default().to_vec());
        match self {
            KeyMaterial::Rsa(_) => (Vec::new(), Vec::new()),
            KeyMaterial::P256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                coordinates(point.x().map(|x| &x[..]), point.y().map(|y| &y[..]))
            }
            KeyMaterial::P384(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                coordinates(point.x().map(|x| &x[..]), point.y().map(|y| &y[..]))
            }
        }
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
    fn thumbprint(&self) -> String {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let (x, y) = self.public_point();
        let canonical = match self {
            KeyMaterial::Rsa(key) => {
                format!(
                    r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                    b64(&key.e().to_bytes_be()),
                    b64(&key.n().to_bytes_be())
                )
            }
            KeyMaterial::P256(_) => format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, b64(&x), b64(&y)),
            KeyMaterial::P384(_) => format!(r#"{{"crv":"P-384","kty":"EC","x":"{}","y":"{}"}}"#, b64(&x), b64(&y)),
        };
        b64(&Sha256::digest(canonical.as_bytes()))
    }
}

/// A private signing key with its algorithm and key id. `Debug` shows only
/// the algorithm and `kid`; the key material is zeroized when dropped (the
/// RustCrypto key types do it themselves).
pub struct PrivateKey {
    pub(crate) material: KeyMaterial,
    alg: SigningAlg,
    kid: String,
}

#[cfg(feature = "asymmetric")]
impl Clone for PrivateKey {
    fn clone(&self) -> Self {
        let material = match &self.material {
            KeyMaterial::Rsa(key) => KeyMaterial::Rsa(key.clone()),
            KeyMaterial::P256(key) => KeyMaterial::P256(key.clone()),
            KeyMaterial::P384(key) => KeyMaterial::P384(key.clone()),
        };
        Self { material, alg: self.alg, kid: self.kid.clone() }
    }
}

#[cfg(not(feature = "asymmetric"))]
#[cfg_attr(mutants, mutants::skip)] // built only without `asymmetric`, which cargo mutants does not build; tests/without_asymmetric.rs covers it
impl Clone for PrivateKey {
    fn clone(&self) -> Self {
        match self.material {}
    }
}

/// Keys are equal when they are the same key for the same algorithm and `kid`:
/// how `replace_keys` tells whether a key file changed.
impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        let same = match (&self.material, &other.material) {
            #[cfg(feature = "asymmetric")]
            (KeyMaterial::Rsa(a), KeyMaterial::Rsa(b)) => a == b,
            #[cfg(feature = "asymmetric")]
            (KeyMaterial::P256(a), KeyMaterial::P256(b)) => a == b,
            #[cfg(feature = "asymmetric")]
            (KeyMaterial::P384(a), KeyMaterial::P384(b)) => a == b,
            _ => false,
        };
        same && self.alg == other.alg && self.kid == other.kid
    }
}

impl Eq for PrivateKey {}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({} kid={:?} [redacted])", self.alg, self.kid)
    }
}

impl PrivateKey {
    /// The JWS algorithm this key signs with.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The `kid` header value.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK (`kty`, `kid`, `alg`, `use: "sig"` and the
    /// public parameters), for registering the client with the server.
    #[cfg(not(feature = "asymmetric"))]
    #[cfg_attr(mutants, mutants::skip)] // built only without `asymmetric`, which cargo mutants does not build; tests/without_asymmetric.rs covers it
    pub fn public_jwk(&self) -> Value {
        match self.material {}
    }

    /// The public half as a JWK (`kty`, `kid`, `alg`, `use: "sig"` and the
    /// public parameters), for registering the client with the server.
    #[cfg(feature = "asymmetric")]
    pub fn public_jwk(&self) -> Value {
        let b64 = |bytes: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(bytes));
        let mut jwk = serde_json::Map::new();
        let (x, y) = self.material.public_point();
        match &self.material {
            KeyMaterial::Rsa(key) => {
                jwk.insert("kty".into(), "RSA".into());
                jwk.insert("n".into(), b64(&key.n().to_bytes_be()));
                jwk.insert("e".into(), b64(&key.e().to_bytes_be()));
            }
            KeyMaterial::P256(_) | KeyMaterial::P384(_) => {
                let crv = if matches!(self.material, KeyMaterial::P256(_)) { "P-256" } else { "P-384" };
                jwk.insert("kty".into(), "EC".into());
                jwk.insert("crv".into(), crv.into());
                jwk.insert("x".into(), b64(&x));
                jwk.insert("y".into(), b64(&y));
            }
        }
        jwk.insert("kid".into(), self.kid.clone().into());
        jwk.insert("alg".into(), self.alg.as_str().into());
        jwk.insert("use".into(), "sig".into());
        Value::Object(jwk)
    }

    #[cfg(feature = "asymmetric")]
    fn new(material: KeyMaterial, alg: Option<SigningAlg>, kid: Option<String>) -> Result<Self, String> {
        let alg = alg.unwrap_or_else(|| material.default_alg());
        if !alg.fits(&material) {
            return Err(format!("algorithm {alg} does not fit this key type"));
        }
        if let KeyMaterial::Rsa(key) = &material {
            if key.size() < 256 {
                return Err(format!("RSA key of {} bits is too short (2048 at least)", key.size() * 8));
            }
        }
        let kid = kid.unwrap_or_else(|| material.thumbprint());
        Ok(Self { material, alg, kid })
    }
}

/// Parses every private key in `text` (see the module docs), current first.
/// `default_alg` applies to keys whose JWK names no `alg`. Errors say which
/// key (`key 2: ...`) and what is wrong, never what the text holds.
pub fn parse_private_keys(text: &str, default_alg: Option<SigningAlg>) -> Result<Vec<PrivateKey>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("holds no key".to_owned());
    }
    let keys = parse_key_text(trimmed, default_alg)?;
    if keys.is_empty() {
        return Err("holds no key".to_owned());
    }
    Ok(keys)
}

#[cfg(feature = "asymmetric")]
fn parse_key_text(trimmed: &str, default_alg: Option<SigningAlg>) -> Result<Vec<PrivateKey>, String> {
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        parse_jwk_text(trimmed, default_alg)
    } else if trimmed.contains("-----BEGIN ") {
        parse_pem_blocks(trimmed, default_alg)
    } else {
        Err("is neither PEM (-----BEGIN ...) nor a JWK / JWKS (JSON)".to_owned())
    }
}

/// Without the `asymmetric` feature every key text is refused, unread.
#[cfg(not(feature = "asymmetric"))]
#[cfg_attr(mutants, mutants::skip)] // built only without `asymmetric`, which cargo mutants does not build; tests/without_asymmetric.rs covers it
fn parse_key_text(_: &str, _: Option<SigningAlg>) -> Result<Vec<PrivateKey>, String> {
    Err(NO_ASYMMETRIC_SIGNING.to_owned())
}

#[cfg(feature = "asymmetric")]
fn parse_pem_blocks(text: &str, default_alg: Option<SigningAlg>) -> Result<Vec<PrivateKey>, String> {
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let n = keys.len() + 1;
        let block = &rest[start..];
        let label_end = block["-----BEGIN ".len()..].find("-----").ok_or(format!("key {n}: PEM header is cut"))?;
        let label = &block["-----BEGIN ".len().."-----BEGIN ".len() + label_end];
        let end_marker = format!("-----END {label}-----");
        let end = block.find(&end_marker).ok_or(format!("key {n}: PEM block has no END line"))?;
        let after = end + end_marker.len();
        let pem = Zeroizing::new(block[..after].to_owned());
        rest = &block[after..];
        let material = match label {
            "PRIVATE KEY" => pkcs8_material(&pem),
            "RSA PRIVATE KEY" => rsa::pkcs1::DecodeRsaPrivateKey::from_pkcs1_pem(&pem)
                .map(|k| KeyMaterial::Rsa(Box::new(k)))
                .map_err(|_| "not a valid PKCS#1 RSA private key".to_owned()),
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(&pem)
                .map(|k| KeyMaterial::P256(k.into()))
                .or_else(|_| p384::SecretKey::from_sec1_pem(&pem).map(|k| KeyMaterial::P384(k.into())))
                .map_err(|_| "not a valid SEC1 P-256 or P-384 private key".to_owned()),
            "ENCRYPTED PRIVATE KEY" => Err("is encrypted (give the key unencrypted, from a protected file)".to_owned()),
            "PUBLIC KEY" | "CERTIFICATE" => Err("is a public key or certificate, not a private key".to_owned()),
            _ => Err("is not a private key PEM block".to_owned()),
        }
        .map_err(|problem| format!("key {n}: {problem}"))?;
        keys.push(PrivateKey::new(material, default_alg, None).map_err(|problem| format!("key {n}: {problem}"))?);
    }
    Ok(keys)
}

#[cfg(feature = "asymmetric")]
fn pkcs8_material(pem: &str) -> Result<KeyMaterial, String> {
    use pkcs8_decode::DecodePrivateKey;
    if let Ok(key) = RsaPrivateKey::from_pkcs8_pem(pem) {
        return Ok(KeyMaterial::Rsa(Box::new(key)));
    }
    if let Ok(key) = p256::SecretKey::from_pkcs8_pem(pem) {
        return Ok(KeyMaterial::P256(key.into()));
    }
    p384::SecretKey::from_pkcs8_pem(pem)
        .map(|k| KeyMaterial::P384(k.into()))
        .map_err(|_| "not a valid PKCS#8 RSA, P-256 or P-384 private key".to_owned())
}

#[cfg(feature = "asymmetric")]
mod pkcs8_decode {
    pub(super) use rsa::pkcs8::DecodePrivateKey;
}

#[cfg(feature = "asymmetric")]
fn parse_jwk_text(text: &str, default_alg: Option<SigningAlg>) -> Result<Vec<PrivateKey>, String> {
    let value: Zeroizing<String> = Zeroizing::new(text.to_owned());
    let json: Value = serde_json::from_str(&value).map_err(|_| "is not valid JSON".to_owned())?;
    let jwks: Vec<&Value> = match &json {
        Value::Object(map) if map.contains_key("keys") => match map.get("keys") {
            Some(Value::Array(keys)) => keys.iter().collect(),
            _ => return Err("\"keys\" is not a list".to_owned()),
        },
        Value::Object(_) => vec![&json],
        Value::Array(keys) => keys.iter().collect(),
        _ => return Err("is not a JWK, a JWKS or a list of JWKs".to_owned()),
    };
    let keys = jwks
        .into_iter()
        .enumerate()
        .map(|(i, jwk)| parse_jwk(jwk, default_alg).map_err(|problem| format!("key {}: {problem}", i + 1)))
        .collect();
    drop(json_zeroized(json));
    keys
}

/// Overwrites the private parameters of a parsed JWK document before it is dropped.
#[cfg(feature = "asymmetric")]
fn json_zeroized(mut json: Value) -> Value {
    fn scrub(v: &mut Value) {
        match v {
            Value::String(s) => zeroize::Zeroize::zeroize(s),
            Value::Array(items) => items.iter_mut().for_each(scrub),
            Value::Object(map) => map.values_mut().for_each(scrub),
            _ => {}
        }
    }
    scrub(&mut json);
    json
}

#[cfg(feature = "asymmetric")]
fn parse_jwk(jwk: &Value, default_alg: Option<SigningAlg>) -> Result<PrivateKey, String> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    let Some(object) = jwk.as_object() else { return Err("is not a JSON object".to_owned()) };
    if !object.contains_key("d") {
        return Err("is a public key (no \"d\"): the private JWK is needed".to_owned());
    }
    let number = |name: &str| -> Result<BigUint, String> {
        let text = field(name).ok_or(format!("has no \"{name}\""))?;
        let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(text).map_err(|_| format!("\"{name}\" is not base64url"))?);
        Ok(BigUint::from_bytes_be(&bytes))
    };
    let material = match field("kty") {
        Some("RSA") => {
            let primes = match (field("p"), field("q")) {
                (Some(_), Some(_)) => vec![number("p")?, number("q")?],
                _ => Vec::new(),
            };
            let key = RsaPrivateKey::from_components(number("n")?, number("e")?, number("d")?, primes)
                .map_err(|_| "is not a consistent RSA private key".to_owned())?;
            key.validate().map_err(|_| "is not a consistent RSA private key".to_owned())?;
            KeyMaterial::Rsa(Box::new(key))
        }
        Some("EC") => {
            let bytes = |name: &str| -> Result<Zeroizing<Vec<u8>>, String> {
                let text = field(name).ok_or(format!("has no \"{name}\""))?;
                URL_SAFE_NO_PAD.decode(text).map(Zeroizing::new).map_err(|_| format!("\"{name}\" is not base64url"))
            };
            let (d, x, y) = (bytes("d")?, bytes("x")?, bytes("y")?);
            let material = match field("crv") {
                Some("P-256") => p256::SecretKey::from_slice(&d).ok().map(|k| KeyMaterial::P256(k.into())),
                Some("P-384") => p384::SecretKey::from_slice(&d).ok().map(|k| KeyMaterial::P384(k.into())),
                _ => return Err("has an unsupported \"crv\" (P-256 and P-384 are supported)".to_owned()),
            };
            // The public point must be the private scalar's: a JWK that mixes two keys is refused.
            let public = material.as_ref().map(|m| m.public_point());
            match (material, public) {
                (Some(material), Some((px, py))) if px == *x && py == *y => material,
                _ => return Err(format!("is not a consistent {} private key", field("crv").unwrap_or_default())),
            }
        }
        Some("oct") => return Err("is a symmetric key: use client_secret_jwt with client_secret".to_owned()),
        _ => return Err("has an unsupported \"kty\" (RSA and EC are supported)".to_owned()),
    };
    let alg = match field("alg") {
        Some(name) => Some(SigningAlg::parse(name).ok_or(format!("has an unsupported \"alg\" {name:?}"))?),
        None => default_alg,
    };
    PrivateKey::new(material, alg, field("kid").map(str::to_owned))
}

/// The keys in a key file's `contents` (see [`parse_private_keys`]), current
/// first; `source` (the variable or option that named the file) names the file
/// in errors.
pub fn parse_key_file(
    contents: &str,
    source: &str,
    default_alg: Option<SigningAlg>,
) -> Result<Vec<PrivateKey>, ConfigError> {
    parse_private_keys(contents, default_alg).map_err(|problem| {
        // "the key file holds no key", "the key file, key 2: is a public key ..."
        let glue = if problem.starts_with("key ") { ", " } else { " " };
        ConfigError::new(source, format!("the key file{glue}{problem}"))
    })
}

#[cfg(all(test, feature = "asymmetric"))]
mod tests {
    use super::*;

    const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/conformance/keys/");

    fn read(name: &str) -> String {
        std::fs::read_to_string(format!("{KEYS}{name}")).unwrap()
    }

    #[test]
    fn every_form_of_the_test_keys_parses_to_the_same_key() {
        let forms = ["test-only-rsa-2048.pkcs8.pem", "test-only-rsa-2048.pkcs1.pem", "test-only-rsa-2048.jwk.json"];
        let keys: Vec<PrivateKey> =
            forms.iter().map(|f| parse_private_keys(&read(f), None).unwrap().remove(0)).collect();
        let jwk: Value = serde_json::from_str(&read("test-only-rsa-2048.jwk.json")).unwrap();
        for key in &keys {
            assert_eq!(key.alg(), SigningAlg::RS256);
            assert_eq!(key.public_jwk()["n"], jwk["n"]);
        }
        assert_eq!(keys[0], keys[1]);
        let ec = ["test-only-p256.pkcs8.pem", "test-only-p256.sec1.pem"];
        let ec: Vec<PrivateKey> = ec.iter().map(|f| parse_private_keys(&read(f), None).unwrap().remove(0)).collect();
        assert_eq!(ec[0], ec[1]);
        assert_eq!(ec[0].alg(), SigningAlg::ES256);
        let p384 = parse_private_keys(&read("test-only-p384.pkcs8.pem"), None).unwrap().remove(0);
        assert_eq!(p384.alg(), SigningAlg::ES384);
        assert_eq!(p384.public_jwk()["crv"], "P-384");
        let jwk256 = parse_private_keys(&read("test-only-p256.jwk.json"), None).unwrap().remove(0);
        assert_eq!(jwk256.public_jwk()["x"], ec[0].public_jwk()["x"]);
    }

    /// RFC 7638 §3.1's example key: its thumbprint is given in the RFC.
    #[test]
    fn the_default_kid_is_the_rfc7638_thumbprint() {
        let jwk: Value = serde_json::from_str(&read("test-only-rsa-2048.jwk.json")).unwrap();
        let mut no_kid = jwk.clone();
        no_kid.as_object_mut().unwrap().remove("kid");
        no_kid.as_object_mut().unwrap().remove("alg");
        let key = parse_private_keys(&no_kid.to_string(), None).unwrap().remove(0);
        let canonical =
            format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, jwk["e"].as_str().unwrap(), jwk["n"].as_str().unwrap());
        assert_eq!(key.kid(), URL_SAFE_NO_PAD.encode(Sha256::digest(canonical)));
        let pem = parse_private_keys(&read("test-only-rsa-2048.pkcs8.pem"), None).unwrap().remove(0);
        assert_eq!(pem.kid(), key.kid());
        let ec = parse_private_keys(&read("test-only-p256.pkcs8.pem"), None).unwrap().remove(0);
        let p = ec.public_jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            p["x"].as_str().unwrap(),
            p["y"].as_str().unwrap()
        );
        assert_eq!(ec.kid(), URL_SAFE_NO_PAD.encode(Sha256::digest(canonical)));
        let p384 = parse_private_keys(&read("test-only-p384.pkcs8.pem"), None).unwrap().remove(0);
        let p = p384.public_jwk();
        let canonical = format!(
            r#"{{"crv":"P-384","kty":"EC","x":"{}","y":"{}"}}"#,
            p["x"].as_str().unwrap(),
            p["y"].as_str().unwrap()
        );
        assert_eq!(p384.kid(), URL_SAFE_NO_PAD.encode(Sha256::digest(canonical)));
    }

    #[test]
    fn several_keys_keep_their_order_and_alg_and_kid_come_from_the_jwk() {
        let both = format!("{}\n{}", read("test-only-p256.pkcs8.pem"), read("test-only-rsa-2048.pkcs8.pem"));
        let keys = parse_private_keys(&both, None).unwrap();
        assert_eq!(keys.iter().map(PrivateKey::alg).collect::<Vec<_>>(), [SigningAlg::ES256, SigningAlg::RS256]);
        let jwks = read("test-only-jwks.json");
        let keys = parse_private_keys(&jwks, None).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].kid(), "test-only-p256");
        let keys = parse_private_keys(&read("test-only-rsa-2048.pkcs8.pem"), Some(SigningAlg::PS256)).unwrap();
        assert_eq!(keys[0].alg(), SigningAlg::PS256);
        let array = format!("[{}]", read("test-only-p256.jwk.json"));
        assert_eq!(parse_private_keys(&array, None).unwrap().len(), 1);
    }

    #[test]
    fn refusals_say_which_key_and_never_echo_it() {
        let rsa = read("test-only-rsa-2048.pkcs8.pem");
        let secret_line = rsa.lines().nth(3).unwrap().to_owned();
        let cases = [
            ("", "holds no key"),
            ("   \n", "holds no key"),
            ("hunter2", "is neither PEM"),
            ("{not json", "is not valid JSON"),
            ("5", "is neither PEM"),
            (r#"{"keys": 5}"#, "\"keys\" is not a list"),
            (r#"{"keys": []}"#, "holds no key"),
            (r#"[5]"#, "key 1: is not a JSON object"),
            (r#"{"kty":"RSA","n":"AQ","e":"AQAB"}"#, "key 1: is a public key"),
            (r#"{"kty":"oct","k":"AQ","d":"x"}"#, "key 1: is a symmetric key"),
            (r#"{"kty":"OKP","d":"x"}"#, "key 1: has an unsupported \"kty\""),
            (r#"{"kty":"EC","crv":"P-521","d":"AQ","x":"AQ","y":"AQ"}"#, "key 1: has an unsupported \"crv\""),
            (r#"{"kty":"EC","crv":"P-256","d":"AQ","x":"AQ","y":"AQ"}"#, "key 1: is not a consistent P-256"),
            (r#"{"kty":"EC","crv":"P-384","d":"AQ","x":"AQ","y":"AQ"}"#, "key 1: is not a consistent P-384"),
            (r#"{"kty":"EC","crv":"P-256","d":"!!","x":"AQ","y":"AQ"}"#, "key 1: \"d\" is not base64url"),
            (r#"{"kty":"EC","crv":"P-256","d":"AQ","y":"AQ"}"#, "key 1: has no \"x\""),
            (r#"{"kty":"EC","crv":"P-256","d":"AQ","x":"AQ"}"#, "key 1: has no \"y\""),
            (r#"{"kty":"RSA","n":"AQ","e":"AQAB","d":"!!"}"#, "key 1: \"d\" is not base64url"),
            (r#"{"kty":"RSA","e":"AQAB","d":"AQ"}"#, "key 1: has no \"n\""),
            (r#"{"kty":"RSA","n":"AQ","e":"AQAB","d":"AQ"}"#, "key 1: is not a consistent RSA"),
            ("-----BEGIN PRIVATE KEY", "key 1: PEM header is cut"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "key 1: PEM block has no END line"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "key 1: not a valid PKCS#8"),
            ("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----", "key 1: not a valid PKCS#1"),
            ("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----", "key 1: not a valid SEC1"),
            ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nA\n-----END ENCRYPTED PRIVATE KEY-----", "key 1: is encrypted"),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "key 1: is a public key"),
            ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "key 1: is a public key or cert"),
            ("-----BEGIN X-----\nAAAA\n-----END X-----", "key 1: is not a private key PEM"),
        ];
        for (text, problem) in cases {
            let error = parse_private_keys(text, None).unwrap_err();
            assert!(error.starts_with(problem), "{text:?}: {error}");
        }
        let two = format!("{rsa}\n-----BEGIN PRIVATE KEY-----\n{secret_line}\n-----END PRIVATE KEY-----");
        let error = parse_private_keys(&two, None).unwrap_err();
        assert!(error.starts_with("key 2: not a valid PKCS#8"), "{error}");
        assert!(!error.contains(&secret_line[..20]));
        let error = parse_private_keys(&read("test-only-p256.pkcs8.pem"), Some(SigningAlg::RS256)).unwrap_err();
        assert_eq!(error, "key 1: algorithm RS256 does not fit this key type");
        let error = parse_private_keys(r#"{"kty":"EC","crv":"P-256","d":"x","alg":"XS1"}"#, None);
        assert!(error.is_err());
        let jwk = read("test-only-p256.jwk.json").replace("\"ES256\"", "\"XS256\"");
        assert_eq!(parse_private_keys(&jwk, None).unwrap_err(), "key 1: has an unsupported \"alg\" \"XS256\"");
        let e = parse_key_file("nope", "CLIENT_PRIVATE_KEY_FILE", None).unwrap_err();
        assert_eq!(e.field, "CLIENT_PRIVATE_KEY_FILE");
        assert!(e.problem.starts_with("the key file is neither PEM"), "{}", e.problem);
    }

    #[test]
    fn short_rsa_keys_are_refused() {
        let short = read("test-only-rsa-1024.pkcs8.pem");
        assert_eq!(
            parse_private_keys(&short, None).unwrap_err(),
            "key 1: RSA key of 1024 bits is too short (2048 at least)"
        );
    }

    #[test]
    fn debug_shows_alg_and_kid_only() {
        let key = parse_private_keys(&read("test-only-p256.jwk.json"), None).unwrap().remove(0);
        assert_eq!(format!("{key:?}"), "PrivateKey(ES256 kid=\"test-only-p256\" [redacted])");
        let jwk: Value = serde_json::from_str(&read("test-only-p256.jwk.json")).unwrap();
        assert!(!format!("{key:?}").contains(jwk["d"].as_str().unwrap()));
        assert!(key.public_jwk().get("d").is_none());
        assert_eq!(key.clone(), key);
        let other = parse_private_keys(&read("test-only-rsa-2048.jwk.json"), None).unwrap().remove(0);
        assert_ne!(key, other);
        assert_ne!(
            other.clone(),
            parse_private_keys(&read("test-only-rsa-2048.jwk.json"), Some(SigningAlg::PS256))
                .map(|mut k| { k.remove(0) })
                .map(|k| PrivateKey { alg: SigningAlg::PS256, ..k })
                .unwrap()
        );
    }

    #[test]
    fn equality_is_material_alg_and_kid() {
        let jwk = parse_private_keys(&read("test-only-rsa-2048.jwk.json"), None).unwrap().remove(0);
        let pem = parse_private_keys(&read("test-only-rsa-2048.pkcs8.pem"), None).unwrap().remove(0);
        assert_eq!((jwk.alg(), pem.alg()), (SigningAlg::RS256, SigningAlg::RS256));
        assert_ne!(jwk, pem, "same key and alg, another kid");
        let p384 = parse_private_keys(&read("test-only-p384.pkcs8.pem"), None).unwrap().remove(0);
        assert_eq!(p384, p384.clone());
        assert_ne!(p384, pem);
    }

    #[test]
    fn a_jwk_mixing_two_keys_is_refused() {
        let mut rsa: Value = serde_json::from_str(&read("test-only-rsa-2048.jwk.json")).unwrap();
        rsa["p"] = rsa["q"].clone();
        assert_eq!(
            parse_private_keys(&rsa.to_string(), None).unwrap_err(),
            "key 1: is not a consistent RSA private key"
        );
        let mut ec: Value = serde_json::from_str(&read("test-only-p256.jwk.json")).unwrap();
        ec["y"] = ec["x"].clone();
        assert_eq!(
            parse_private_keys(&ec.to_string(), None).unwrap_err(),
            "key 1: is not a consistent P-256 private key"
        );
        let mut ec: Value = serde_json::from_str(&read("test-only-p256.jwk.json")).unwrap();
        ec["x"] = ec["y"].clone();
        assert!(parse_private_keys(&ec.to_string(), None).is_err());
        // Without p and q the primes are recovered from n, e and d.
        let mut rsa: Value = serde_json::from_str(&read("test-only-rsa-2048.jwk.json")).unwrap();
        rsa.as_object_mut().unwrap().remove("q");
        assert!(parse_private_keys(&rsa.to_string(), None).is_ok());
    }

    #[test]
    fn parsed_json_is_overwritten_before_it_is_dropped() {
        let scrubbed = json_zeroized(serde_json::json!({"d": "secret", "keys": [{"k": "x"}], "n": 5}));
        assert_eq!(scrubbed, serde_json::json!({"d": "", "keys": [{"k": ""}], "n": 5}));
    }

    #[test]
    fn algorithm_names_round_trip() {
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(alg.as_str()), Some(alg));
            assert_eq!(alg.to_string(), alg.as_str());
            assert_eq!(alg.is_hmac(), alg.as_str().starts_with("HS"));
        }
        assert_eq!(SigningAlg::parse("es256"), None);
    }
}
