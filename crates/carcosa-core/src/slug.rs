//! Tenant slugs: short, unique-per-project names that work as DNS labels.
//!
//! A slug is 1–63 characters of `a-z`, `0-9` and `-`, neither starting nor ending with `-`, and
//! never an IDNA `xn--` label, so `acme.example.com` always works as a subdomain. When a tenant is
//! created without a slug, one is generated from its name ([`Slug::from_name`]): transliterated to
//! ASCII, lower-cased, runs of anything else collapsed to `-`, truncated; collisions get `-2`,
//! `-3`, … ([`Slug::with_suffix`]). Reserved words (`www`, `api`, …) are a policy of the server,
//! checked with [`ReservedSlugs`].

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest slug: one DNS label.
pub const MAX_LEN: usize = 63;

/// The words refused as slugs unless a server is configured otherwise: names a SaaS usually
/// needs for itself as subdomains or paths.
pub const DEFAULT_RESERVED: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "blog",
    "cdn",
    "dashboard",
    "docs",
    "help",
    "internal",
    "login",
    "mail",
    "root",
    "static",
    "status",
    "support",
    "system",
    "www",
];

/// Why a string is not a valid slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSlug {
    /// The empty string.
    #[error("a slug cannot be empty")]
    Empty,
    /// More than [`MAX_LEN`] characters.
    #[error("a slug is at most 63 characters long (got {0})")]
    TooLong(usize),
    /// A character outside `a-z 0-9 -`.
    #[error("a slug may only contain a-z, 0-9 and '-' (found {0:?})")]
    BadCharacter(char),
    /// Starts or ends with `-`.
    #[error("a slug cannot start or end with '-'")]
    EdgeHyphen,
    /// Starts with `xn--`, the IDNA prefix.
    #[error("a slug cannot start with 'xn--' (reserved for internationalised domain names)")]
    Punycode,
}

/// A valid slug. Holding one proves the text follows the rules of this module.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    /// Checks `value` against the slug rules. Upper case is an error, not silently folded: an API
    /// caller who sent `Acme` should learn that the slug is `acme`.
    pub fn parse(value: &str) -> Result<Self, InvalidSlug> {
        if value.is_empty() {
            return Err(InvalidSlug::Empty);
        }
        let len = value.chars().count();
        if len > MAX_LEN {
            return Err(InvalidSlug::TooLong(len));
        }
        if let Some(bad) =
            value.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(InvalidSlug::BadCharacter(bad));
        }
        if value.starts_with('-') || value.ends_with('-') {
            return Err(InvalidSlug::EdgeHyphen);
        }
        if value.starts_with("xn--") {
            return Err(InvalidSlug::Punycode);
        }
        Ok(Self(value.to_owned()))
    }

    /// The slug a tenant called `name` gets when none is given: `"Café Ünïcode, Inc."` becomes
    /// `cafe-unicode-inc`. Names with nothing transliterable fall back to `tenant`.
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        let ascii = deunicode::deunicode(name);
        let mut slug = String::with_capacity(ascii.len().min(MAX_LEN));
        for c in ascii.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let mut slug = truncate_label(&slug, MAX_LEN);
        if slug.starts_with("xn--") {
            // Keep the name recognisable but out of the IDNA namespace.
            slug.replace_range(0..4, "xn-");
        }
        if slug.is_empty() {
            slug.push_str("tenant");
        }
        Self(slug)
    }

    /// This slug with `-{n}` appended, shortened first so the result still fits in 63 characters:
    /// the candidate for the `n`-th tenant wanting the same slug.
    #[must_use]
    pub fn with_suffix(&self, n: u32) -> Self {
        let suffix = format!("-{n}");
        let base = truncate_label(&self.0, MAX_LEN - suffix.len());
        let base = if base.is_empty() { "tenant".to_owned() } else { base };
        Self(format!("{base}{suffix}"))
    }

    /// The slug as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Cuts `s` (ASCII) to at most `max` characters without leaving a hyphen at either end.
fn truncate_label(s: &str, max: usize) -> String {
    let cut = &s[..s.len().min(max)];
    cut.trim_matches('-').to_owned()
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slug({:?})", self.0)
    }
}

