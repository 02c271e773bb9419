//! [`JwtClaim`]: the tenant is a claim of the verified bearer token.
//!
//! Verification uses the `jsonwebtoken` crate. Each key carries its algorithm, and a token is only
//! checked against keys of the algorithm its header names, so `alg: none` and algorithm
//! confusion (an HS256 token "signed" with an RSA public key) fail. `exp` is required and `nbf`
//! checked (with a small leeway); `iss` and `aud` when configured — and a token that names an
//! audience is refused unless you configure yours. Keys come from the configuration or from a
//! JWKS URL ([`Jwks`]), fetched with reqwest and kept for a refresh interval.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{Identifier, Rejection, Resolver};

/// A key that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the JWT key: {0}")]
pub struct InvalidKey(String);

/// A verification key, pinned to one algorithm.
#[derive(Clone)]
pub struct JwtKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

impl JwtKey {
    /// An HS256 shared secret.
    #[must_use]
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self { kid: None, algorithm: Algorithm::HS256, key: DecodingKey::from_secret(secret.as_ref()) }
    }

    /// An RS256 public key (PEM: `BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
    pub fn rs256_pem(pem: impl AsRef<[u8]>) -> Result<Self, InvalidKey> {
        Self::pem(Algorithm::RS256, DecodingKey::from_rsa_pem(pem.as_ref()))
    }

    /// An ES256 (P-256) public key (PEM).
    pub fn es256_pem(pem: impl AsRef<[u8]>) -> Result<Self, InvalidKey> {
        Self::pem(Algorithm::ES256, DecodingKey::from_ec_pem(pem.as_ref()))
    }

    /// An EdDSA (Ed25519) public key (PEM).
    pub fn eddsa_pem(pem: impl AsRef<[u8]>) -> Result<Self, InvalidKey> {
        Self::pem(Algorithm::EdDSA, DecodingKey::from_ed_pem(pem.as_ref()))
    }

    fn pem(algorithm: Algorithm, key: jsonwebtoken::errors::Result<DecodingKey>) -> Result<Self, InvalidKey> {
        let key = key.map_err(|err| InvalidKey(err.to_string()))?;
        Ok(Self { kid: None, algorithm, key })
    }

    /// Only tokens whose header names this `kid` (or none) are checked against the key.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// A public key from a JWKS entry; `None` for symmetric, encryption-only or unsupported
    /// keys. Without an `alg`, RSA keys are taken as RS256, P-256 as ES256, Ed25519 as EdDSA.
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return None;
        }
        let inferred = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
            _ => return None,
        };
        let algorithm = match jwk.common.key_algorithm {
            Some(alg) => Algorithm::from_str(&alg.to_string()).ok()?,
            None => inferred,
        };
        if algorithm.family() != inferred.family() {
            return None;
        }
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(Self { kid: jwk.common.key_id.clone(), algorithm, key })
    }

    fn accepts(&self, algorithm: Algorithm, kid: Option<&str>) -> bool {
        self.algorithm == algorithm && (kid.is_none() || self.kid.is_none() || self.kid.as_deref() == kid)
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct JwksState {
    keys: Option<Arc<[JwtKey]>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

struct JwksInner {
    url: reqwest::Url,
    client: reqwest::Client,
    refresh: Duration,
    cooldown: Duration,
    state: RwLock<JwksState>,
    fetching: tokio::sync::Mutex<()>,
}

/// Keys published at a JWKS URL. Fetched on first use, again after the refresh interval
/// (default 10 minutes), and early when a token names a `kid` the set lacks — but never more
/// often than the cooldown (default 30 s), so forged `kid`s cannot make the app hammer the
/// issuer. When a refresh fails, the keys already held are kept. Cheap to clone.
#[derive(Clone)]
pub struct Jwks(Arc<JwksInner>);

impl Jwks {
    /// Keys from `url`.
    pub fn new(url: &str) -> Result<Self, InvalidKey> {
        let url =
            reqwest::Url::parse(url).map_err(|err| InvalidKey(format!("`{url}` is not a URL: {err}")))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| InvalidKey(err.to_string()))?;
        Ok(Self(Arc::new(JwksInner {
            url,
            client,
            refresh: Duration::from_secs(600),
            cooldown: Duration::from_secs(30),
            state: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        })))
    }

    fn inner(&mut self) -> &mut JwksInner {
        Arc::get_mut(&mut self.0).expect("configure a Jwks before cloning it")
    }

    /// How long fetched keys are used before they are fetched again.
    ///
    /// # Panics
    ///
    /// If this `Jwks` was already cloned.
    #[must_use]
    pub fn refresh_every(mut self, interval: Duration) -> Self {
        self.inner().refresh = interval;
        self
    }

    /// The shortest time between two fetches.
    ///
    /// # Panics
    ///
    /// If this `Jwks` was already cloned.
    #[must_use]
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.inner().cooldown = cooldown;
        self
    }

    /// The keys to check a token against, fetched if they are stale or lack `kid`.
    async fn keys(&self, kid: Option<&str>) -> Result<Arc<[JwtKey]>, Rejection> {
        let inner = &self.0;
        let needs_fetch = |state: &JwksState| {
            let stale = state.fetched_at.is_none_or(|at| at.elapsed() >= inner.refresh);
            let lacks_kid = kid.is_some_and(|kid| {
                state.keys.as_ref().is_some_and(|keys| !keys.iter().any(|k| k.kid.as_deref() == Some(kid)))
            });
            let cooled = state.attempted_at.is_none_or(|at| at.elapsed() >= inner.cooldown);
            (stale || lacks_kid) && cooled
        };
        let read = |inner: &JwksInner| {
            let state = inner.state.read().unwrap_or_else(|e| e.into_inner());
            (needs_fetch(&state), state.keys.clone())
        };
        if let (false, Some(keys)) = read(inner) {
            return Ok(keys);
        }
        let _one_fetch_at_a_time = inner.fetching.lock().await;
        let (fetch, held) = read(inner);
        if fetch {
            inner.state.write().unwrap_or_else(|e| e.into_inner()).attempted_at = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    let keys: Arc<[JwtKey]> = keys.into();
                    let mut state = inner.state.write().unwrap_or_else(|e| e.into_inner());
                    state.keys = Some(keys.clone());
                    state.fetched_at = Some(Instant::now());
                    return Ok(keys);
                }
                Err(err) => {
                    tracing::warn!(url = %inner.url, error = %err, "cannot fetch the JWKS; keeping the keys held")
                }
            }
        }
        held.ok_or_else(|| Rejection::Unavailable(format!("no keys from the JWKS at {}", inner.url)))
    }

    async fn fetch(&self) -> Result<Vec<JwtKey>, reqwest::Error> {
        let set: Value =
            self.0.client.get(self.0.url.clone()).send().await?.error_for_status()?.json().await?;
        let entries = set.get("keys").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(entries
            .into_iter()
            .filter_map(|entry| serde_json::from_value::<Jwk>(entry).ok())
            .filter_map(|jwk| JwtKey::from_jwk(&jwk))
            .collect())
    }
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.0.url.as_str())
            .field("refresh", &self.0.refresh)
            .finish_non_exhaustive()
    }
}

