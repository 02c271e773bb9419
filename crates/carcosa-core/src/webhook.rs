//! Standard Webhooks signing and verification (spec 1.0).
//!
//! A delivery carries three headers: `webhook-id` (the event id, the same on every retry),
//! `webhook-timestamp` (unix seconds of the attempt) and `webhook-signature`, a space-separated
//! list of `v1,<base64 HMAC-SHA256>` signatures of `"{id}.{timestamp}.{body}"`, one per active
//! secret. A secret reads `whsec_<base64 key>`; the HMAC key is the decoded bytes.
//!
//! The server signs with [`sign`]; receivers check with [`verify`], which accepts any of several
//! secrets (for rotation) and refuses timestamps outside a tolerance (replays).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";
/// How far a timestamp may be from now, by default, for [`verify`]: five minutes.
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

/// A signing secret. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

/// Text that is not a usable secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a webhook secret (expected whsec_ followed by base64 of 24 to 64 bytes)")]
pub struct InvalidSecret;

impl WebhookSecret {
    /// A new secret of 32 random bytes.
    #[must_use]
    pub fn generate() -> Self {
        let mut key = vec![0_u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self { key }
    }

    /// Reads `whsec_<base64>` (the prefix is optional, as in the reference libraries).
    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let encoded = text.trim().strip_prefix(SECRET_PREFIX).unwrap_or(text.trim());
        let key = STANDARD.decode(encoded).map_err(|_| InvalidSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(InvalidSecret);
        }
        Ok(Self { key })
    }

    /// Wraps raw key bytes (as stored, after decryption).
    pub fn from_bytes(key: Vec<u8>) -> Result<Self, InvalidSecret> {
        if !(24..=64).contains(&key.len()) {
            return Err(InvalidSecret);
        }
        Ok(Self { key })
    }

    /// The raw key bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.key
    }

    /// The `whsec_…` text, to hand to the endpoint's owner.
    #[must_use]
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// One `v1,<base64>` signature of a message.
#[must_use]
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.mac(id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The `webhook-signature` header value: one signature per secret, space-separated.
#[must_use]
pub fn signature_header(secrets: &[WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| sign(s, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Why a delivery was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `webhook-timestamp` is not a number.
    #[error("the webhook-timestamp header is not a unix timestamp")]
    BadTimestamp,
    /// The timestamp is too old or too far in the future.
    #[error("the webhook timestamp is outside the accepted tolerance")]
    TimestampOutOfTolerance,
    /// No signature matched any secret.
    #[error("no webhook signature matches")]
    NoMatchingSignature,
}

/// Checks a delivery: the timestamp within `tolerance_secs` of `now` (unix seconds), and at least
/// one `v1` signature in `signature_header` made by one of `secrets`. Comparison is constant-time.
pub fn verify(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if (now - ts).abs() > tolerance_secs {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    let candidates: Vec<Vec<u8>> = signature_header
        .split_whitespace()
        .filter_map(|sig| sig.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    for secret in secrets {
        for candidate in &candidates {
            if secret.mac(id, ts, body).verify_slice(candidate).is_ok() {
                return Ok(());
            }
        }
    }
    Err(VerifyError::NoMatchingSignature)
}

/// [`verify`] a delivery from its headers: `header(name)` returns a header's value (empty when
/// absent); the timestamp may be [`DEFAULT_TOLERANCE_SECS`] from `now`.
pub fn verify_delivery<'a>(
    secrets: &[WebhookSecret],
    header: impl Fn(&str) -> &'a str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    verify(
        secrets,
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        body,
        now,
        DEFAULT_TOLERANCE_SECS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vector of the Standard Webhooks libraries
    /// (`shared/fixtures/standard-webhooks-vector.json`).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const PAYLOAD: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signing_reproduces_the_reference_vector() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(sign(&secret, ID, TIMESTAMP, PAYLOAD.as_bytes()), SIGNATURE);
    }

    #[test]
    fn verification_accepts_the_reference_vector() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let ok = verify(&[secret], ID, "1614265330", SIGNATURE, PAYLOAD.as_bytes(), TIMESTAMP + 10, 300);
        assert_eq!(ok, Ok(()));
    }

    #[test]
    fn the_fixture_file_matches_these_constants() {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/standard-webhooks-vector.json");
        let Ok(text) = std::fs::read_to_string(path) else {
            // The fixture lives beside the repository in the project's workspace; a clone on
            // its own has only the constants above, which were copied from it.
            return;
        };
        let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(fixture["secret"], SECRET);
        assert_eq!(fixture["id"], ID);
        assert_eq!(fixture["timestamp"], TIMESTAMP);
        assert_eq!(fixture["payload"], PAYLOAD);
        assert_eq!(fixture["signature"], SIGNATURE);
    }

    #[test]
    fn tampering_and_stale_timestamps_are_refused() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let secrets = [secret];
        let tampered = verify(&secrets, ID, "1614265330", SIGNATURE, br#"{"test": 1}"#, TIMESTAMP, 300);
        assert_eq!(tampered, Err(VerifyError::NoMatchingSignature));
        let other_id =
            verify(&secrets, "msg_other", "1614265330", SIGNATURE, PAYLOAD.as_bytes(), TIMESTAMP, 300);
        assert_eq!(other_id, Err(VerifyError::NoMatchingSignature));
        let stale = verify(&secrets, ID, "1614265330", SIGNATURE, PAYLOAD.as_bytes(), TIMESTAMP + 301, 300);
        assert_eq!(stale, Err(VerifyError::TimestampOutOfTolerance));
        let future = verify(&secrets, ID, "1614265330", SIGNATURE, PAYLOAD.as_bytes(), TIMESTAMP - 301, 300);
        assert_eq!(future, Err(VerifyError::TimestampOutOfTolerance));
        let garbage = verify(&secrets, ID, "soon", SIGNATURE, PAYLOAD.as_bytes(), TIMESTAMP, 300);
        assert_eq!(garbage, Err(VerifyError::BadTimestamp));
    }

    #[test]
    fn any_of_several_signatures_and_secrets_may_match() {
        let old = WebhookSecret::generate();
        let new = WebhookSecret::generate();
        let header = signature_header(&[new.clone(), old.clone()], "evt_1", 100, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify(std::slice::from_ref(&old), "evt_1", "100", &header, b"{}", 100, 300).is_ok());
        assert!(verify(&[new], "evt_1", "100", &header, b"{}", 100, 300).is_ok());
        let only_old = sign(&old, "evt_1", 100, b"{}");
        let unrelated = WebhookSecret::generate();
        assert!(verify(&[unrelated], "evt_1", "100", &only_old, b"{}", 100, 300).is_err());
        // Unknown versions and junk entries are skipped, not fatal.
        let mixed = format!("v2,abc junk {only_old}");
        assert!(verify(&[old], "evt_1", "100", &mixed, b"{}", 100, 300).is_ok());
    }

    #[test]
    fn secrets_round_trip_and_stay_out_of_debug_output() {
        let secret = WebhookSecret::generate();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&text).unwrap(), secret);
        assert!(!format!("{secret:?}").contains(&text[6..]));
        assert!(WebhookSecret::parse("whsec_short").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
    }
}
