//! Typed artifact IDs and residency regions, parsed once at the edge.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A residency region name: 1–16 chars of `a-z0-9-`, starting with a letter (e.g. `eu`, `us`, `ap-south`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Residency(String);

/// Why a string is not a region or an artifact ID.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// Not a region name.
    #[error("a region is 1-16 characters of a-z, 0-9 and '-', starting with a letter")]
    BadRegion,
    /// Not an artifact ID.
    #[error("an artifact ID looks like 'art_<region>_<ULID>'")]
    BadArtifactId,
}

impl Residency {
    /// The region's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Residency {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=16).contains(&s.len())
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::BadRegion)
        }
    }
}

impl fmt::Display for Residency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An opaque artifact ID. Its form (`art_<region>_<ULID>`) lets a server route it to its region without a
/// directory; callers must not build or parse IDs themselves. The object's own residency tag is still
/// checked on every fetch, so editing the region part of an ID gains nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArtifactId {
    region: Residency,
    ulid: ulid::Ulid,
}

impl ArtifactId {
    /// A fresh ID in a region.
    pub fn generate(region: Residency) -> Self {
        Self {
            region,
            ulid: ulid::Ulid::new(),
        }
    }

    /// The region the ID resolves to.
    pub fn region(&self) -> &Residency {
        &self.region
    }

    /// The key of the object in its region's store.
    pub fn object_key(&self) -> String {
        self.to_string()
    }
}

impl ArtifactId {
    /// The wire form as a regular expression, for the OpenAPI schema: exactly what [`ArtifactId::from_str`]
    /// accepts (a region, then a canonical ULID: 26 uppercase Crockford base32 characters, the first at most 7).
    pub const PATTERN: &'static str = "^art_[a-z][a-z0-9-]{0,15}_[0-7][0-9A-HJKMNP-TV-Z]{25}$";
}

impl utoipa::PartialSchema for ArtifactId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(Self::PATTERN))
            .description(Some(
                "An opaque artifact ID (`art_<region>_<ULID>`) as the artifact store returned it",
            ))
            .examples(["art_eu_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P"])
            .into()
    }
}

impl utoipa::ToSchema for ArtifactId {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("ArtifactId")
    }
}

impl FromStr for ArtifactId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("art_").ok_or(IdError::BadArtifactId)?;
        let (region, ulid) = rest.rsplit_once('_').ok_or(IdError::BadArtifactId)?;
        let region = region.parse().map_err(|_| IdError::BadArtifactId)?;
        // Only the canonical (uppercase, 26-char) spelling, so one artifact has exactly one ID string.
        // A first character above 7 is more than 128 bits, which the ulid crate silently wraps: another spelling
        // of a different ID.
        if ulid.len() != 26
            || ulid.bytes().any(|b| b.is_ascii_lowercase())
            || !(b'0'..=b'7').contains(&ulid.as_bytes()[0])
        {
            return Err(IdError::BadArtifactId);
        }
        let ulid = ulid::Ulid::from_string(ulid).map_err(|_| IdError::BadArtifactId)?;
        Ok(Self { region, ulid })
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "art_{}_{}", self.region, self.ulid)
    }
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(Residency);
string_serde!(ArtifactId);

#[cfg(test)]
mod tests {

    #[test]
    fn the_schema_pattern_is_exactly_what_parses() {
        // The pattern's classes, spelled out: what the schema allows must parse, and nothing else may.
        let crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        assert!(ArtifactId::PATTERN.contains("[0-7][0-9A-HJKMNP-TV-Z]{25}"));
        for c in (0x21u8..0x7f).map(char::from) {
            let tail: String = std::iter::repeat_n(c, 25).collect();
            let rest = format!("art_eu_0{tail}").parse::<ArtifactId>().is_ok();
            assert_eq!(
                rest,
                crockford.contains(c),
                "{c:?} after the first character"
            );
            let first = format!("art_eu_{c}{}", "0".repeat(25))
                .parse::<ArtifactId>()
                .is_ok();
            assert_eq!(
                first,
                ('0'..='7').contains(&c),
                "{c:?} as the first character"
            );
        }
    }
    use super::*;

    #[test]
    fn artifact_ids_round_trip_and_reject_garbage() {
        let id = ArtifactId::generate("eu".parse().unwrap());
        let parsed: ArtifactId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        assert_eq!(parsed.region().as_str(), "eu");
        let with_dash: ArtifactId = "art_ap-south_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P".parse().unwrap();
        assert_eq!(with_dash.region().as_str(), "ap-south");
        for bad in [
            "",
            "art_eu",
            "art__01JD3Z8Q8Y5Q0W6F9T3K2M1N4P",
            "art_EU_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P",
            "art_eu_01jd3z8q8y5q0w6f9t3k2m1n4p",
            "art_eu_../../etc/passwd",
            "xyz_eu_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P",
            "art_eu_01JD3Z8Q8Y5Q0W6F9T3K2M1N4PX",
        ] {
            assert!(bad.parse::<ArtifactId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn regions_are_strict() {
        assert!("eu".parse::<Residency>().is_ok());
        for bad in ["", "EU", "1eu", "eu_west", "a-very-long-region-name"] {
            assert!(bad.parse::<Residency>().is_err(), "{bad}");
        }
    }
}
