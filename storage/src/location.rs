//! Parsing a warehouse URL into a location.

use std::path::{Path, PathBuf};

use url::Url;

use crate::{Error, Result};

/// Where a warehouse lives. Parsed from what a user types after `--data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseLocation {
    /// A folder on the local file system (absolute).
    Local(PathBuf),
    /// An S3-compatible bucket and a key prefix (without leading or trailing `/`).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket; may be empty.
        prefix: String,
    },
    /// A process-local in-memory store, shared by name. For tests.
    Memory(String),
}

impl WarehouseLocation {
    /// Parses a plain path, `file://`, `s3://bucket/prefix` or `memory://name`.
    ///
    /// Relative paths are made absolute against the current directory, so the location stays the
    /// same if the process later changes directory.
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidLocation {
            location: input.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("empty location"));
        }
        if let Some(rest) = trimmed.strip_prefix("memory://") {
            let name = rest.trim_matches('/');
            return Ok(Self::Memory(if name.is_empty() { "default".into() } else { name.into() }));
        }
        if trimmed.starts_with("s3://") || trimmed.starts_with("s3a://") {
            let url = Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
            let bucket = url.host_str().ok_or_else(|| invalid("missing bucket name"))?.to_string();
            if bucket.len() < 3 {
                return Err(invalid("S3 bucket names have at least 3 characters"));
            }
            let prefix = url.path().trim_matches('/').to_string();
            return Ok(Self::S3 { bucket, prefix });
        }
        if trimmed.starts_with("file://") {
            let url = Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
            let path = url.to_file_path().map_err(|_| invalid("not a local file URL"))?;
            return Ok(Self::Local(path));
        }
        if let Some((scheme, _)) = trimmed.split_once("://") {
            return Err(invalid(&format!(
                "unsupported scheme '{scheme}': use a path, file://, s3:// or memory://"
            )));
        }
        Ok(Self::Local(absolute(Path::new(trimmed))?))
    }

    /// The location as a URL string, as a user would type it back.
    pub fn to_url_string(&self) -> String {
        match self {
            Self::Local(p) => Url::from_directory_path(p)
                .map(|u| u.to_string().trim_end_matches('/').to_string())
                .unwrap_or_else(|_| p.display().to_string()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Self::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
            Self::Memory(name) => format!("memory://{name}"),
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    let joined = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) };
    // Normalise `.` and `..` lexically: the folder may not exist yet.
    let mut out = PathBuf::new();
    for comp in joined.components() {
        match comp {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        assert_eq!(
            WarehouseLocation::parse("s3://kura-bucket/wh/one/").unwrap(),
            WarehouseLocation::S3 { bucket: "kura-bucket".into(), prefix: "wh/one".into() }
        );
        assert_eq!(WarehouseLocation::parse("memory://t1").unwrap(), WarehouseLocation::Memory("t1".into()));
        assert_eq!(
            WarehouseLocation::parse("file:///tmp/x").unwrap(),
            WarehouseLocation::Local(PathBuf::from("/tmp/x"))
        );
        assert_eq!(
            WarehouseLocation::parse("/tmp/a/../b").unwrap(),
            WarehouseLocation::Local(PathBuf::from("/tmp/b"))
        );
        match WarehouseLocation::parse("kura-data").unwrap() {
            WarehouseLocation::Local(p) => assert!(p.is_absolute() && p.ends_with("kura-data")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn refuses_bad_locations() {
        for bad in ["", "gs://bucket/x", "s3://ab/x", "s3:///nobucket"] {
            assert!(WarehouseLocation::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
