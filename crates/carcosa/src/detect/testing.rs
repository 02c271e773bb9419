//! Fixtures shared by the detection tests.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::request::{Builder, Parts};
use carcosa_core::{Slug, TenantId, TenantStatus};

use super::DetectedTenant;

/// An active tenant with slug `slug`, no plan, empty metadata.
pub(crate) fn tenant(slug: &str) -> DetectedTenant {
    DetectedTenant {
        id: TenantId::generate(),
        slug: Slug::parse(slug).unwrap(),
        name: format!("Tenant {slug}"),
        status: TenantStatus::Active,
        plan: Some("pro".into()),
        metadata: serde_json::json!({}),
    }
}

/// The parts of a request with no peer address.
pub(crate) fn parts(builder: Builder) -> Parts {
    builder.body(()).unwrap().into_parts().0
}

/// The parts of a request that came from `peer`.
pub(crate) fn parts_from(peer: &str, builder: Builder) -> Parts {
    let addr: SocketAddr = peer.parse().unwrap();
    parts(builder.extension(ConnectInfo(addr)))
}
