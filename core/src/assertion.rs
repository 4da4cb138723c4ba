//! Signed client assertions: `private_key_jwt` (RFC 7523 §2.2, OpenID
//! Connect Core §9) and `client_secret_jwt`.
//!
//! The engine builds and signs the assertion itself; the host only passes the
//! time and entropy (see [`EntropyPool`](crate::EntropyPool)). One assertion
//! per token request:
//!
//! - header `{"alg":..,"typ":"JWT","kid":..}` (`kid` only for a private key);
//! - claims `{"iss":id,"sub":id,"aud":..,"jti":..,"iat":..,"exp":..}` in that
//!   order, `iss` = `sub` = the client id, `aud` = the token endpoint (or the
//!   issuer, with `assertion_audience: "issuer"`), `iat` = `now` in whole
//!   seconds, `exp` = `iat` + `assertion_lifetime_ms` / 1000 (60 s by default),
//!   `jti` = 16 bytes from the entropy pool, base64url (22 characters);
//! - compact JWS: `base64url(header) "." base64url(claims) "." base64url(signature)`,
//!   the JSON as `serde_json` writes it (no spaces).
//!
//! Per request the pool gives 16 bytes for the `jti`, then 32 bytes that seed
//! the signature's own pool (RSA blinding, PSS salt), so what a signature
//! consumes never shifts later `jti`s. ES256 / ES384 use RFC 6979
//! deterministic nonces, RS* are deterministic by construction, HS* are HMACs:
//! with a fixed seed the whole assertion is fixed, which the conformance
//! scenarios check byte for byte. PS* salts come from the pool.
//!
//! The request carries `client_assertion_type` =
//! [`CLIENT_ASSERTION_TYPE`] and `client_assertion`; `client_id` is sent too
//! (RFC 7521 §4.2 allows it and some servers want it).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
#[cfg(feature = "asymmetric")]
use rsa::{Pkcs1v15Sign, Pss};
use serde::Serialize;
#[cfg(feature = "asymmetric")]
use sha2::Digest;
use sha2::{Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

use crate::entropy::EntropyPool;
#[cfg(feature = "asymmetric")]
use crate::keys::KeyMaterial;
use crate::keys::{PrivateKey, SigningAlg};
use crate::secret::ClientSecret;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What signs an assertion.
#[derive(Debug, Clone, Copy)]
pub enum AssertionKey<'a> {
    /// `private_key_jwt`: the key's own algorithm and `kid`.
    Private(&'a PrivateKey),
    /// `client_secret_jwt`: an HMAC with the client secret.
    Secret(&'a ClientSecret, SigningAlg),
}

/// The claims of one assertion. Times are in seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssertionClaims {
    /// The client id.
    pub iss: String,
    /// The client id again.
    pub sub: String,
    /// The token endpoint (or the issuer).
    pub aud: String,
    /// A value used once.
    pub jti: String,
    /// Issued at.
    pub iat: u64,
    /// Expires at.
    pub exp: u64,
}

impl AssertionClaims {
    /// The claims for `client_id` and `audience` at `now_ms`, living
    /// `lifetime_ms` (whole seconds are kept), with a `jti` drawn from `pool`.
    pub fn new(client_id: &str, audience: &str, now_ms: u64, lifetime_ms: u64, pool: &mut EntropyPool) -> Self {
        let mut jti = [0u8; 16];
        pool.fill(&mut jti);
        let iat = now_ms / 1000;
        Self {
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            aud: audience.to_owned(),
            jti: URL_SAFE_NO_PAD.encode(jti),
            iat,
            exp: iat.saturating_add(lifetime_ms / 1000),
        }
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// Signs `claims` with `key` as a compact JWS. `pool` gives what RSA blinding
/// and PSS salts need (a child pool is seeded from 32 bytes of it). Fails only
/// if the key cannot sign (which a key that passed parsing cannot).
pub fn sign_assertion(
    key: AssertionKey<'_>,
    claims: &AssertionClaims,
    pool: &mut EntropyPool,
) -> Result<String, String> {
    let (alg, kid) = match key {
        AssertionKey::Private(private) => (private.alg(), Some(private.kid())),
        AssertionKey::Secret(_, alg) => (alg, None),
    };
    let header = Header { alg: alg.as_str(), typ: "JWT", kid };
    // Plain structs of strings and integers: serializing cannot fail.
    let mut input = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
    input.push('.');
    input.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default()));
    // Drawn for every signature, so that the pool's sequence is the same in every build.
    #[cfg_attr(not(feature = "asymmetric"), allow(unused_mut, unused_variables))]
    let mut rng = pool.child();
    let signature = match key {
        #[cfg(feature = "asymmetric")]
        AssertionKey::Private(private) => sign_with_key(private, alg, input.as_bytes(), &mut rng)?,
        // Without the `asymmetric` feature no private key exists.
        #[cfg(not(feature = "asymmetric"))]
        AssertionKey::Private(private) => match private.material {},
        AssertionKey::Secret(secret, alg) => hmac_sign(secret.expose().as_bytes(), alg, input.as_bytes())?,
    };
    input.push('.');
    input.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(input)
}

#[cfg(feature = "asymmetric")]
fn sign_with_key(key: &PrivateKey, alg: SigningAlg, input: &[u8], rng: &mut EntropyPool) -> Result<Vec<u8>, String> {
    use p256::ecdsa::signature::Signer;
    let failed = |_| format!("{alg} signing failed");
    match (&key.material, alg) {
        (KeyMaterial::P256(k), _) => {
            let signature: p256::ecdsa::Signature = k.try_sign(input).map_err(failed)?;
            Ok(signature.to_bytes().to_vec())
        }
        (KeyMaterial::P384(k), _) => {
            let signature: p384::ecdsa::Signature = k.try_sign(input).map_err(failed)?;
            Ok(signature.to_bytes().to_vec())
        }
        (KeyMaterial::Rsa(k), SigningAlg::RS256) => {
            k.sign_with_rng(rng, Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(input))
        }
        (KeyMaterial::Rsa(k), SigningAlg::RS384) => {
            k.sign_with_rng(rng, Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(input))
        }
        (KeyMaterial::Rsa(k), SigningAlg::RS512) => {
            k.sign_with_rng(rng, Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(input))
        }
        (KeyMaterial::Rsa(k), SigningAlg::PS256) => {
            k.sign_with_rng(rng, Pss::new_blinded::<Sha256>(), &Sha256::digest(input))
        }
        (KeyMaterial::Rsa(k), SigningAlg::PS384) => {
            k.sign_with_rng(rng, Pss::new_blinded::<Sha384>(), &Sha384::digest(input))
        }
        (KeyMaterial::Rsa(k), SigningAlg::PS512) => {
            k.sign_with_rng(rng, Pss::new_blinded::<Sha512>(), &Sha512::digest(input))
        }
        (KeyMaterial::Rsa(_), _) => return Err(format!("{alg} does not fit an RSA key")),
    }
    .map_err(|_| format!("{alg} signing failed"))
}

fn hmac_sign(secret: &[u8], alg: SigningAlg, input: &[u8]) -> Result<Vec<u8>, String> {
    let secret = Zeroizing::new(secret.to_vec());
    let mac = match alg {
        SigningAlg::HS256 => mac::<Hmac<Sha256>>(&secret, input),
        SigningAlg::HS384 => mac::<Hmac<Sha384>>(&secret, input),
        SigningAlg::HS512 => mac::<Hmac<Sha512>>(&secret, input),
        other => return Err(format!("{other} is not an HMAC algorithm")),
    };
    Ok(mac)
}

fn mac<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(all(test, feature = "asymmetric"))]
mod tests {
    use super::*;
    use crate::keys::parse_private_keys;
    use p256::ecdsa::signature::Verifier;

