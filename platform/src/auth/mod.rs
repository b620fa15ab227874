//! Who is calling: JWT bearer tokens checked against the configured keys, and the scopes they
//! grant.
//!
//! Tokens are signed with RS256 or ES256 by an identity provider whose public keys come from a
//! JWKS document (a file or a URL, re-read when a token names a key not held yet: rotation),
//! or with HS256 and a shared secret file, meant for local development only. Every token must
//! carry `sub`, `iss`, `aud` and `exp`, and match the configured issuer and audience; `exp` and
//! `nbf` are checked with [`LEEWAY_SECONDS`] of clock skew. Scopes come from the OAuth 2.0
//! `scope` claim (space-separated); unknown scopes are ignored.
//!
//! The services call [`Authenticator::authenticate`] with the `Authorization` header and then
//! check scopes on the [`Principal`]; what a refusal looks like on the wire (401 with
//! `WWW-Authenticate`, 403) is each service's problem module's business.

mod keys;
pub mod rate;
pub mod slots;

use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

pub use jsonwebtoken::errors::Error as MintError;

use self::keys::Keys;
pub use self::keys::{KeyError, MIN_SECRET_BYTES};
pub use crate::config::AuthArgs;

/// Clock skew allowed when checking `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;
/// The issuer the services expect by default (`HOLDFAST_AUTH_ISSUER`), and local tokens name.
pub const LOCAL_ISSUER: &str = "holdfast-local";
/// The audience the services expect by default (`HOLDFAST_AUTH_AUDIENCE`), and local tokens name.
pub const LOCAL_AUDIENCE: &str = "holdfast";

/// One permission a token can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Define resources and change their capacity; act for any customer.
    ResourcesAdmin,
    /// Place, confirm and cancel reservations.
    ReservationsWrite,
    /// Read reservations.
    ReservationsRead,
    /// Read availability.
    AvailabilityRead,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Self; 4] =
        [Self::ResourcesAdmin, Self::ReservationsWrite, Self::ReservationsRead, Self::AvailabilityRead];

    /// The scope's name in tokens.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResourcesAdmin => "resources:admin",
            Self::ReservationsWrite => "reservations:write",
            Self::ReservationsRead => "reservations:read",
            Self::AvailabilityRead => "availability:read",
        }
    }

    /// The scope named `name` in a token, if Holdfast knows it.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == name)
    }

    fn bit(self) -> u8 {
        match self {
            Self::ResourcesAdmin => 1,
            Self::ReservationsWrite => 2,
            Self::ReservationsRead => 4,
            Self::AvailabilityRead => 8,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: for a customer, its customer id.
    pub subject: String,
    scopes: u8,
}

impl Principal {
    /// A principal with `scopes` (for tests and internal callers).
    #[must_use]
    pub fn new(subject: impl Into<String>, scopes: &[Scope]) -> Self {
        Self { subject: subject.into(), scopes: scopes.iter().fold(0, |bits, s| bits | s.bit()) }
    }

    /// Whether the token grants `scope`.
    #[must_use]
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes & scope.bit() != 0
    }

    /// Whether it may act for any customer (it holds `resources:admin`).
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.has(Scope::ResourcesAdmin)
    }

    /// Whether it may act for (hold, confirm, cancel, read the reservations of) `customer`:
    /// a customer only for itself, an administrator for anyone.
    #[must_use]
    pub fn acts_for(&self, customer: &str) -> bool {
        self.is_admin() || self.subject == customer
    }

    /// `Ok` when the token grants `scope`.
    ///
    /// # Errors
    /// [`AuthError::Forbidden`] naming the missing scope.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.has(scope) { Ok(()) } else { Err(AuthError::Forbidden { scope }) }
    }
}

/// Why a request is not let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header: send a token (401).
    #[error("a bearer token is required")]
    Missing,
    /// The token is not valid (bad form, signature, issuer, audience, time or key): get a new
    /// one (401). The reason is for the client; it never contains key material.
    #[error("the bearer token is not valid: {0}")]
    Invalid(String),
    /// The token is valid but lacks a scope: use a token that grants it (403).
    #[error("the token does not grant {scope}")]
    Forbidden {
        /// The scope needed.
        scope: Scope,
    },
    /// The signing keys could not be read (the JWKS URL is down): retry later (503).
    #[error("the token keys are unavailable")]
    KeysUnavailable,
    /// The client made more requests than its rate allows: retry after `retry_after`
    /// seconds (429).
    #[error("too many requests from this client; retry in {retry_after} s")]
    RateLimited {
        /// Seconds until a request is allowed again.
        retry_after: u32,
        /// The client's burst (the `limit` of the `RateLimit` header).
        limit: u32,
    },
}

