//! What detection counts, through the `metrics` facade (the app installs the recorder):
//!
//! * `carcosa_tenant_resolutions_total{outcome}`: every request the layer saw, by outcome:
//!   `resolved`, `none` (no tenant named, let through by an optional layer), or the rejection:
//!   `required`, `not_found`, `suspended`, `conflict`, `lookup_unavailable`, `token_invalid`,
//!   `forbidden`;
//! * `carcosa_tenant_cache_hits_total` and `carcosa_tenant_cache_misses_total`: lookups the cache
//!   answered, and lookups that went to the directory.
//!
//! Each is one counter increment with static labels: without a recorder it costs nothing, with
//! one a hash-map read.

use super::Rejection;

/// Counts a request's outcome.
pub(super) fn resolution(outcome: &'static str) {
    metrics::counter!("carcosa_tenant_resolutions_total", "outcome" => outcome).increment(1);
}

/// Counts a rejected request, by its rejection.
pub(super) fn rejected(rejection: &Rejection) {
    let code = rejection.code();
    resolution(code.strip_prefix("tenant_").unwrap_or(code));
}

/// Counts a lookup the cache answered.
pub(super) fn cache_hit() {
    metrics::counter!("carcosa_tenant_cache_hits_total").increment(1);
}

/// Counts a lookup that went to the directory.
pub(super) fn cache_miss() {
    metrics::counter!("carcosa_tenant_cache_misses_total").increment(1);
}
