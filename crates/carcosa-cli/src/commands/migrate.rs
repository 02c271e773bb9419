//! `carcosa migrate`: apply pending migrations (the server also does this at start).

use carcosa_server::Config;

/// Applies migrations and says so.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = super::open(&config).await?;
    eprintln!("migrations applied to {} ({})", config.database_url.redacted(), store.backend_name());
    store.close().await;
    Ok(())
}
