//! Where objects are kept: a folder under the data folder, or an S3-compatible bucket.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// The folder for the SQLite database, local objects and model weights.
pub fn data_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| PathBuf::from("data"))
}

/// The `[s3]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Table {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub bucket: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub virtual_hosted: Option<bool>,
}

#[derive(Debug, Clone)]
pub enum StorageConfig {
    Local { root: PathBuf },
    S3(S3Config),
}

#[derive(Clone)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub virtual_hosted: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("virtual_hosted", &self.virtual_hosted)
            .finish_non_exhaustive()
    }
}

/// S3 once a bucket is configured, which then needs its keys; else `objects` in the data
/// folder.
pub fn storage(s3: S3Table, data_dir: &Path) -> Result<StorageConfig, ConfigError> {
    let Some(bucket) = s3.bucket else {
        return Ok(StorageConfig::Local {
            root: data_dir.join("objects"),
        });
    };
    Ok(StorageConfig::S3(S3Config {
        endpoint: s3.endpoint,
        region: s3.region.unwrap_or_else(|| "auto".into()),
        bucket,
        access_key_id: s3.access_key_id.ok_or(ConfigError::Missing {
            key: "RESONANCE_S3_ACCESS_KEY_ID (s3.access_key_id)",
            why: "required when an S3 bucket is configured",
        })?,
        secret_access_key: s3.secret_access_key.ok_or(ConfigError::Missing {
            key: "RESONANCE_S3_SECRET_ACCESS_KEY (s3.secret_access_key)",
            why: "required when an S3 bucket is configured",
        })?,
        virtual_hosted: s3.virtual_hosted.unwrap_or(false),
    }))
}
