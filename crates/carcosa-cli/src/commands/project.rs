//! `carcosa project …`: create and list projects.

use carcosa_server::Config;
use clap::Subcommand;
use serde_json::json;

/// Project subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a project and its first API key (with every scope). Prints
    /// `{"project": {...}, "api_key": "ck_…"}` on stdout; the key is shown only this once.
    Create {
        /// The project's display name.
        #[arg(long)]
        name: String,
    },
    /// List projects, as JSON lines.
    List,
}

/// Runs a project subcommand.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let store = super::open(&config).await?;
    let result = match command {
        Command::Create { name } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 {
                anyhow::bail!("--name must be 1 to 200 characters");
            }
            let (project, key, secret) = store.create_project(name, &super::audit_context()).await?;
            eprintln!(
                "created project {} with API key {} (every scope); keep the key safe, it is not shown again",
                project.id, key.id
            );
            super::print_json(
                &json!({"project": {"id": project.id, "name": project.name}, "api_key": secret.expose()}),
            )
        }
        Command::List => store.list_projects().await?.iter().try_for_each(super::print_json),
    };
    store.close().await;
    result
}
