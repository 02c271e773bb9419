//! What a synced application reports about itself (`POST /v1/sync-status`), and what operators
//! read back (`GET /v1/sync-status`): each app's cursor, last success, last error, and lag.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::EventCursor;
use crate::tenant::{InvalidField, rfc3339, rfc3339_opt};

/// The longest instance name.
pub const MAX_INSTANCE_CHARS: usize = 100;
/// The longest error text kept.
pub const MAX_ERROR_CHARS: usize = 2000;

/// The body of `POST /v1/sync-status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SyncStatusIn {
    /// Names the reporting app instance: 1–100 of `A-Z a-z 0-9 . _ : -` (e.g. `billing@web-1`
    /// is refused; `billing.web-1` is fine).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._:-]+$")
    )]
    pub instance: String,
    /// The feed position the app has applied.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9]+$"))]
    pub cursor: EventCursor,
    /// When its last sync succeeded.
    #[serde(default, with = "rfc3339_opt")]
    pub last_success_at: Option<DateTime<Utc>>,
    /// Its last error, if the last sync failed (at most 2000 characters are kept).
    #[serde(default)]
    pub last_error: Option<String>,
    /// When that error happened.
    #[serde(default, with = "rfc3339_opt")]
    pub last_error_at: Option<DateTime<Utc>>,
}

impl SyncStatusIn {
    /// Checks the instance name and trims the error text to its bound.
    pub fn validate(mut self) -> Result<Self, InvalidField> {
        let name_ok = (1..=MAX_INSTANCE_CHARS).contains(&self.instance.chars().count())
            && self.instance.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
        if !name_ok {
            return Err(InvalidField(format!(
                "instance must be 1 to {MAX_INSTANCE_CHARS} of A-Z a-z 0-9 . _ : - (got {:?})",
                self.instance.chars().take(40).collect::<String>()
            )));
        }
        if let Some(error) = &mut self.last_error {
            *error = error.chars().filter(|c| *c != '\0').take(MAX_ERROR_CHARS).collect();
        }
        Ok(self)
    }
}

/// One app instance's sync state, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncStatusOut {
    /// The instance name.
    pub instance: String,
    /// The feed position it has applied.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cursor: EventCursor,
    /// How many events it is behind the feed's head.
    pub lag_events: i64,
    /// When its last sync succeeded.
    #[serde(with = "rfc3339_opt")]
    pub last_success_at: Option<DateTime<Utc>>,
    /// Its last error.
    pub last_error: Option<String>,
    /// When that error happened.
    #[serde(with = "rfc3339_opt")]
    pub last_error_at: Option<DateTime<Utc>>,
    /// When it last reported.
    #[serde(with = "rfc3339")]
    pub reported_at: DateTime<Utc>,
}

/// The answer of `GET /v1/sync-status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncStatusList {
    /// Every instance that reported, by name.
    pub data: Vec<SyncStatusOut>,
    /// The feed's newest position, which lags are measured from.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub head: EventCursor,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(instance: &str) -> SyncStatusIn {
        SyncStatusIn {
            instance: instance.into(),
            cursor: EventCursor::after_seq(3),
            last_success_at: None,
            last_error: Some("e".repeat(3000)),
            last_error_at: None,
        }
    }

    #[test]
    fn instance_names_are_checked_and_errors_bounded() {
        let ok = status("billing.web-1").validate().unwrap();
        assert_eq!(ok.last_error.unwrap().len(), MAX_ERROR_CHARS);
        for bad in ["", "billing@web-1", "a b", &"x".repeat(101)] {
            assert!(status(bad).validate().is_err(), "{bad:?}");
        }
    }
}
