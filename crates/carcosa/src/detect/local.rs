//! The app's local tenant table (a [`LocalStore`] the sync engine fills) as the detection
//! layer's [`TenantDirectory`].

use carcosa_core::{Slug, TenantId, TenantStatus};

use super::{DetectedTenant, DirectoryError, Identifier, TenantDirectory};
use crate::local::{By, LocalStore, LocalTenant};

impl TenantDirectory for LocalStore {
    async fn lookup(&self, identifier: &Identifier) -> Result<Option<DetectedTenant>, DirectoryError> {
        let by = match identifier {
            Identifier::Id(id) => By::Id(id),
            Identifier::Slug(slug) => By::Slug(slug),
            Identifier::Domain(domain) => By::Domain(domain),
        };
        let rows = self.find(by).await.map_err(DirectoryError::new)?;
        // A live tenant wins over deleted ones that kept the slug.
        let mut found: Vec<DetectedTenant> = rows.into_iter().filter_map(detected).collect();
        found.sort_by_key(|t| t.status == TenantStatus::Deleted);
        Ok(found.into_iter().next())
    }
}

/// A row as a detected tenant; `None` for a row that cannot be one (a slug set aside for
/// another tenant, `slug~ten_…`, or a value the app's table mangled).
fn detected(row: LocalTenant) -> Option<DetectedTenant> {
    let id = TenantId::parse(&row.carcosa_id).ok()?;
    let slug = Slug::parse(&row.slug).ok()?;
    let status = row.status.parse::<TenantStatus>().ok()?;
    let metadata = match row.metadata {
        Some(text) => serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        None => serde_json::Value::Null,
    };
    Some(DetectedTenant { id, slug, name: row.name, status, plan: row.plan, metadata })
}