/// The tenant is a claim (default `tenant`) of the `Authorization: Bearer` token, a slug or an id.
///
/// No bearer token, or a valid token without the claim, names no tenant. A token that is sent but
/// does not verify ends detection with 401 `tenant_token_invalid`; if the JWKS cannot be
/// fetched and no keys are held, 503 `tenant_lookup_unavailable`.
///
/// ```
/// use std::time::Duration;
/// use carcosa::detect::{JwtClaim, JwtKey, Jwks};
///
/// # fn demo() -> Result<(), carcosa::detect::InvalidKey> {
/// let claim = JwtClaim::new()
///     .jwks(Jwks::new("https://auth.example.com/.well-known/jwks.json")?)
///     .key(JwtKey::hs256(b"a shared secret of at least 32 bytes!!"))
///     .issuer("https://auth.example.com/")
///     .audience("my-app")
///     .claim("org")
///     .leeway(Duration::from_secs(10));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct JwtClaim {
    keys: Vec<JwtKey>,
    jwks: Option<Jwks>,
    claim: String,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
}

impl Default for JwtClaim {
    fn default() -> Self {
        Self::new()
    }
}

impl JwtClaim {
    /// No keys yet, claim `tenant`, leeway 30 s.
    #[must_use]
    pub fn new() -> Self {
        Self {
            keys: Vec::new(),
            jwks: None,
            claim: "tenant".into(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Duration::from_secs(30),
        }
    }

    /// Adds a key.
    #[must_use]
    pub fn key(mut self, key: JwtKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Also uses the keys of a JWKS URL.
    #[must_use]
    pub fn jwks(mut self, jwks: Jwks) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// The claim naming the tenant; a name starting with `/` is a JSON pointer into the claims
    /// (`/org/slug`).
    #[must_use]
    pub fn claim(mut self, claim: impl Into<String>) -> Self {
        self.claim = claim.into();
        self
    }

    /// Accepts tokens from this issuer (`iss`); may be called more than once.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens for this audience (`aud`); may be called more than once.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The clock skew allowed on `exp` and `nbf` (default 30 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        if !self.issuers.is_empty() {
            validation.set_issuer(&self.issuers);
        }
        if !self.audiences.is_empty() {
            validation.set_audience(&self.audiences);
        }
        validation
    }