    const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/conformance/keys/");

    fn key(name: &str, alg: Option<SigningAlg>) -> PrivateKey {
        parse_private_keys(&std::fs::read_to_string(format!("{KEYS}{name}")).unwrap(), alg).unwrap().remove(0)
    }

    fn parts(jwt: &str) -> (serde_json::Value, serde_json::Value, Vec<u8>) {
        let p: Vec<&str> = jwt.split('.').collect();
        assert_eq!(p.len(), 3);
        let d = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap();
        (serde_json::from_slice(&d(p[0])).unwrap(), serde_json::from_slice(&d(p[1])).unwrap(), d(p[2]))
    }

    fn claims(pool: &mut EntropyPool) -> AssertionClaims {
        AssertionClaims::new("billing-worker", "https://auth.example/oauth2/token", 1_700_000_000_999, 60_000, pool)
    }

    #[test]
    fn claims_are_whole_seconds_with_a_fresh_jti() {
        let mut pool = EntropyPool::new(1);
        let a = claims(&mut pool);
        assert_eq!((a.iat, a.exp), (1_700_000_000, 1_700_000_060));
        assert_eq!((a.iss.as_str(), a.sub.as_str()), ("billing-worker", "billing-worker"));
        assert_eq!(a.jti.len(), 22);
        let mut reference = EntropyPool::new(1);
        let mut bytes = [0u8; 16];
        reference.fill(&mut bytes);
        assert_eq!(a.jti, URL_SAFE_NO_PAD.encode(bytes));
        assert_ne!(claims(&mut pool).jti, a.jti);
        let far = AssertionClaims::new("c", "a", u64::MAX, 60_000, &mut pool);
        assert_eq!(far.exp, u64::MAX / 1000 + 60);
    }

