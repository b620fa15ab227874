//! Tokens of every kind, good and bad, against real key files (the PEMs in `testdata/` are
//! throwaway keys made for these tests).

use std::path::PathBuf;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const SECRET: &str = "a-local-development-secret-of-32+bytes";

/// A folder of its own for a test's key files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("holdfast-auth-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("written");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims(sub: &str, scope: &str) -> Value {
    json!({ "sub": sub, "scope": scope, "iss": "holdfast-local", "aud": "holdfast", "exp": now() + 300 })
}

fn args(jwks: Option<&PathBuf>, secret: Option<PathBuf>) -> AuthArgs {
    AuthArgs {
        jwks: jwks.map(|p| p.display().to_string()),
        hs256_secret_file: secret,
        hs256_secret: None,
        issuer: "holdfast-local".into(),
        audience: "holdfast".into(),
        rate_limit: 0,
        rate_burst: 0,
    }
}

fn hs256(claims: &Value) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("signed")
}

fn pem(name: &str) -> &'static [u8] {
    match name {
        "rsa-1" => include_bytes!("testdata/rsa-1.pem"),
        "rsa-2" => include_bytes!("testdata/rsa-2.pem"),
        _ => include_bytes!("testdata/ec-1.pem"),
    }
}

fn encoding_key(name: &str, alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem(name)).expect("ec key"),
        _ => EncodingKey::from_rsa_pem(pem(name)).expect("rsa key"),
    }
}

/// A JWKS holding the public halves of `keys` (name, algorithm), each under its name as kid.
fn jwks(keys: &[(&str, Algorithm)]) -> Vec<u8> {
    let keys = keys
        .iter()
        .map(|(name, alg)| {
            let mut jwk = Jwk::from_encoding_key(&encoding_key(name, *alg), *alg).expect("jwk");
            jwk.common.key_id = Some((*name).to_owned());
            jwk
        })
        .collect();
    serde_json::to_vec(&JwkSet { keys }).expect("json")
}

fn signed(name: &str, alg: Algorithm, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(name.to_owned());
    jsonwebtoken::encode(&header, claims, &encoding_key(name, alg)).expect("signed")
}

async fn check(auth: &Authenticator, token: &str) -> Result<Principal, AuthError> {
    auth.authenticate(Some(format!("Bearer {token}").as_bytes())).await
}

async fn local() -> Authenticator {
    let scratch = Scratch::new();
    Authenticator::new(&args(None, Some(scratch.file("secret", SECRET.as_bytes())))).await.expect("keys")
}

#[tokio::test]
async fn a_valid_token_gives_its_subject_and_known_scopes() {
    let auth = local().await;
    let principal = check(&auth, &hs256(&claims("ada", "reservations:write reservations:read other:x")))
        .await
        .expect("valid");
    assert_eq!(principal.subject, "ada");
    assert!(principal.has(Scope::ReservationsWrite) && principal.has(Scope::ReservationsRead));
    assert!(!principal.has(Scope::ResourcesAdmin) && !principal.is_admin());
    assert_eq!(
        principal.require(Scope::AvailabilityRead),
        Err(AuthError::Forbidden { scope: Scope::AvailabilityRead })
    );
    let lower = auth.authenticate(Some(format!("bearer {}", hs256(&claims("ada", ""))).as_bytes())).await;
    assert!(lower.is_ok(), "the scheme is case-insensitive");
}