    /// The verified claims of `token`: configured keys first, then the JWKS (so a JWKS outage
    /// does not stop tokens a configured key verifies).
    async fn verify(&self, token: &str) -> Result<Map<String, Value>, Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            Rejection::InvalidToken("the token is malformed or its algorithm is not supported".into())
        })?;
        let kid = header.kid.as_deref();
        let shown_kid = kid.map(|kid| format!(" with kid `{}`", kid.chars().take(40).collect::<String>()));
        let mut refusal = Rejection::InvalidToken(format!(
            "no key accepts {:?} tokens{}",
            header.alg,
            shown_kid.unwrap_or_default()
        ));
        if let Some(claims) = self.try_keys(token, &self.keys, header.alg, kid, &mut refusal)? {
            return Ok(claims);
        }
        if let Some(jwks) = &self.jwks {
            let fetched = jwks.keys(kid).await?;
            if let Some(claims) = self.try_keys(token, &fetched, header.alg, kid, &mut refusal)? {
                return Ok(claims);
            }
        }
        Err(refusal)
    }

    /// Tries each key that accepts the token's algorithm and kid. A bad signature moves on to
    /// the next key (recorded in `refusal`); any other failure (expired, wrong audience…) means
    /// the signature was good and ends the search.
    fn try_keys(
        &self,
        token: &str,
        keys: &[JwtKey],
        algorithm: Algorithm,
        kid: Option<&str>,
        refusal: &mut Rejection,
    ) -> Result<Option<Map<String, Value>>, Rejection> {
        for key in keys.iter().filter(|key| key.accepts(algorithm, kid)) {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &self.validation(key.algorithm))
            {
                Ok(data) => return Ok(Some(data.claims)),
                Err(err) if matches!(err.kind(), ErrorKind::InvalidSignature) => {
                    *refusal = invalid(err.kind())
                }
                Err(err) => return Err(invalid(err.kind())),
            }
        }
        Ok(None)
    }
}

/// What is wrong with a token, in words fit for its sender.
fn invalid(kind: &ErrorKind) -> Rejection {
    let reason = match kind {
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet".to_owned(),
        ErrorKind::InvalidAudience => "the token is meant for another audience".to_owned(),
        ErrorKind::InvalidIssuer => "the token comes from another issuer".to_owned(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
        ErrorKind::InvalidAlgorithm => "the token's algorithm is not allowed".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        _ => "the token is malformed".to_owned(),
    };
    Rejection::InvalidToken(reason)
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl Resolver for JwtClaim {
    fn resolve(&self, parts: &Parts) -> impl Future<Output = Result<Option<Identifier>, Rejection>> + Send {
        let token = bearer(parts);
        async move {
            let Some(token) = token else {
                return Ok(None);
            };
            let claims = self.verify(token).await?;
            let value = if self.claim.starts_with('/') {
                Value::Object(claims).pointer(&self.claim).cloned()
            } else {
                claims.get(&self.claim).cloned()
            };
            Ok(value.as_ref().and_then(Value::as_str).filter(|v| !v.is_empty()).map(Identifier::slug_or_id))
        }
    }
}

#[cfg(test)]
mod tests;
