//! One module per command.

pub mod bench;
pub mod key;
pub mod migrate;
pub mod project;
pub mod serve;
pub mod sync;
pub mod user;
pub mod webhook;

use anyhow::Context;
use carcosa_server::Config;
use carcosa_server::audit::AuditContext;
use carcosa_server::store::Store;

/// Opens (and migrates) the database the configuration names, with a message that says which.
pub async fn open(config: &Config) -> anyhow::Result<Store> {
    carcosa_server::open_store(config)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_url.redacted()))
}

/// The audit context of a change made by this command: the OS user who runs it (`USER`, else
/// `LOGNAME`, else `USERNAME`; `unknown` when none is set) as a `cli` actor.
#[must_use]
pub fn audit_context() -> AuditContext {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .into_iter()
        .find_map(|var| std::env::var(var).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    AuditContext::cli(user)
}

/// Writes `value` as one line of JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

/// Writes one line of text on stdout.
pub fn print_line(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}
