//! The keys tokens are checked with: a JWKS document's RS256 and ES256 keys by key id, and an
//! optional HS256 secret. A token naming a key id not held makes the JWKS be read again, at
//! most once every [`REFRESH_INTERVAL`], so a rotated-in key is picked up without a restart
//! and a flood of made-up key ids cannot hammer the identity provider.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, RwLock};

use super::AuthError;

/// Least time between two reads of the JWKS.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// Shortest accepted HS256 secret, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// How long a JWKS URL may take to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the keys cannot be used. Fix the configuration named in the message.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither a JWKS nor an HS256 secret is configured.
    #[error(
        "no token keys: set HOLDFAST_AUTH_JWKS (or, for local development, HOLDFAST_AUTH_HS256_SECRET_FILE)"
    )]
    NotConfigured,
    /// The source could not be read.
    #[error("cannot read {source_name}: {detail}")]
    Unreadable {
        /// The file or URL.
        source_name: String,
        /// What failed.
        detail: String,
    },
    /// The source was read but holds nothing usable.
    #[error("{source_name}: {detail}")]
    Unusable {
        /// The file or URL.
        source_name: String,
        /// What is wrong.
        detail: String,
    },
}

/// The keys, and where the JWKS comes from.
pub(super) struct Keys {
    hs256: Option<Arc<DecodingKey>>,
    jwks: Option<String>,
    by_id: RwLock<HashMap<String, (Algorithm, Arc<DecodingKey>)>>,
    last_read: Mutex<Instant>,
}

impl Keys {
    /// Reads the configured sources.
    pub(super) async fn load(
        jwks: Option<String>,
        hs256_file: Option<&Path>,
        hs256: Option<&SecretString>,
    ) -> Result<Self, KeyError> {
        let hs256 = match (hs256_file, hs256) {
            (Some(path), _) => {
                let source_name = path.display().to_string();
                let bytes = tokio::fs::read(path).await.map_err(|e| KeyError::Unreadable {
                    source_name: source_name.clone(),
                    detail: e.to_string(),
                })?;
                Some(secret(&bytes, source_name)?)
            }
            (None, Some(given)) => {
                Some(secret(given.expose_secret().as_bytes(), "HOLDFAST_AUTH_HS256_SECRET".into())?)
            }
            (None, None) => None,
        };
        if jwks.is_none() && hs256.is_none() {
            return Err(KeyError::NotConfigured);
        }
        let by_id = match &jwks {
            Some(source) => read_jwks(source).await?,
            None => HashMap::new(),
        };
        Ok(Self::new(hs256, jwks, by_id))
    }

    /// Only the HS256 `secret`, read from `source_name`.
    pub(super) fn hs256(secret: &[u8], source_name: &str) -> Result<Self, KeyError> {
        Ok(Self::new(Some(self::secret(secret, source_name.to_owned())?), None, HashMap::new()))
    }

    fn new(
        hs256: Option<Arc<DecodingKey>>,
        jwks: Option<String>,
        by_id: HashMap<String, (Algorithm, Arc<DecodingKey>)>,
    ) -> Self {
        // The first unknown key may be looked up at once.
        let long_ago = Instant::now().checked_sub(REFRESH_INTERVAL).unwrap_or_else(Instant::now);
        Self { hs256, jwks, by_id: RwLock::new(by_id), last_read: Mutex::new(long_ago) }
    }

    /// The key for a token signed with `alg` naming key `kid`.
    pub(super) async fn find(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Arc<DecodingKey>, AuthError> {
        if alg == Algorithm::HS256 {
            return self
                .hs256
                .clone()
                .ok_or_else(|| AuthError::Invalid("HS256 tokens are not accepted".into()));
        }
        let Some(kid) = kid else {
            return Err(AuthError::Invalid("the token names no key (kid)".into()));
        };
        if let Some(key) = self.held(alg, kid).await? {
            return Ok(key);
        }
        let Some(source) = &self.jwks else {
            return Err(AuthError::Invalid(format!("unknown key {kid:?}")));
        };
        {
            let mut last_read = self.last_read.lock().await;
            // Another request may have read it meanwhile.
            if let Some(key) = self.held(alg, kid).await? {
                return Ok(key);
            }
            if last_read.elapsed() < REFRESH_INTERVAL {
                return Err(AuthError::Invalid(format!("unknown key {kid:?}")));
            }
            *last_read = Instant::now();
            match read_jwks(source).await {
                Ok(keys) => *self.by_id.write().await = keys,
                Err(error) => {
                    tracing::warn!(%error, "the token keys could not be read again");
                    return Err(AuthError::KeysUnavailable);
                }
            }
        }
        self.held(alg, kid).await?.ok_or_else(|| AuthError::Invalid(format!("unknown key {kid:?}")))
    }

    /// The held key `kid`, if any, when it is a key for `alg`.
    async fn held(&self, alg: Algorithm, kid: &str) -> Result<Option<Arc<DecodingKey>>, AuthError> {
        match self.by_id.read().await.get(kid) {
            None => Ok(None),
            Some((key_alg, key)) if *key_alg == alg => Ok(Some(Arc::clone(key))),
            Some((key_alg, _)) => {
                Err(AuthError::Invalid(format!("key {kid:?} is for {key_alg:?}, the token says {alg:?}")))
            }
        }
    }
}

/// The HS256 key of `bytes` (surrounding whitespace, such as a file's last newline, is not
/// part of it), read from `source_name`.
fn secret(bytes: &[u8], source_name: String) -> Result<Arc<DecodingKey>, KeyError> {
    let secret = bytes.trim_ascii();
    if secret.len() < MIN_SECRET_BYTES {
        let detail = format!("an HS256 secret needs at least {MIN_SECRET_BYTES} bytes");
        return Err(KeyError::Unusable { source_name, detail });
    }
    DecodingKey::from_secret(secret)
        .map(Arc::new)
        .map_err(|e| KeyError::Unusable { source_name, detail: e.to_string() })
}

/// The RS256 and ES256 keys of the JWKS at `source` (a file path or an http(s) URL), by key
/// id. Keys of other types, or without a key id, are skipped.
async fn read_jwks(source: &str) -> Result<HashMap<String, (Algorithm, Arc<DecodingKey>)>, KeyError> {
    let unreadable = |detail: String| KeyError::Unreadable { source_name: source.to_owned(), detail };
    let body = if source.starts_with("http://") || source.starts_with("https://") {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| unreadable(e.to_string()))?;
        let response = client.get(source).send().await.map_err(|e| unreadable(e.to_string()))?;
        let response = response.error_for_status().map_err(|e| unreadable(e.to_string()))?;
        response.bytes().await.map_err(|e| unreadable(e.to_string()))?.to_vec()
    } else {
        tokio::fs::read(source).await.map_err(|e| unreadable(e.to_string()))?
    };
    let set: JwkSet = serde_json::from_slice(&body).map_err(|e| KeyError::Unusable {
        source_name: source.to_owned(),
        detail: format!("not a JWKS: {e}"),
    })?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = &jwk.common.key_id else { continue };
        let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                if ec.curve == EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyError::Unusable {
            source_name: source.to_owned(),
            detail: format!("key {kid:?}: {e}"),
        })?;
        keys.insert(kid.clone(), (alg, Arc::new(key)));
    }
    if keys.is_empty() {
        let detail = "no RS256 or ES256 key with a key id".to_owned();
        return Err(KeyError::Unusable { source_name: source.to_owned(), detail });
    }
    Ok(keys)
}
