mod keys;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use jsonwebtoken::EncodingKey;
use serde_json::json;

use self::keys::{EC_PRIVATE, EC_PUBLIC, ED_PRIVATE, ED_PUBLIC, ED_PUBLIC_X, RSA_PRIVATE, RSA_PUBLIC};
use super::*;
use crate::detect::testing::parts;

const SECRET: &[u8] = b"a test secret that is long enough for HS256";
/// `{"alg":"none"}`, claims `{"tenant":"acme","exp":4102444800}`, no signature.
const UNSIGNED: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ0ZW5hbnQiOiJhY21lIiwiZXhwIjo0MTAyNDQ0ODAwfQ.";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Valid for ten minutes, for tenant `acme`, plus `extra`.
fn claims(extra: Value) -> Value {
    let mut claims = json!({"tenant": "acme", "exp": now() + 600, "sub": "user_1"});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn sign(algorithm: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs256(claims: &Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), None, claims)
}

async fn resolve(resolver: &JwtClaim, token: &str) -> Result<Option<Identifier>, Rejection> {
    resolver.resolve(&parts(Request::get("/").header("authorization", format!("Bearer {token}")))).await
}

fn reason(result: Result<Option<Identifier>, Rejection>) -> String {
    match result {
        Err(Rejection::InvalidToken(reason)) => reason,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

fn acme() -> Option<Identifier> {
    Some(Identifier::Slug("acme".into()))
}

#[tokio::test]
async fn a_valid_token_names_its_tenant_by_slug_or_id() {
    let resolver = JwtClaim::new().key(JwtKey::hs256(SECRET));
    assert_eq!(resolve(&resolver, &hs256(&claims(json!({})))).await.unwrap(), acme());
    let id = carcosa_core::TenantId::generate().to_string();
    let by_id = hs256(&claims(json!({"tenant": id})));
    assert_eq!(resolve(&resolver, &by_id).await.unwrap(), Some(Identifier::Id(id)));
    let nested = JwtClaim::new().key(JwtKey::hs256(SECRET)).claim("/org/slug");
    let token = hs256(&claims(json!({"org": {"slug": "globex"}})));
    assert_eq!(resolve(&nested, &token).await.unwrap(), Some(Identifier::Slug("globex".into())));
}

#[tokio::test]
async fn every_pinned_algorithm_verifies() {
    let cases = [
        (
            JwtKey::rs256_pem(RSA_PUBLIC).unwrap(),
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        ),
        (
            JwtKey::es256_pem(EC_PUBLIC).unwrap(),
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        ),
        (
            JwtKey::eddsa_pem(ED_PUBLIC).unwrap(),
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
        ),
    ];
    for (key, algorithm, signing) in cases {
        let resolver = JwtClaim::new().key(key);
        let token = sign(algorithm, &signing, None, &claims(json!({})));
        assert_eq!(resolve(&resolver, &token).await.unwrap(), acme(), "{algorithm:?}");
    }
}

#[tokio::test]
async fn no_bearer_token_names_no_tenant() {
    let resolver = JwtClaim::new().key(JwtKey::hs256(SECRET));
    assert_eq!(resolver.resolve(&parts(Request::get("/"))).await.unwrap(), None);
    let basic = parts(Request::get("/").header("authorization", "Basic dXNlcjpwYXNz"));
    assert_eq!(resolver.resolve(&basic).await.unwrap(), None);
    let without_claim = hs256(&json!({"exp": now() + 600}));
    assert_eq!(resolve(&resolver, &without_claim).await.unwrap(), None);
    let lower =
        parts(Request::get("/").header("authorization", format!("bearer {}", hs256(&claims(json!({}))))));
    assert_eq!(resolver.resolve(&lower).await.unwrap(), acme());
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused() {
    let resolver = JwtClaim::new().key(JwtKey::hs256(SECRET));
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another secret, also long enough!!"),
        None,
        &claims(json!({})),
    );
    assert!(reason(resolve(&resolver, &forged).await).contains("signature"));

    // A genuine EdDSA signature over other claims: the payload was swapped.
    let ed = JwtClaim::new().key(JwtKey::eddsa_pem(ED_PUBLIC).unwrap());
    let signing = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    let token = sign(Algorithm::EdDSA, &signing, None, &claims(json!({})));
    let other = hs256(&claims(json!({"tenant": "globex"})));
    let mut pieces: Vec<&str> = token.split('.').collect();
    pieces[1] = other.split('.').nth(1).unwrap();
    assert!(reason(resolve(&ed, &pieces.join(".")).await).contains("signature"));
}

#[tokio::test]
async fn the_algorithm_is_pinned_by_the_key() {
    let resolver = JwtClaim::new().key(JwtKey::rs256_pem(RSA_PUBLIC).unwrap());
    // Algorithm confusion: HS256 "signed" with the RSA public key as the HMAC secret.
    let confused =
        sign(Algorithm::HS256, &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()), None, &claims(json!({})));
    assert!(reason(resolve(&resolver, &confused).await).contains("no key accepts HS256"));
    // `alg: none` is not even an algorithm.
    assert!(reason(resolve(&resolver, UNSIGNED).await).contains("algorithm"));
    let hs = JwtClaim::new().key(JwtKey::hs256(SECRET));
    assert!(reason(resolve(&hs, UNSIGNED).await).contains("algorithm"));
}

#[tokio::test]
async fn time_claims_are_checked_with_a_leeway() {
    let resolver = JwtClaim::new().key(JwtKey::hs256(SECRET)).leeway(Duration::from_secs(30));
    let expired = hs256(&claims(json!({"exp": now() - 120})));
    assert_eq!(reason(resolve(&resolver, &expired).await), "the token has expired");
    let just_expired = hs256(&claims(json!({"exp": now() - 10})));
    assert_eq!(resolve(&resolver, &just_expired).await.unwrap(), acme());
    let early = hs256(&claims(json!({"nbf": now() + 300})));
    assert_eq!(reason(resolve(&resolver, &early).await), "the token is not valid yet");
    let almost = hs256(&claims(json!({"nbf": now() + 10})));
    assert_eq!(resolve(&resolver, &almost).await.unwrap(), acme());
    let no_exp = hs256(&json!({"tenant": "acme"}));
    assert_eq!(reason(resolve(&resolver, &no_exp).await), "the token has no `exp` claim");
}

#[tokio::test]
async fn audience_and_issuer_are_checked_when_configured() {
    let resolver =
        JwtClaim::new().key(JwtKey::hs256(SECRET)).audience("my-app").issuer("https://auth.example/");
    let good = hs256(&claims(json!({"aud": "my-app", "iss": "https://auth.example/"})));
    assert_eq!(resolve(&resolver, &good).await.unwrap(), acme());
    let wrong_aud = hs256(&claims(json!({"aud": "other-app", "iss": "https://auth.example/"})));
    assert_eq!(reason(resolve(&resolver, &wrong_aud).await), "the token is meant for another audience");
    let wrong_iss = hs256(&claims(json!({"aud": "my-app", "iss": "https://evil.example/"})));
    assert_eq!(reason(resolve(&resolver, &wrong_iss).await), "the token comes from another issuer");
    // An audience in the token that the app did not configure is refused too.
    let unconfigured = JwtClaim::new().key(JwtKey::hs256(SECRET));
    assert!(resolve(&unconfigured, &good).await.is_err());
}

#[tokio::test]
async fn kids_pick_the_key() {
    let resolver = JwtClaim::new()
        .key(JwtKey::hs256(b"first secret, long enough for the test").with_kid("k1"))
        .key(JwtKey::hs256(SECRET).with_kid("k2"));
    let token = sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), Some("k2"), &claims(json!({})));
    assert_eq!(resolve(&resolver, &token).await.unwrap(), acme());
    let unknown = sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), Some("k3"), &claims(json!({})));
    assert!(reason(resolve(&resolver, &unknown).await).contains("kid `k3`"));
}

