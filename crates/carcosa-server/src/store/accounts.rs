//! Operators, roles, sessions and failed logins as the store keeps them (the SQL is in
//! `operators.rs`, shared by both backends). Hashing, expiry and throttling rules live in
//! [`crate::operators`] and [`crate::session`].

use carcosa_core::{Email, OperatorId, ProjectId, Role};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Store, StoreError};
use crate::audit::AuditContext;

/// A dashboard operator (never with the password hash).
#[derive(Debug, Clone, Serialize)]
pub struct Operator {
    /// `op_…`
    pub id: OperatorId,
    /// The login, lower-cased.
    pub email: Email,
    /// What the dashboard calls them.
    pub name: String,
    /// A role in every project, present and future (the first-start admin is a global owner).
    pub global_role: Option<Role>,
    /// Roles in single projects.
    pub roles: Vec<ProjectRole>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed (a new password, say).
    pub updated_at: DateTime<Utc>,
}

impl Operator {
    /// The operator's role in `project`: the higher of the global role and the project's.
    #[must_use]
    pub fn role_in(&self, project: ProjectId) -> Option<Role> {
        let granted = self.roles.iter().filter(|r| r.project == project).map(|r| r.role).max();
        granted.max(self.global_role)
    }
}

/// A role in one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectRole {
    /// The project.
    pub project: ProjectId,
    /// The role there.
    pub role: Role,
}

/// An operator as stored: the account and its argon2id hash.
#[derive(Debug, Clone)]
pub struct StoredOperator {
    /// The account.
    pub operator: Operator,
    /// The PHC string of the password's argon2id hash.
    pub password_hash: String,
}

/// A checked new operator, the password already hashed.
#[derive(Debug, Clone)]
pub struct NewOperator {
    /// The login.
    pub email: Email,
    /// The display name.
    pub name: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// A role in every project.
    pub global_role: Option<Role>,
    /// A role in one project.
    pub project_role: Option<ProjectRole>,
}

/// A session as stored (found by the hash of its token).
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Who is signed in.
    pub operator: OperatorId,
    /// When they signed in (for the absolute expiry).
    pub created_at: DateTime<Utc>,
    /// When the session was last used (for the idle expiry), to within a minute.
    pub last_seen_at: DateTime<Utc>,
}

impl Store {
    /// Creates an operator; [`StoreError::EmailTaken`] if the email is in use,
    /// [`StoreError::NotFound`] if the project role names no project. With a project role, the
    /// creation is audited (`operator.create`) in that project.
    pub async fn create_operator(
        &self,
        new: &NewOperator,
        audit: &AuditContext,
    ) -> Result<Operator, StoreError> {
        let created = on_backend!(self, s => s.create_operator(new, false, Some(audit)).await)?;
        created.ok_or(StoreError::NotFound)
    }

    /// Creates `new` only if there is no operator at all yet; `None` if there was one.
    pub async fn create_first_operator(&self, new: &NewOperator) -> Result<Option<Operator>, StoreError> {
        on_backend!(self, s => s.create_operator(new, true, None).await)
    }

    /// An operator and their password hash, by email.
    pub async fn operator_by_email(&self, email: &Email) -> Result<Option<StoredOperator>, StoreError> {
        on_backend!(self, s => s.operator_by_email(email).await)
    }

    /// An operator by id.
    pub async fn get_operator(&self, id: OperatorId) -> Result<Option<Operator>, StoreError> {
        on_backend!(self, s => s.get_operator(id).await)
    }

    /// Every operator, oldest first, with their roles.
    pub async fn list_operators(&self) -> Result<Vec<Operator>, StoreError> {
        on_backend!(self, s => s.list_operators().await)
    }

    /// Replaces an operator's password hash and ends all their sessions.
    pub async fn set_operator_password(
        &self,
        email: &Email,
        password_hash: &str,
    ) -> Result<OperatorId, StoreError> {
        on_backend!(self, s => s.set_operator_password(email, password_hash).await)
    }

    /// Starts a session known by `token_hash`, ending the session `replaces` (if any) in the same
    /// transaction.
    pub async fn create_session(
        &self,
        token_hash: &[u8],
        operator: OperatorId,
        address: Option<&str>,
        user_agent: Option<&str>,
        replaces: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.create_session(token_hash, operator, address, user_agent, replaces).await)
    }

    /// A session by the hash of its token.
    pub async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        on_backend!(self, s => s.session(token_hash).await)
    }

    /// Records that a session was used at `at`.
    pub async fn touch_session(&self, token_hash: &[u8], at: DateTime<Utc>) -> Result<(), StoreError> {
        on_backend!(self, s => s.touch_session(token_hash, at).await)
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        on_backend!(self, s => s.delete_session(token_hash).await)
    }

    /// Removes sessions idle since before `idle_before` or started before `created_before`, and
    /// failed logins older than `failures_before`.
    pub async fn prune_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
        failures_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.prune_sessions(idle_before, created_before, failures_before).await)
    }

    /// Records one failed login against each of `subjects` (`email:…`, `address:…`).
    pub async fn record_login_failure(
        &self,
        subjects: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.record_login_failure(subjects, at).await)
    }

    /// The times of `subject`'s failed logins since `since`, oldest first.
    pub async fn login_failures_since(
        &self,
        subject: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        on_backend!(self, s => s.login_failures_since(subject, since).await)
    }

    /// Forgets `subject`'s failed logins (after a successful one).
    pub async fn clear_login_failures(&self, subject: &str) -> Result<(), StoreError> {
        on_backend!(self, s => s.clear_login_failures(subject).await)
    }
}