impl AsRef<str> for Slug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Slug {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Slug {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_LEN))
            .pattern(Some("^(?!xn--)[a-z0-9]([a-z0-9-]*[a-z0-9])?$"))
            .examples(["acme"])
            .description(Some(
                "Unique among the project's live tenants; a DNS label, so it works as a subdomain.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Slug {}

/// The set of slugs a server refuses (explicitly given or generated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedSlugs(BTreeSet<String>);

impl ReservedSlugs {
    /// A set from any list of words; each is lower-cased.
    pub fn new<I, S>(words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self(words.into_iter().map(|w| w.as_ref().to_ascii_lowercase()).collect())
    }

    /// Whether `slug` is reserved.
    #[must_use]
    pub fn contains(&self, slug: &Slug) -> bool {
        self.0.contains(slug.as_str())
    }
}

impl Default for ReservedSlugs {
    fn default() -> Self {
        Self::new(DEFAULT_RESERVED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_slugs_parse() {
        for ok in ["a", "acme", "acme-corp", "a1", "123", "a-b-c", &"a".repeat(63)] {
            assert_eq!(Slug::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn length_63_is_accepted_and_64_is_not() {
        assert!(Slug::parse(&"x".repeat(63)).is_ok());
        assert_eq!(Slug::parse(&"x".repeat(64)), Err(InvalidSlug::TooLong(64)));
    }

    #[test]
    fn leading_and_trailing_hyphens_are_rejected() {
        assert_eq!(Slug::parse("-acme"), Err(InvalidSlug::EdgeHyphen));
        assert_eq!(Slug::parse("acme-"), Err(InvalidSlug::EdgeHyphen));
        assert_eq!(Slug::parse("-"), Err(InvalidSlug::EdgeHyphen));
    }

    #[test]
    fn punycode_labels_are_rejected() {
        assert_eq!(Slug::parse("xn--bcher-kva"), Err(InvalidSlug::Punycode));
        assert!(Slug::parse("xn-bcher").is_ok());
    }

    #[test]
    fn upper_case_spaces_and_unicode_are_rejected() {
        assert_eq!(Slug::parse("Acme"), Err(InvalidSlug::BadCharacter('A')));
        assert_eq!(Slug::parse("ac me"), Err(InvalidSlug::BadCharacter(' ')));
        assert_eq!(Slug::parse("café"), Err(InvalidSlug::BadCharacter('é')));
        assert_eq!(Slug::parse("a_b"), Err(InvalidSlug::BadCharacter('_')));
        assert_eq!(Slug::parse(""), Err(InvalidSlug::Empty));
    }

    #[test]
    fn names_become_slugs() {
        let cases = [
            ("Acme", "acme"),
            ("Acme Corp", "acme-corp"),
            ("  Acme   Corp!! ", "acme-corp"),
            ("Café Ünïcode, Inc.", "cafe-unicode-inc"),
            ("Zürich Versicherung", "zurich-versicherung"),
            ("Łódź", "lodz"),
            ("東京", "dong-jing"),
            ("Ελληνικά", "ellenika"),
            ("--a--b--", "a-b"),
            ("ACME_42", "acme-42"),
        ];
        for (name, slug) in cases {
            assert_eq!(Slug::from_name(name).as_str(), slug, "name {name:?}");
        }
    }

    #[test]
    fn names_with_nothing_usable_fall_back() {
        assert_eq!(Slug::from_name("!!!").as_str(), "tenant");
        assert_eq!(Slug::from_name("").as_str(), "tenant");
    }

    #[test]
    fn generated_slugs_are_always_valid() {
        let long = "Very ".repeat(40);
        for name in [long.as_str(), "xn--foo", "a-", "☃☃☃", "a\u{0}b", "ß"] {
            let slug = Slug::from_name(name);
            assert!(Slug::parse(slug.as_str()).is_ok(), "{name:?} gave {slug:?}");
        }
    }

    #[test]
    fn long_names_are_truncated_without_a_trailing_hyphen() {
        let slug = Slug::from_name(&format!("{} b", "a".repeat(62)));
        assert_eq!(slug.as_str(), "a".repeat(62));
    }

    #[test]
    fn suffixes_keep_the_slug_within_63_characters() {
        let base = Slug::parse(&"a".repeat(63)).unwrap();
        let s2 = base.with_suffix(2);
        assert_eq!(s2.as_str().len(), 63);
        assert!(s2.as_str().ends_with("a-2"));
        let s100 = base.with_suffix(100);
        assert_eq!(s100.as_str().len(), 63);
        assert!(Slug::parse(s100.as_str()).is_ok());
        assert_eq!(Slug::parse("acme").unwrap().with_suffix(3).as_str(), "acme-3");
    }

    #[test]
    fn suffix_truncation_does_not_leave_a_double_hyphen() {
        let base = Slug::parse(&format!("{}-b", "a".repeat(60))).unwrap();
        assert_eq!(base.with_suffix(10).as_str(), format!("{}-10", "a".repeat(60)));
    }

    #[test]
    fn reserved_words_are_reported() {
        let reserved = ReservedSlugs::default();
        assert!(reserved.contains(&Slug::parse("www").unwrap()));
        assert!(reserved.contains(&Slug::parse("api").unwrap()));
        assert!(!reserved.contains(&Slug::parse("acme").unwrap()));
        let custom = ReservedSlugs::new(["Acme"]);
        assert!(custom.contains(&Slug::parse("acme").unwrap()));
    }
}