    #[test]
    fn every_algorithm_signs_what_its_public_key_verifies() {
        let rsa = key("test-only-rsa-2048.pkcs8.pem", None);
        let KeyMaterial::Rsa(private) = &rsa.material else { unreachable!() };
        let public = private.to_public_key();
        for alg in [
            SigningAlg::RS256,
            SigningAlg::RS384,
            SigningAlg::RS512,
            SigningAlg::PS256,
            SigningAlg::PS384,
            SigningAlg::PS512,
        ] {
            let k = key("test-only-rsa-2048.pkcs8.pem", Some(alg));
            let mut pool = EntropyPool::new(9);
            let jwt = sign_assertion(AssertionKey::Private(&k), &claims(&mut pool), &mut pool).unwrap();
            let (header, body, signature) = parts(&jwt);
            assert_eq!(header, serde_json::json!({"alg": alg.as_str(), "typ": "JWT", "kid": k.kid()}));
            assert_eq!(body["aud"], "https://auth.example/oauth2/token");
            let input = &jwt[..jwt.rfind('.').unwrap()];
            let ok = match alg {
                SigningAlg::RS256 => public.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(input), &signature),
                SigningAlg::RS384 => public.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(input), &signature),
                SigningAlg::RS512 => public.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(input), &signature),
                SigningAlg::PS256 => public.verify(Pss::new::<Sha256>(), &Sha256::digest(input), &signature),
                SigningAlg::PS384 => public.verify(Pss::new::<Sha384>(), &Sha384::digest(input), &signature),
                _ => public.verify(Pss::new::<Sha512>(), &Sha512::digest(input), &signature),
            };
            assert!(ok.is_ok(), "{alg}");
            // PSS salts come from the pool: another seed, another signature.
            let mut other = EntropyPool::new(10);
            let mut c = claims(&mut EntropyPool::new(9));
            c.jti = body["jti"].as_str().unwrap().to_owned();
            let again = sign_assertion(AssertionKey::Private(&k), &c, &mut other).unwrap();
            assert_eq!(again == jwt, alg.as_str().starts_with("RS"), "{alg}");
        }
        let ec = key("test-only-p256.pkcs8.pem", None);
        let mut pool = EntropyPool::new(9);
        let jwt = sign_assertion(AssertionKey::Private(&ec), &claims(&mut pool), &mut pool).unwrap();
        let (_, _, signature) = parts(&jwt);
        let KeyMaterial::P256(signing) = &ec.material else { unreachable!() };
        let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
        assert!(signing.verifying_key().verify(&jwt.as_bytes()[..jwt.rfind('.').unwrap()], &signature).is_ok());
        let ec = key("test-only-p384.pkcs8.pem", None);
        let jwt = sign_assertion(AssertionKey::Private(&ec), &claims(&mut pool), &mut pool).unwrap();
        let (header, _, signature) = parts(&jwt);
        assert_eq!(header["alg"], "ES384");
        let KeyMaterial::P384(signing) = &ec.material else { unreachable!() };
        let signature = p384::ecdsa::Signature::from_slice(&signature).unwrap();
        assert!(signing.verifying_key().verify(&jwt.as_bytes()[..jwt.rfind('.').unwrap()], &signature).is_ok());
    }

    #[test]
    fn client_secret_jwt_is_an_hmac_without_kid() {
        let secret = ClientSecret::new("s3cr3t-value");
        for (alg, len) in [(SigningAlg::HS256, 32), (SigningAlg::HS384, 48), (SigningAlg::HS512, 64)] {
            let mut pool = EntropyPool::new(1);
            let jwt = sign_assertion(AssertionKey::Secret(&secret, alg), &claims(&mut pool), &mut pool).unwrap();
            let (header, _, signature) = parts(&jwt);
            assert_eq!(header, serde_json::json!({"alg": alg.as_str(), "typ": "JWT"}));
            assert_eq!(signature.len(), len);
        }
        // RFC 4231 test case 2 for HMAC-SHA-256.
        assert_eq!(
            hmac_sign(b"Jefe", SigningAlg::HS256, b"what do ya want for nothing?").unwrap(),
            [
                0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a,
                0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43
            ]
        );
        let mut pool = EntropyPool::new(1);
        let c = claims(&mut pool);
        assert!(sign_assertion(AssertionKey::Secret(&secret, SigningAlg::ES256), &c, &mut pool).is_err());
        let rsa = key("test-only-rsa-2048.pkcs8.pem", None);
        assert_eq!(
            sign_with_key(&rsa, SigningAlg::ES256, b"x", &mut pool).unwrap_err(),
            "ES256 does not fit an RSA key"
        );
    }
}