impl AuthError {
    /// The `WWW-Authenticate` challenge (RFC 6750) to answer this refusal with.
    #[must_use]
    pub fn challenge(&self) -> Option<String> {
        match self {
            Self::Missing => Some(r#"Bearer realm="holdfast""#.to_owned()),
            Self::Invalid(_) => Some(r#"Bearer realm="holdfast", error="invalid_token""#.to_owned()),
            Self::Forbidden { scope } => {
                Some(format!(r#"Bearer realm="holdfast", error="insufficient_scope", scope="{scope}""#))
            }
            Self::KeysUnavailable | Self::RateLimited { .. } => None,
        }
    }

    /// Seconds to wait before trying again, for the refusals that pass (`Retry-After`).
    #[must_use]
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::KeysUnavailable => Some(5),
            Self::Missing | Self::Invalid(_) | Self::Forbidden { .. } => None,
        }
    }

    /// The `RateLimit` header (IETF draft) to answer a [`Self::RateLimited`] refusal with.
    #[must_use]
    pub fn rate_limit(&self) -> Option<String> {
        match self {
            Self::RateLimited { retry_after, limit } => {
                Some(format!("limit={limit}, remaining=0, reset={retry_after}"))
            }
            _ => None,
        }
    }
}

/// The claims Holdfast reads.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: String,
}

/// The algorithms tokens may be signed with.
const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::HS256];