#[tokio::test]
async fn missing_malformed_expired_foreign_or_tampered_tokens_are_refused() {
    let auth = local().await;
    assert_eq!(auth.authenticate(None).await, Err(AuthError::Missing));
    assert_eq!(auth.authenticate(Some(b"Basic YWRhOng=")).await, Err(AuthError::Missing));
    assert_eq!(auth.authenticate(Some(b"Bearer ")).await, Err(AuthError::Missing));
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims("ada", "reservations:write");
        change(&mut c);
        hs256(&c)
    };
    let good = with(&|_| {});
    let (head, rest) = good.split_once('.').expect("three parts");
    let (payload, signature) = rest.split_once('.').expect("three parts");
    let mut flipped = signature.to_owned();
    let last = if flipped.ends_with('A') { 'B' } else { 'A' };
    flipped.replace_range(flipped.len() - 1.., &last.to_string());
    let other_payload = with(&|c| c["sub"] = json!("mallory"));
    let forged_payload = other_payload.split('.').nth(1).expect("payload");
    let cases = [
        ("garbage", "not-a-token".to_owned()),
        ("expired", with(&|c| c["exp"] = json!(now() - 120))),
        ("not yet valid", with(&|c| c["nbf"] = json!(now() + 600))),
        ("wrong issuer", with(&|c| c["iss"] = json!("someone-else"))),
        ("wrong audience", with(&|c| c["aud"] = json!("another-api"))),
        ("no exp", with(&|c| c.as_object_mut().expect("object").remove("exp").map(drop).unwrap_or(()))),
        ("no sub", with(&|c| c.as_object_mut().expect("object").remove("sub").map(drop).unwrap_or(()))),
        ("empty sub", with(&|c| c["sub"] = json!(""))),
        ("signature changed", format!("{head}.{payload}.{flipped}")),
        ("payload swapped", format!("{head}.{forged_payload}.{signature}")),
        ("signed with another secret", {
            let key = EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!").expect("key");
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims("ada", ""), &key).expect("signed")
        }),
        ("alg none", {
            let b64 = |v: &Value| base64_url(&serde_json::to_vec(v).expect("json"));
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&claims("ada", "resources:admin"))
            )
        }),
    ];
    for (case, token) in cases {
        let result = check(&auth, &token).await;
        assert!(matches!(result, Err(AuthError::Invalid(_))), "{case}: {result:?}");
    }
    // Within the leeway, a just-expired token still passes.
    assert!(check(&auth, &with(&|c| c["exp"] = json!(now() - 5))).await.is_ok());
}

#[tokio::test]
async fn rs256_and_es256_tokens_are_checked_against_the_jwks_and_keys_rotate() {
    let scratch = Scratch::new();
    let file = scratch.file("jwks.json", &jwks(&[("rsa-1", Algorithm::RS256), ("ec-1", Algorithm::ES256)]));
    let auth = Authenticator::new(&args(Some(&file), None)).await.expect("keys");
    let admin = claims("ops", "resources:admin");
    assert!(check(&auth, &signed("rsa-1", Algorithm::RS256, &admin)).await.expect("rs256").is_admin());
    assert!(check(&auth, &signed("ec-1", Algorithm::ES256, &admin)).await.expect("es256").is_admin());
    let hs = check(&auth, &hs256(&admin)).await;
    assert!(matches!(hs, Err(AuthError::Invalid(_))), "no HS256 secret configured: {hs:?}");
    // A token signed by rsa-2 claiming to be rsa-1 fails its signature.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let impostor =
        jsonwebtoken::encode(&header, &admin, &encoding_key("rsa-2", Algorithm::RS256)).expect("signed");
    assert!(matches!(check(&auth, &impostor).await, Err(AuthError::Invalid(_))));

    // Rotation: the provider publishes rsa-2 and drops rsa-1; the first token naming rsa-2
    // makes the JWKS be read again.
    std::fs::write(&file, jwks(&[("rsa-2", Algorithm::RS256)])).expect("rotated");
    let principal = check(&auth, &signed("rsa-2", Algorithm::RS256, &admin)).await.expect("rotated key");
    assert_eq!(principal.subject, "ops");
    assert!(matches!(
        check(&auth, &signed("rsa-1", Algorithm::RS256, &admin)).await,
        Err(AuthError::Invalid(_))
    ));
    // Unknown key ids do not make it read again at once.
    std::fs::write(&file, jwks(&[("rsa-2", Algorithm::RS256), ("ec-1", Algorithm::ES256)])).expect("written");
    assert!(matches!(
        check(&auth, &signed("ec-1", Algorithm::ES256, &admin)).await,
        Err(AuthError::Invalid(_))
    ));
}

#[tokio::test]
async fn configuration_mistakes_are_refused_at_start() {
    assert!(matches!(Authenticator::new(&args(None, None)).await, Err(KeyError::NotConfigured)));
    let scratch = Scratch::new();
    let short = scratch.file("short", b"too-short");
    assert!(matches!(Authenticator::new(&args(None, Some(short))).await, Err(KeyError::Unusable { .. })));
    let missing = PathBuf::from("/nonexistent/holdfast/jwks.json");
    assert!(matches!(
        Authenticator::new(&args(Some(&missing), None)).await,
        Err(KeyError::Unreadable { .. })
    ));
    let empty = scratch.file("jwks.json", br#"{"keys": []}"#);
    assert!(matches!(Authenticator::new(&args(Some(&empty), None)).await, Err(KeyError::Unusable { .. })));
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0_u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}