/// Serves `set` as a JWKS on 127.0.0.1, counting fetches; `None` answers 500.
async fn jwks_server(set: Option<Value>) -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let app = Router::new().route(
        "/jwks.json",
        get(move || {
            let set = set.clone();
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                match set {
                    Some(set) => axum::Json(set).into_response(),
                    None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/jwks.json"), fetches)
}

fn ed_jwks() -> Value {
    json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": ED_PUBLIC_X, "kid": "ed1", "use": "sig", "alg": "EdDSA"},
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "weird", "kid": "unknown-type"}
    ]})
}

#[tokio::test]
async fn keys_come_from_a_jwks_url_and_are_kept() {
    let (url, fetches) = jwks_server(Some(ed_jwks())).await;
    let resolver = JwtClaim::new().jwks(Jwks::new(&url).unwrap().cooldown(Duration::ZERO));
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    let token = sign(Algorithm::EdDSA, &ed, Some("ed1"), &claims(json!({})));
    assert_eq!(resolve(&resolver, &token).await.unwrap(), acme());
    assert_eq!(resolve(&resolver, &token).await.unwrap(), acme());
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "kept for the refresh interval");

    // A kid the set lacks: fetched again once (the key may have rotated), then refused.
    let rotated = sign(Algorithm::EdDSA, &ed, Some("ed2"), &claims(json!({})));
    assert!(resolve(&resolver, &rotated).await.is_err());
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // Symmetric keys published in a JWKS are never used.
    let hmac = sign(Algorithm::HS256, &EncodingKey::from_secret(b"secret"), Some("hmac"), &claims(json!({})));
    assert!(reason(resolve(&resolver, &hmac).await).contains("no key accepts HS256"));
}

#[tokio::test]
async fn unknown_kids_do_not_refetch_within_the_cooldown() {
    let (url, fetches) = jwks_server(Some(ed_jwks())).await;
    let resolver = JwtClaim::new().jwks(Jwks::new(&url).unwrap());
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    for kid in ["x1", "x2", "x3", "ed1"] {
        let _ = resolve(&resolver, &sign(Algorithm::EdDSA, &ed, Some(kid), &claims(json!({})))).await;
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_jwks_without_keys_is_unavailable() {
    let (url, fetches) = jwks_server(None).await;
    let resolver = JwtClaim::new().jwks(Jwks::new(&url).unwrap());
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    let token = sign(Algorithm::EdDSA, &ed, Some("ed1"), &claims(json!({})));
    let err = resolve(&resolver, &token).await.unwrap_err();
    assert_eq!(err.code(), "tenant_lookup_unavailable");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn configured_keys_work_while_the_jwks_is_down() {
    let (url, fetches) = jwks_server(None).await;
    let resolver = JwtClaim::new().key(JwtKey::hs256(SECRET)).jwks(Jwks::new(&url).unwrap());
    assert_eq!(resolve(&resolver, &hs256(&claims(json!({})))).await.unwrap(), acme());
    assert_eq!(fetches.load(Ordering::SeqCst), 0);
}
