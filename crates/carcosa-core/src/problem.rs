//! Problem details (RFC 9457): the body of every error the API returns.

use serde::{Deserialize, Serialize};

/// The media type of problem details.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// An error as the API reports it. `code` is stable and meant for programs; `title` and `detail`
/// are for people and may change wording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// `urn:carcosa:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, and what to do about it.
    pub detail: String,
    /// The stable machine-readable code: `invalid_slug`, `slug_taken`, `not_found`, …
    pub code: String,
}

impl Problem {
    /// A problem with the given status, code, title and detail; `type` is derived from the code.
    #[must_use]
    pub fn new(status: u16, code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: format!("urn:carcosa:problem:{code}"),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            code: code.to_owned(),
        }
    }
}
