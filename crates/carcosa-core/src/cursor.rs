//! Cursors: where a listing or a feed reader stands.
//!
//! * [`EventCursor`] is a position in a project's changes feed: the `seq` of the last event the
//!   reader has, as decimal text (`"0"` is "before the first event"). It is transparent on
//!   purpose: apps store it next to their data and compare it with an event's `seq`.
//! * [`PageCursor`] continues a keyset-paginated tenant listing, and [`AuditCursor`] a listing of
//!   the audit log (newest first). They are opaque (URL-safe base64 of a versioned payload) so the
//!   server can change what they hold without breaking clients.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{AuditId, TenantId};

/// A cursor the server did not issue (or has been tampered with).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid cursor")]
pub struct InvalidCursor(pub String);

fn invalid(value: &str) -> InvalidCursor {
    InvalidCursor(value.chars().take(80).collect())
}

/// A position in the changes feed: everything up to and including `seq` has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventCursor(i64);

impl EventCursor {
    /// The position before the first event.
    pub const START: Self = Self(0);

    /// The cursor after the event numbered `seq` (which must not be negative).
    #[must_use]
    pub fn after_seq(seq: i64) -> Self {
        Self(seq.max(0))
    }

    /// The `seq` of the last event read (0 for none).
    #[must_use]
    pub fn seq(self) -> i64 {
        self.0
    }

    /// Parses the decimal text a server issued.
    pub fn parse(value: &str) -> Result<Self, InvalidCursor> {
        let trimmed = value.trim();
        if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(value));
        }
        trimmed.parse::<i64>().map(Self).map_err(|_| invalid(value))
    }
}

impl fmt::Display for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for EventCursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventCursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Where the next page of a tenant listing starts: after the tenant with this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    /// The last tenant of the previous page.
    pub after: TenantId,
}

const PAGE_CURSOR_VERSION: &str = "t1:";

impl PageCursor {
    /// The opaque text form.
    #[must_use]
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{PAGE_CURSOR_VERSION}{}", self.after))
    }

    /// Reads a cursor produced by [`PageCursor::encode`].
    pub fn decode(value: &str) -> Result<Self, InvalidCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(value.trim()).map_err(|_| invalid(value))?;
        let text = String::from_utf8(bytes).map_err(|_| invalid(value))?;
        let id = text.strip_prefix(PAGE_CURSOR_VERSION).ok_or_else(|| invalid(value))?;
        let after = TenantId::parse(id).map_err(|_| invalid(value))?;
        Ok(Self { after })
    }
}

/// Where the next page of an audit-log listing (newest first) starts: before the entry with
/// this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    /// The last (oldest) entry of the previous page.
    pub before: AuditId,
}

const AUDIT_CURSOR_VERSION: &str = "a1:";

impl AuditCursor {
    /// The opaque text form.
    #[must_use]
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{AUDIT_CURSOR_VERSION}{}", self.before))
    }

    /// Reads a cursor produced by [`AuditCursor::encode`].
    pub fn decode(value: &str) -> Result<Self, InvalidCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(value.trim()).map_err(|_| invalid(value))?;
        let text = String::from_utf8(bytes).map_err(|_| invalid(value))?;
        let id = text.strip_prefix(AUDIT_CURSOR_VERSION).ok_or_else(|| invalid(value))?;
        let before = AuditId::parse(id).map_err(|_| invalid(value))?;
        Ok(Self { before })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_cursors_are_decimal_seqs() {
        assert_eq!(EventCursor::parse("0").unwrap(), EventCursor::START);
        assert_eq!(EventCursor::parse("42").unwrap().seq(), 42);
        assert_eq!(EventCursor::after_seq(42).to_string(), "42");
        assert_eq!(EventCursor::after_seq(-5), EventCursor::START);
    }

    #[test]
    fn malformed_event_cursors_are_rejected() {
        for bad in ["", "-1", "abc", "1.5", "99999999999999999999999", "+3", "0x10"] {
            assert!(EventCursor::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn page_cursors_round_trip() {
        let cursor = PageCursor { after: TenantId::generate() };
        let text = cursor.encode();
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(PageCursor::decode(&text).unwrap(), cursor);
    }

    #[test]
    fn tampered_page_cursors_are_rejected() {
        let id = TenantId::generate();
        let wrong_version = URL_SAFE_NO_PAD.encode(format!("t0:{id}"));
        let not_an_id = URL_SAFE_NO_PAD.encode("t1:ten_nope");
        for bad in ["", "!!!", "dDE6", wrong_version.as_str(), not_an_id.as_str()] {
            assert!(PageCursor::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn audit_cursors_round_trip_and_are_not_page_cursors() {
        let cursor = AuditCursor { before: AuditId::generate() };
        let text = cursor.encode();
        assert_eq!(AuditCursor::decode(&text).unwrap(), cursor);
        assert!(PageCursor::decode(&text).is_err());
        let page = PageCursor { after: TenantId::generate() }.encode();
        assert!(AuditCursor::decode(&page).is_err());
        assert!(AuditCursor::decode("").is_err());
    }
}
