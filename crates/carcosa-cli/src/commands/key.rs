//! `carcosa key …`: create, list and revoke a project's API keys.

use anyhow::Context;
use carcosa_core::api::KeyRateLimit;
use carcosa_core::{ProjectId, Scope};
use carcosa_server::Config;
use carcosa_server::store::StoreError;
use clap::Subcommand;
use serde_json::json;

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a key. Prints `{"key": {...}, "api_key": "ck_…"}`; the key is shown only this once.
    Create {
        /// The project (`prj_…`).
        #[arg(long)]
        project: String,
        /// A scope the key gets; repeat for several: tenants:read, tenants:write, events:read,
        /// webhooks:manage, keys:manage, audit:read.
        #[arg(long = "scope", required = true, num_args = 1..)]
        scopes: Vec<String>,
        /// A label to recognise the key by.
        #[arg(long)]
        label: Option<String>,
        /// The key's own rate limit in requests a second, in place of the server's
        /// `rate_limit_per_second`; 0: this key is not limited.
        #[arg(long)]
        rate_limit: Option<u32>,
        /// The key's burst (requests at once); twice --rate-limit when not given.
        #[arg(long, requires = "rate_limit")]
        rate_limit_burst: Option<u32>,
    },
    /// List a project's keys (never their secrets), as JSON lines.
    List {
        /// The project (`prj_…`).
        #[arg(long)]
        project: String,
    },
    /// Revoke a key: requests with it are refused from now on.
    Revoke {
        /// The key id (the part between `ck_` and the second `_`).
        key_id: String,
    },
}

/// Runs a key subcommand.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    // Check the arguments before touching the database.
    let command = Parsed::from(command)?;
    let store = super::open(&config).await?;
    let result = async {
        match command {
            Parsed::Create { project, scopes, label, rate_limit } => {
                let (key, secret) = store
                    .create_key_with_limit(
                        project,
                        &scopes,
                        label.as_deref(),
                        rate_limit,
                        &super::audit_context(),
                    )
                    .await
                    .map_err(|e| not_found(e, || format!("no project {project}")))?;
                eprintln!("created key {}; keep it safe, it is not shown again", key.id);
                super::print_json(&json!({"key": key, "api_key": secret.expose()}))
            }
            Parsed::List { project } => {
                let keys = store
                    .list_keys(project)
                    .await
                    .map_err(|e| not_found(e, || format!("no project {project}")))?;
                keys.iter().try_for_each(super::print_json)
            }
            Parsed::Revoke { key_id } => {
                let key = store
                    .revoke_key(&key_id, &super::audit_context())
                    .await
                    .map_err(|e| not_found(e, || format!("no key {key_id}")))?;
                eprintln!("revoked key {}", key.id);
                super::print_json(&key)
            }
        }
    }
    .await;
    store.close().await;
    result
}

enum Parsed {
    Create { project: ProjectId, scopes: Vec<Scope>, label: Option<String>, rate_limit: Option<KeyRateLimit> },
    List { project: ProjectId },
    Revoke { key_id: String },
}

impl Parsed {
    fn from(command: Command) -> anyhow::Result<Self> {
        let project_id = |text: &str| ProjectId::parse(text.trim()).context("--project");
        Ok(match command {
            Command::Create { project, scopes, label, rate_limit, rate_limit_burst } => Self::Create {
                project: project_id(&project)?,
                scopes: scopes
                    .iter()
                    .flat_map(|s| s.split(','))
                    .map(|s| s.trim().parse::<Scope>())
                    .collect::<Result<_, _>>()
                    .context("--scope")?,
                label,
                rate_limit: rate_limit.map(|per_second| KeyRateLimit::new(per_second, rate_limit_burst)),
            },
            Command::List { project } => Self::List { project: project_id(&project)? },
            Command::Revoke { key_id } => Self::Revoke { key_id: key_id.trim().to_owned() },
        })
    }
}

fn not_found(err: StoreError, message: impl FnOnce() -> String) -> anyhow::Error {
    match err {
        StoreError::NotFound => anyhow::anyhow!(message()),
        other => other.into(),
    }
}
