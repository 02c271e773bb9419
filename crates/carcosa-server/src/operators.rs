//! Dashboard operators: password hashing (argon2id, always on a blocking thread, never on the
//! async executor), account creation, the first-start admin, and checking a login with its
//! throttle (per account and per address).
//!
//! Sessions and cookies are in [`crate::session`]; the role rules ([`carcosa_core::Role`],
//! [`carcosa_core::Action`], [`carcosa_core::operator::allows`]) are in the core crate.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use carcosa_core::operator::Password;
use carcosa_core::{Email, Role};
use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;

use crate::audit::AuditContext;
use crate::store::{NewOperator, Operator, ProjectRole, Store, StoreError};

/// Why an operator could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The store failed, or refused (email taken, no such project or operator).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed (it does not, short of a bug or a panic on the blocking thread).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Hashes `password` with argon2id (the crate's default, OWASP-recommended parameters) on a
/// blocking thread. Returns a PHC string with its own salt.
pub async fn hash_password(password: &Password) -> Result<String, AccountError> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .map_err(|e| AccountError::Hash(e.to_string()))?;
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| AccountError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| AccountError::Hash(e.to_string()))?
}

/// Whether `password` matches the PHC string `hash`, checked on a blocking thread. A hash that
/// cannot be read matches nothing.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// A hash of nothing anybody knows, verified against when the email is unknown, so that an
/// unknown account takes as long to refuse as a wrong password.
async fn decoy_hash() -> &'static str {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DECOY
        .get_or_init(|| async {
            let password = Password::parse(generate_password()).expect("generated passwords are long enough");
            hash_password(&password).await.unwrap_or_default()
        })
        .await
}

/// A random password: 20 characters from an alphabet without look-alikes (about 115 bits).
#[must_use]
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}

/// Who to create: the account's fields before hashing.
#[derive(Debug, Clone)]
pub struct OperatorIn {
    /// The login.
    pub email: Email,
    /// The display name; the email when `None`.
    pub name: Option<String>,
    /// The password, checked for length.
    pub password: Password,
    /// A role in every project.
    pub global_role: Option<Role>,
    /// A role in one project.
    pub project_role: Option<ProjectRole>,
}

/// Hashes the password and stores the operator; `audit` says who did it (recorded as
/// `operator.create` in the project the new operator gets a role in, if any).
pub async fn create_operator(
    store: &Store,
    new: OperatorIn,
    audit: &AuditContext,
) -> Result<Operator, AccountError> {
    let new = prepare(new).await?;
    Ok(store.create_operator(&new, audit).await?)
}

/// Sets a new password (which ends the operator's sessions).
pub async fn set_password(store: &Store, email: &Email, password: &Password) -> Result<(), AccountError> {
    let hash = hash_password(password).await?;
    store.set_operator_password(email, &hash).await?;
    Ok(())
}

async fn prepare(new: OperatorIn) -> Result<NewOperator, AccountError> {
    let name = new
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| new.email.to_string());
    Ok(NewOperator {
        password_hash: hash_password(&new.password).await?,
        email: new.email,
        name: name.chars().take(200).collect(),
        global_role: new.global_role,
        project_role: new.project_role,
    })
}

/// The admin created at first start.
#[derive(Debug)]
pub struct FirstAdmin {
    /// The account (a global owner).
    pub operator: Operator,
    /// The password, if it was generated (to show once); `None` if it came from the environment.
    pub generated_password: Option<Password>,
}

/// The default login of the first-start admin when `CARCOSA_ADMIN_EMAIL` is unset.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@localhost";

