//! `carcosa user …`: create dashboard operators, set their passwords, list them.
//!
//! The password comes from `CARCOSA_USER_PASSWORD` if set, else from a prompt (twice, without
//! echo) when stdin is a terminal, else it is generated and printed once (in the JSON on stdout).

use std::io::IsTerminal;

use anyhow::Context;
use carcosa_core::operator::Password;
use carcosa_core::{Email, ProjectId, Role};
use carcosa_server::Config;
use carcosa_server::operators::{self, AccountError, OperatorIn};
use carcosa_server::store::{ProjectRole, StoreError};
use clap::Subcommand;
use serde_json::json;

/// The variable a password can be given in, instead of a prompt.
const PASSWORD_VAR: &str = "CARCOSA_USER_PASSWORD";

/// User subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an operator. Prints `{"operator": {...}}`, with `"password"` when it was generated.
    Create {
        /// The login (case does not matter).
        #[arg(long)]
        email: String,
        /// owner, admin or viewer: in `--project`, or in every project when it is not given.
        #[arg(long)]
        role: String,
        /// The project (`prj_…`) the role is for; without it, the role is for every project.
        #[arg(long)]
        project: Option<String>,
        /// What the dashboard calls them (default: the email).
        #[arg(long)]
        name: Option<String>,
    },
    /// Set an operator's password (ends their sessions).
    SetPassword {
        /// The operator's login.
        #[arg(long)]
        email: String,
    },
    /// List operators and their roles (never their passwords), as JSON lines.
    List,
}

/// Runs a user subcommand.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Create { email, role, project, name } => {
            let email = Email::parse(&email).context("--email")?;
            let role: Role = role.parse().context("--role")?;
            let project = project.map(|p| ProjectId::parse(p.trim())).transpose().context("--project")?;
            let (password, generated) = password()?;
            let new = OperatorIn {
                email,
                name,
                password: password.clone(),
                global_role: project.is_none().then_some(role),
                project_role: project.map(|project| ProjectRole { project, role }),
            };
            let store = super::open(&config).await?;
            let created = operators::create_operator(&store, new, &super::audit_context()).await;
            store.close().await;
            let operator = created.map_err(|e| match e {
                AccountError::Store(StoreError::EmailTaken) => {
                    anyhow::anyhow!("an operator with this email exists")
                }
                AccountError::Store(StoreError::NotFound) => anyhow::anyhow!("no such project"),
                other => other.into(),
            })?;
            eprintln!("created operator {} ({})", operator.id, operator.email);
            if generated {
                eprintln!("the generated password is in the output; it is not shown again");
                super::print_json(&json!({"operator": operator, "password": password.expose()}))
            } else {
                super::print_json(&json!({"operator": operator}))
            }
        }
        Command::SetPassword { email } => {
            let email = Email::parse(&email).context("--email")?;
            let (password, generated) = password()?;
            let store = super::open(&config).await?;
            let result = operators::set_password(&store, &email, &password).await;
            store.close().await;
            result.map_err(|e| match e {
                AccountError::Store(StoreError::NotFound) => anyhow::anyhow!("no operator {email}"),
                other => other.into(),
            })?;
            eprintln!("set the password of {email}; their sessions have ended");
            if generated {
                super::print_json(&json!({"email": email, "password": password.expose()}))
            } else {
                super::print_json(&json!({"email": email}))
            }
        }
        Command::List => {
            let store = super::open(&config).await?;
            let listed = store.list_operators().await;
            store.close().await;
            listed?.iter().try_for_each(super::print_json)
        }
    }
}

/// The password to use, and whether it was generated.
fn password() -> anyhow::Result<(Password, bool)> {
    if let Ok(given) = std::env::var(PASSWORD_VAR) {
        return Ok((Password::parse(given).context(PASSWORD_VAR)?, false));
    }
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password (12 characters or more): ")?;
        let password = Password::parse(first).context("password")?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(again == password.expose(), "the passwords differ");
        return Ok((password, false));
    }
    Ok((Password::parse(operators::generate_password()).expect("generated passwords are long enough"), true))
}
