//! A region's store in an S3 bucket, through `aws-sdk-s3`. The residency tag is the object's
//! `x-amz-meta-residency` metadata.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::{
    Client,
    config::{BehaviorVersion, Credentials, Region, retry::RetryConfig, timeout::TimeoutConfig},
    error::{ProvideErrorMetadata, SdkError},
    primitives::ByteStream,
};
use bytes::{Bytes, BytesMut};

use super::{ObjectStore, Residency, StoreError, StoredObject};
use crate::secret::Secret;

/// Connection settings of one bucket.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct S3Settings {
    /// Bucket name.
    pub bucket: String,
    /// Endpoint URL for S3-compatible servers (SeaweedFS, MinIO); AWS's own when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The AWS signing region.
    #[serde(default = "default_aws_region")]
    pub aws_region: String,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need.
    #[serde(default)]
    pub path_style: bool,
    /// Key prefix inside the bucket.
    #[serde(default)]
    pub prefix: String,
    /// Static access key; the default AWS credential chain is used when absent.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Static secret key.
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
}

fn default_aws_region() -> String {
    "us-east-1".to_owned()
}

/// An S3 bucket as a region's store.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: String,
}

impl S3Store {
    /// Builds the client. Without static keys, credentials come from the default AWS chain.
    pub async fn connect(settings: &S3Settings) -> Self {
        // A store that is down must fail fast so the caller gets `store_unavailable`, not a hung request.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(10))
            .build();
        let mut builder = match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(key), Some(secret)) => aws_sdk_s3::config::Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(Credentials::new(
                    key,
                    secret.expose(),
                    None,
                    None,
                    "idv-config",
                )),
            _ => {
                let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
                aws_sdk_s3::config::Builder::from(&shared)
            }
        };
        builder = builder
            .region(Region::new(settings.aws_region.clone()))
            .force_path_style(settings.path_style)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(2));
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
            endpoint: settings
                .endpoint
                .clone()
                .unwrap_or_else(|| "aws".to_owned()),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// Maps an SDK error, treating the service's "not found" answers as such and everything else as unavailable.
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(err: SdkError<E>) -> StoreError {
    if let SdkError::ServiceError(service) = &err {
        let code = service.err().code();
        if matches!(code, Some("NoSuchKey" | "NotFound")) || service.raw().status().as_u16() == 404
        {
            return StoreError::NotFound;
        }
    }
    StoreError::Unavailable(aws_sdk_s3::error::DisplayErrorContext(&err).to_string())
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn get(&self, key: &str, max_bytes: u64) -> Result<StoredObject, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(classify)?;
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        if size > max_bytes {
            return Err(StoreError::TooLarge { size });
        }
        let residency_tag = out.metadata().and_then(|m| m.get("residency")).cloned();
        // The declared length may lie; stop reading past the limit either way.
        let mut body = out.body;
        let mut buf = BytesMut::with_capacity(size as usize);
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
        {
            if (buf.len() + chunk.len()) as u64 > max_bytes {
                return Err(StoreError::TooLarge {
                    size: (buf.len() + chunk.len()) as u64,
                });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(StoredObject {
            bytes: buf.freeze(),
            residency_tag,
        })
    }

    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        residency: &Residency,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .content_type(content_type)
            .metadata("residency", residency.as_str())
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("s3 bucket {} at {}", self.bucket, self.endpoint)
    }
}
