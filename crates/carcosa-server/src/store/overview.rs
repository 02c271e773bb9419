//! What the dashboard shows beyond the API's own records: a project's overview figures, the
//! series its charts draw, one tenant's event history, and operators' roles in a project.
//! The SQL is in `dashboard.rs`, shared by both backends.

use std::collections::BTreeMap;

use carcosa_core::{Event, OperatorId, ProjectId, Role, TenantId, TenantStatus};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::{Store, StoreError};
use crate::audit::AuditContext;

/// Webhook deliveries created in one hour, by where they stand now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourlyDeliveries {
    /// Delivered (a 2xx answer).
    pub succeeded: i64,
    /// Given up on after every retry.
    pub failed: i64,
    /// Still being tried.
    pub pending: i64,
}

/// A project at a glance.
#[derive(Debug, Clone, Default)]
pub struct ProjectOverview {
    /// Tenants by status (statuses with none are absent).
    pub tenants: BTreeMap<TenantStatus, i64>,
    /// Events written in the last 24 hours.
    pub events_24h: i64,
    /// Deliveries created in the last 24 hours, by UTC hour (`YYYY-MM-DDTHH`).
    pub deliveries: BTreeMap<String, HourlyDeliveries>,
    /// Tenants created per UTC day (`YYYY-MM-DD`) in the chart's window.
    pub created_per_day: BTreeMap<String, i64>,
    /// Tenants deleted per UTC day in the chart's window.
    pub deleted_per_day: BTreeMap<String, i64>,
}

impl ProjectOverview {
    /// Live tenants (active and suspended) now.
    #[must_use]
    pub fn live_tenants(&self) -> i64 {
        self.tenants.iter().filter(|(s, _)| **s != TenantStatus::Deleted).map(|(_, n)| n).sum()
    }

    /// The deliveries of the last 24 hours summed.
    #[must_use]
    pub fn deliveries_24h(&self) -> HourlyDeliveries {
        self.deliveries.values().fold(HourlyDeliveries::default(), |sum, h| HourlyDeliveries {
            succeeded: sum.succeeded + h.succeeded,
            failed: sum.failed + h.failed,
            pending: sum.pending + h.pending,
        })
    }

    /// The share of finished deliveries of the last 24 hours that succeeded, if any finished.
    #[must_use]
    pub fn delivery_success_rate(&self) -> Option<f64> {
        let d = self.deliveries_24h();
        let finished = d.succeeded + d.failed;
        #[expect(clippy::cast_precision_loss, reason = "a percentage of counts far below 2^52")]
        (finished > 0).then(|| d.succeeded as f64 / finished as f64)
    }

    /// Live tenants at the end of each of the `days` days up to `today` (oldest first), drawn
    /// back from today's count with each day's creations and deletions.
    #[must_use]
    pub fn live_tenants_per_day(&self, today: NaiveDate, days: u32) -> Vec<(NaiveDate, i64)> {
        let mut live = self.live_tenants();
        let mut series = Vec::with_capacity(days as usize);
        for back in 0..i64::from(days) {
            let day = today - TimeDelta::days(back);
            series.push((day, live));
            let key = day.format("%Y-%m-%d").to_string();
            // The end of the day before: undo this day's changes.
            live -= self.created_per_day.get(&key).copied().unwrap_or(0);
            live += self.deleted_per_day.get(&key).copied().unwrap_or(0);
        }
        series.reverse();
        series
    }

    /// The deliveries of each of the last 24 hours up to `now`'s hour, oldest first.
    #[must_use]
    pub fn deliveries_per_hour(&self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, HourlyDeliveries)> {
        (0..24)
            .rev()
            .map(|back| {
                let at = now - TimeDelta::hours(back);
                let key = at.format("%Y-%m-%dT%H").to_string();
                (at, self.deliveries.get(&key).copied().unwrap_or_default())
            })
            .collect()
    }
}

impl Store {
    /// A project's overview as of `at`, with `days` days of tenant history.
    pub async fn project_overview(
        &self,
        project: ProjectId,
        at: DateTime<Utc>,
        days: u32,
    ) -> Result<ProjectOverview, StoreError> {
        on_backend!(self, s => s.project_overview(project, at, days).await)
    }

    /// Deletes a project and everything in it (tenants, events, keys, endpoints, deliveries,
    /// sync reports, operators' roles there), audited as `project.delete`. Its audit log stays
    /// until retention removes it.
    pub async fn delete_project(&self, project: ProjectId, audit: &AuditContext) -> Result<(), StoreError> {
        on_backend!(self, s => s.delete_project(project, audit).await)
    }

    /// A tenant's newest `limit` events (retention permitting), newest first.
    pub async fn tenant_events(
        &self,
        project: ProjectId,
        tenant: TenantId,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        on_backend!(self, s => s.tenant_events(project, tenant, limit).await)
    }

    /// Gives `operator` the role `role` in `project`, or takes their role there away (`None`);
    /// audited as `operator.role_set` / `operator.role_remove`. `false` when nothing changed.
    pub async fn set_operator_role(
        &self,
        project: ProjectId,
        operator: OperatorId,
        role: Option<Role>,
        audit: &AuditContext,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.set_operator_role(project, operator, role, audit).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_count_is_drawn_back_from_today() {
        let mut overview = ProjectOverview::default();
        overview.tenants.insert(TenantStatus::Active, 8);
        overview.tenants.insert(TenantStatus::Suspended, 2);
        overview.tenants.insert(TenantStatus::Deleted, 5);
        overview.created_per_day.insert("2026-11-27".into(), 4);
        overview.created_per_day.insert("2026-11-25".into(), 3);
        overview.deleted_per_day.insert("2026-11-26".into(), 1);
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let series = overview.live_tenants_per_day(today, 4);
        let counts: Vec<i64> = series.iter().map(|(_, n)| *n).collect();
        // 27th: 10 live; 26th: 10 - 4 = 6; 25th: 6 + 1 = 7; 24th: 7 - 3 = 4.
        assert_eq!(counts, vec![4, 7, 6, 10]);
        assert_eq!(series[0].0, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap());
    }

    #[test]
    fn the_success_rate_counts_finished_deliveries_only() {
        let mut overview = ProjectOverview::default();
        assert_eq!(overview.delivery_success_rate(), None);
        overview
            .deliveries
            .insert("2026-11-27T10".into(), HourlyDeliveries { succeeded: 3, failed: 1, pending: 9 });
        assert_eq!(overview.delivery_success_rate(), Some(0.75));
        let now = "2026-11-27T10:30:00Z".parse::<DateTime<Utc>>().unwrap();
        let hours = overview.deliveries_per_hour(now);
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[23].1.succeeded, 3);
        assert_eq!(hours[0].1, HourlyDeliveries::default());
    }
}