/// Checks bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    keys: Arc<Keys>,
    issuer: String,
    audience: String,
    /// The checks of a token signed with each of [`ALGORITHMS`], built once.
    validations: Arc<[Validation; 3]>,
    limiter: Option<Arc<rate::RateLimiter>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Reads the keys `args` name.
    ///
    /// # Errors
    /// When no key source is configured, or a source cannot be read or holds no usable key.
    pub async fn new(args: &AuthArgs) -> Result<Self, KeyError> {
        let keys =
            Keys::load(args.jwks.clone(), args.hs256_secret_file.as_deref(), args.hs256_secret.as_ref())
                .await?;
        Ok(Self::with_keys(keys, &args.issuer, &args.audience)
            .with_rate_limit(args.rate_limit, args.rate_burst))
    }

    /// An authenticator of HS256 tokens signed with `secret` only (local development and
    /// tests), for `issuer` and `audience`.
    ///
    /// # Errors
    /// When the secret is shorter than 32 bytes.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, KeyError> {
        Ok(Self::with_keys(Keys::hs256(secret, "the given secret")?, issuer, audience))
    }

    fn with_keys(keys: Keys, issuer: &str, audience: &str) -> Self {
        let validation = |alg| {
            let mut validation = Validation::new(alg);
            validation.leeway = LEEWAY_SECONDS;
            validation.validate_nbf = true;
            validation.set_issuer(&[issuer]);
            validation.set_audience(&[audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation
        };
        Self {
            keys: Arc::new(keys),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            validations: Arc::new(ALGORITHMS.map(validation)),
            limiter: None,
        }
    }

    /// The same, with clients limited to `per_second` requests beyond a burst of `burst`
    /// (no limit when `per_second` is 0).
    #[must_use]
    pub fn with_rate_limit(mut self, per_second: u32, burst: u32) -> Self {
        self.limiter = rate::RateLimiter::new(per_second, burst).map(Arc::new);
        self
    }

    /// The principal of a request whose `Authorization` header is `authorization`.
    ///
    /// # Errors
    /// See [`AuthError`]; never [`AuthError::Forbidden`].
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Principal, AuthError> {
        let token = bearer(authorization.ok_or(AuthError::Missing)?)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Invalid(format!("malformed token: {e}")))?;
        let Some(at) = ALGORITHMS.iter().position(|alg| *alg == header.alg) else {
            return Err(AuthError::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
        };
        let key = self.keys.find(header.alg, header.kid.as_deref()).await?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validations[at])
            .map_err(|e| AuthError::Invalid(e.to_string()))?
            .claims;
        if claims.sub.is_empty() {
            return Err(AuthError::Invalid("empty sub".into()));
        }
        // Unknown scopes are ignored.
        let scopes =
            claims.scope.split_ascii_whitespace().filter_map(Scope::parse).fold(0, |bits, s| bits | s.bit());
        Ok(Principal { subject: claims.sub, scopes })
    }

    /// The principal of a request with `headers`, if its token grants one of `any_of` and its
    /// client is within its rate.
    ///
    /// # Errors
    /// See [`AuthError`]; [`AuthError::Forbidden`] names the first of `any_of`.
    pub async fn admit(
        &self,
        headers: &axum::http::HeaderMap,
        any_of: &[Scope],
    ) -> Result<Principal, AuthError> {
        let authorization = headers.get(axum::http::header::AUTHORIZATION).map(|v| v.as_bytes());
        let principal = self.authenticate(authorization).await?;
        if let Some(&scope) = any_of.first()
            && !any_of.iter().any(|s| principal.has(*s))
        {
            return Err(AuthError::Forbidden { scope });
        }
        if let Some(limiter) = &self.limiter {
            let decision = limiter.check(&principal, std::time::Instant::now());
            if !decision.allowed {
                return Err(AuthError::RateLimited {
                    retry_after: decision.reset_seconds,
                    limit: decision.limit,
                });
            }
        }
        Ok(principal)
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer(value: &[u8]) -> Result<&str, AuthError> {
    let value = std::str::from_utf8(value).map_err(|_| AuthError::Invalid("not ASCII".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim())
        }
        _ => Err(AuthError::Missing),
    }
}

/// Documents bearer authentication in an OpenAPI document: the `bearer` (JWT) security
/// scheme, each operation's accepted scopes as given by `needed(method, path)` (any one of
/// them will do), and its 401, 403 and 429 answers (problem+json with the `Problem` schema).
pub fn document(
    document: &mut utoipa::openapi::OpenApi,
    needed: impl Fn(&axum::http::Method, &str) -> &'static [Scope],
) {
    use axum::http::Method;
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.bearer_format = Some("JWT".into());
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme("bearer", SecurityScheme::Http(bearer));
    let problem = |description: &str| {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content("application/problem+json", content)
                .build(),
        )
    };
    for (path, item) in &mut document.paths.paths {
        let operations = [
            (Method::GET, &mut item.get),
            (Method::POST, &mut item.post),
            (Method::PUT, &mut item.put),
            (Method::DELETE, &mut item.delete),
            (Method::PATCH, &mut item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let scopes = needed(&method, path);
            operation.security =
                Some(vec![SecurityRequirement::new("bearer", scopes.iter().map(|s| s.as_str()))]);
            let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
            let responses = &mut operation.responses.responses;
            responses.entry("401".into()).or_insert_with(|| problem("`unauthorized`: no valid bearer token"));
            responses.entry("403".into()).or_insert_with(|| {
                problem(&format!("`forbidden`: the token grants none of {}", names.join(", ")))
            });
            responses.entry("429".into()).or_insert_with(|| {
                problem(
                    "`rate-limited`: too many requests from this client; see `Retry-After` and `RateLimit`",
                )
            });
        }
    }
}

/// [`mint_hs256`] for the default issuer and audience ([`LOCAL_ISSUER`], [`LOCAL_AUDIENCE`]):
/// what local services, the load generator and tests accept.
///
/// # Errors
/// When `secret` is not a usable HS256 key.
pub fn mint_local(
    secret: &[u8],
    subject: &str,
    scopes: &[Scope],
    ttl: std::time::Duration,
) -> Result<String, MintError> {
    mint_hs256(secret, LOCAL_ISSUER, LOCAL_AUDIENCE, subject, scopes, ttl)
}

/// A token signed with the shared HS256 `secret`, for local development, the load generator
/// and tests: `sub` = `subject`, the given scopes, valid for `ttl` from now.
///
/// # Errors
/// When `secret` is not a usable HS256 key.
pub fn mint_hs256(
    secret: &[u8],
    issuer: &str,
    audience: &str,
    subject: &str,
    scopes: &[Scope],
    ttl: std::time::Duration,
) -> Result<String, MintError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let scope: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let claims = serde_json::json!({
        "sub": subject,
        "scope": scope.join(" "),
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now.saturating_add(ttl),
    });
    let key = jsonwebtoken::EncodingKey::from_secret(secret)?;
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), &claims, &key)
}

#[cfg(test)]
mod tests;
