//! Dashboard operators: their [`Email`], their [`Role`] in a project, and the one rule that says
//! which role may take which [`Action`] ([`allows`]).
//!
//! Every mutating thing an operator can do in a project is an [`Action`]; the dashboard asks
//! [`allows`] before doing any of them, on the server. Reading is allowed to every role.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The most characters a password may have (argon2 would take more, but nobody needs it).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// What an operator may do in a project. Ordered: `Viewer < Admin < Owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Manages tenants, API keys and webhooks.
    Admin,
    /// Everything, including operators and deleting the project.
    Owner,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Admin, Role::Owner];

    /// `viewer`, `admin` or `owner`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role (expected owner, admin or viewer)")]
pub struct InvalidRole(pub String);

impl FromStr for Role {
    type Err = InvalidRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Self::Viewer),
            "admin" => Ok(Self::Admin),
            "owner" => Ok(Self::Owner),
            _ => Err(InvalidRole(s.chars().take(40).collect())),
        }
    }
}

/// Every mutating action an operator can take in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create a tenant.
    TenantCreate,
    /// Change a tenant (name, slug, status, plan, metadata; suspend and activate).
    TenantUpdate,
    /// Delete a tenant.
    TenantDelete,
    /// Create an API key.
    KeyCreate,
    /// Revoke an API key.
    KeyRevoke,
    /// Create a webhook endpoint.
    WebhookCreate,
    /// Change a webhook endpoint (URL, filter, enable, disable).
    WebhookUpdate,
    /// Delete a webhook endpoint.
    WebhookDelete,
    /// Rotate a webhook endpoint's signing secret.
    WebhookRotate,
    /// Reveal a webhook endpoint's signing secret.
    WebhookRevealSecret,
    /// Send a test event to a webhook endpoint.
    WebhookTest,
    /// Send a delivery again.
    DeliveryResend,
    /// Queue an endpoint's failed deliveries again.
    DeliveryRecover,
    /// Add, change or remove operators' roles in the project.
    OperatorManage,
    /// Delete the project.
    ProjectDelete,
}

impl Action {
    /// Every action, for tables and tests.
    pub const ALL: [Action; 15] = [
        Action::TenantCreate,
        Action::TenantUpdate,
        Action::TenantDelete,
        Action::KeyCreate,
        Action::KeyRevoke,
        Action::WebhookCreate,
        Action::WebhookUpdate,
        Action::WebhookDelete,
        Action::WebhookRotate,
        Action::WebhookRevealSecret,
        Action::WebhookTest,
        Action::DeliveryResend,
        Action::DeliveryRecover,
        Action::OperatorManage,
        Action::ProjectDelete,
    ];
}

/// Whether `role` may take `action`: owners everything, admins everything but operators and
/// deleting the project, viewers nothing.
#[must_use]
pub fn allows(role: Role, action: Action) -> bool {
    match role {
        Role::Owner => true,
        Role::Admin => !matches!(action, Action::OperatorManage | Action::ProjectDelete),
        Role::Viewer => false,
    }
}

/// An operator's email address, trimmed and lower-cased: two addresses that differ only in case
/// are the same account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// Text that is not an email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an email address (expected name@host, at most 254 characters, no spaces)")]
pub struct InvalidEmail;

impl Email {
    /// Checks `value` (`name@host`, at most 254 characters, no spaces or control characters) and
    /// lower-cases it.
    pub fn parse(value: &str) -> Result<Self, InvalidEmail> {
        let value = value.trim();
        let ok = value.len() <= 254
            && !value.chars().any(|c| c.is_whitespace() || c.is_control())
            && value
                .split_once('@')
                .is_some_and(|(local, host)| !local.is_empty() && !host.is_empty() && !host.contains('@'));
        if ok { Ok(Self(value.to_lowercase())) } else { Err(InvalidEmail) }
    }

    /// The normalised address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password that is long enough; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// A password that is too short or too long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]
pub struct InvalidPassword;

impl Password {
    /// Accepts `MIN_PASSWORD_CHARS` to `MAX_PASSWORD_CHARS` characters.
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidPassword> {
        let value = value.into();
        let chars = value.chars().count();
        if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
            Ok(Self(value))
        } else {
            Err(InvalidPassword)
        }
    }

    /// The password itself.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole role × action matrix, written out: `(action, viewer, admin, owner)`.
    const MATRIX: [(Action, bool, bool, bool); 15] = [
        (Action::TenantCreate, false, true, true),
        (Action::TenantUpdate, false, true, true),
        (Action::TenantDelete, false, true, true),
        (Action::KeyCreate, false, true, true),
        (Action::KeyRevoke, false, true, true),
        (Action::WebhookCreate, false, true, true),
        (Action::WebhookUpdate, false, true, true),
        (Action::WebhookDelete, false, true, true),
        (Action::WebhookRotate, false, true, true),
        (Action::WebhookRevealSecret, false, true, true),
        (Action::WebhookTest, false, true, true),
        (Action::DeliveryResend, false, true, true),
        (Action::DeliveryRecover, false, true, true),
        (Action::OperatorManage, false, false, true),
        (Action::ProjectDelete, false, false, true),
    ];

    #[test]
    fn every_role_is_allowed_exactly_the_actions_of_the_matrix() {
        for action in Action::ALL {
            let row =
                MATRIX.iter().find(|r| r.0 == action).unwrap_or_else(|| panic!("{action:?} has no row"));
            for (role, expected) in [(Role::Viewer, row.1), (Role::Admin, row.2), (Role::Owner, row.3)] {
                assert_eq!(allows(role, action), expected, "{role} × {action:?}");
            }
        }
        assert_eq!(MATRIX.len(), Action::ALL.len(), "one row per action, no more");
    }

    #[test]
    fn roles_parse_and_order_by_power() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
        }
        assert_eq!(" Owner ".parse::<Role>().unwrap(), Role::Owner);
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Viewer < Role::Admin && Role::Admin < Role::Owner);
    }

    #[test]
    fn emails_are_case_insensitive_and_checked() {
        assert_eq!(Email::parse(" Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        assert_eq!(Email::parse("admin@localhost").unwrap().as_str(), "admin@localhost");
        for bad in ["", "ada", "@example.com", "ada@", "a b@example.com", "a@b@c"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_need_twelve_characters_and_hide_from_debug() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("x".repeat(11)).is_err());
        let ok = Password::parse("correct horse").unwrap();
        assert_eq!(ok.expose(), "correct horse");
        assert!(!format!("{ok:?}").contains("horse"));
        assert!(Password::parse("é".repeat(12)).is_ok(), "characters, not bytes");
    }
}