/// If no operator exists yet, creates an owner of every project from `email` (default
/// [`DEFAULT_ADMIN_EMAIL`]) and `password` (generated when `None`). Returns `None` when operators
/// already exist. Errors if the given email or password is not acceptable.
pub async fn ensure_first_admin(
    store: &Store,
    email: Option<&str>,
    password: Option<&str>,
) -> anyhow::Result<Option<FirstAdmin>> {
    if !store.list_operators().await?.is_empty() {
        return Ok(None);
    }
    let email = Email::parse(email.unwrap_or(DEFAULT_ADMIN_EMAIL))
        .map_err(|e| anyhow::anyhow!("CARCOSA_ADMIN_EMAIL: {e}"))?;
    let (password, generated) = match password {
        Some(given) => {
            (Password::parse(given).map_err(|e| anyhow::anyhow!("CARCOSA_ADMIN_PASSWORD: {e}"))?, false)
        }
        None => (Password::parse(generate_password()).expect("generated passwords are long enough"), true),
    };
    let new = prepare(OperatorIn {
        email,
        name: Some("Administrator".into()),
        password: password.clone(),
        global_role: Some(Role::Owner),
        project_role: None,
    })
    .await?;
    match store.create_first_operator(&new).await {
        Ok(Some(operator)) => {
            Ok(Some(FirstAdmin { operator, generated_password: generated.then_some(password) }))
        }
        // Another replica got there first.
        Ok(None) | Err(StoreError::EmailTaken) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Limits on failed logins.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    /// Failures allowed per subject within the window.
    pub max_failures: u32,
    /// The window.
    pub window: TimeDelta,
}

/// What a login attempt came to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The email and password match this operator.
    Success(Operator),
    /// Wrong email or password (which of the two is never said).
    Refused,
    /// Too many failures for this account or address; try again after this long.
    Throttled(TimeDelta),
}

/// Checks a login: refuses at once if the account or the address has had too many failures in
/// the window, otherwise verifies the password (against a decoy hash when the email is unknown,
/// so both take the same time) and records a failure against both.
pub async fn check_login(
    store: &Store,
    throttle: Throttle,
    email: &str,
    password: String,
    address: &str,
) -> Result<LoginOutcome, StoreError> {
    let at = crate::store::now();
    let email = Email::parse(email).ok();
    let account = format!("email:{}", email.as_ref().map_or(email_fallback(), Email::as_str));
    let subjects = [account, format!("address:{address}")];
    let mut wait = TimeDelta::zero();
    for subject in &subjects {
        wait = wait.max(throttled_for(store, throttle, subject, at).await?);
    }
    if wait > TimeDelta::zero() {
        return Ok(LoginOutcome::Throttled(wait));
    }
    let stored = match &email {
        Some(email) => store.operator_by_email(email).await?,
        None => None,
    };
    let matched = match stored {
        Some(stored) => verify_password(password, stored.password_hash).await.then_some(stored.operator),
        None => {
            let _ = verify_password(password, decoy_hash().await.to_owned()).await;
            None
        }
    };
    match matched {
        Some(operator) => {
            store.clear_login_failures(&subjects[0]).await?;
            Ok(LoginOutcome::Success(operator))
        }
        None => {
            store.record_login_failure(&subjects, at).await?;
            Ok(LoginOutcome::Refused)
        }
    }
}

/// Not an email anybody can have: where failures of unreadable emails are counted.
fn email_fallback() -> &'static str {
    "(invalid)"
}

/// How long `subject` must wait before its next attempt (zero when it may try now).
async fn throttled_for(
    store: &Store,
    throttle: Throttle,
    subject: &str,
    at: DateTime<Utc>,
) -> Result<TimeDelta, StoreError> {
    let failures = store.login_failures_since(subject, at - throttle.window).await?;
    let max = usize::try_from(throttle.max_failures.max(1)).unwrap_or(usize::MAX);
    if failures.len() < max {
        return Ok(TimeDelta::zero());
    }
    // Allowed again once enough of the failures have left the window.
    let freed_at = failures[failures.len() - max] + throttle.window;
    Ok((freed_at - at).max(TimeDelta::seconds(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let password = Password::parse("correct horse battery").unwrap();
        let hash = hash_password(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery".into(), hash.clone()).await);
        assert!(!verify_password("correct horse battery!".into(), hash).await);
        assert!(!verify_password("anything".into(), "not a hash".into()).await);
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = generate_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, generate_password());
        assert!(Password::parse(a).is_ok());
    }
}
