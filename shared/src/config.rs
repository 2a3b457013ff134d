//! Configuration: defaults that work locally, then an optional TOML file, then `IDV_*` variables for every
//! service, then the service's own prefix (`OCR_`, `FACE_`, `PHONE_`). Nested keys use `__`:
//! `IDV_REGIONS__EU__KIND=s3`, `FACE_BIND=0.0.0.0:8082`.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    auth::AuthSettings,
    limits::RateLimitSettings,
    store::{ArtifactLimits, S3Settings},
    verdict::ServiceName,
};

pub use crate::secret::Secret;

/// Where one region's artifacts live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RegionStore {
    /// A local folder (default: `<data_dir>/artifacts/<region>`).
    Local {
        /// The folder.
        #[serde(default)]
        path: Option<PathBuf>,
    },
    /// An S3 bucket.
    S3(S3Settings),
    /// Process memory, with residency tags (tests and throw-away demos: nothing survives a restart).
    Memory,
}

/// HTTP server limits.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Largest request body in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take, in seconds.
    pub request_timeout_secs: u64,
    /// Requests in flight per route before new ones get `overloaded`.
    pub max_in_flight: usize,
    /// How long graceful shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_secs: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: 64 * 1024,
            request_timeout_secs: 30,
            max_in_flight: 1024,
            shutdown_grace_secs: 30,
        }
    }
}

/// Audit key and ledger locations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditSettings {
    /// Signing key ring (default `<data_dir>/audit/keys.json`, shared by the services of one deployment).
    pub keys_path: Option<PathBuf>,
    /// Ledger file (default `<data_dir>/ledger/<service>.jsonl`), used unless `ledger_url` is set.
    pub ledger_path: Option<PathBuf>,
    /// `postgres://…`: keep the ledger in PostgreSQL instead of a file, so replicas share it (the table comes
    /// from `idvctl ledger migrate`).
    pub ledger_url: Option<Secret>,
    /// The PostgreSQL chain this service appends to (default: the service's name, one chain for all replicas).
    pub ledger_chain: Option<String>,
    /// Deadline of each PostgreSQL step (connect, lock, read, insert, commit), in milliseconds.
    pub ledger_timeout_ms: u64,
    /// Appends that may wait for the ledger writer before callers wait for room.
    pub queue_capacity: usize,
    /// Most ledger entries between two signed checkpoints.
    pub checkpoint_every_entries: u64,
    /// Longest an entry waits for a signed checkpoint, in seconds.
    pub checkpoint_every_secs: u64,
}

impl AuditSettings {
    /// The checkpoint rule these settings give.
    pub fn checkpoints(&self) -> crate::audit::checkpoint::CheckpointPolicy {
        crate::audit::checkpoint::CheckpointPolicy {
            every_entries: self.checkpoint_every_entries.max(1),
            every: std::time::Duration::from_secs(self.checkpoint_every_secs.max(1)),
        }
    }
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            keys_path: None,
            ledger_path: None,
            ledger_url: None,
            ledger_chain: None,
            ledger_timeout_ms: 3000,
            queue_capacity: 16_384,
            checkpoint_every_entries: 1000,
            checkpoint_every_secs: 60,
        }
    }
}

/// Log output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// `json` (default) or `pretty`.
    pub format: String,
    /// `tracing` filter directive, e.g. `info` or `info,idv_shared=debug`.
    pub filter: String,
    /// Trace export, from the standard `OTEL_*` variables ([`load`] reads them), not from `IDV_*`.
    #[serde(skip)]
    pub traces: crate::telemetry::TraceExport,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "json".into(),
            filter: "info".into(),
            traces: crate::telemetry::TraceExport::default(),
        }
    }
}

/// Settings every service shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CommonConfig {
    /// Listen address.
    pub bind: SocketAddr,
    /// Where keys, ledgers and the default local stores live.
    pub data_dir: PathBuf,
    /// Region name → store. Empty means the embedded default: `eu` and `us` as local folders.
    pub regions: BTreeMap<String, RegionStore>,
    /// Artifact size limits.
    pub artifacts: ArtifactLimits,
    /// Gateway token checks.
    pub auth: AuthSettings,
    /// Per-tenant, per-route limits.
    pub rate_limit: RateLimitSettings,
    /// HTTP limits.
    pub http: HttpSettings,
    /// Audit.
    pub audit: AuditSettings,
    /// Logs.
    pub log: LogSettings,
}

impl Default for CommonConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("var"),
            regions: BTreeMap::new(),
            artifacts: ArtifactLimits::default(),
            auth: AuthSettings::default(),
            rate_limit: RateLimitSettings::default(),
            http: HttpSettings::default(),
            audit: AuditSettings::default(),
            log: LogSettings::default(),
        }
    }
}

impl CommonConfig {
    /// Refuses settings that would make the service refuse everything or grow without bound; the error names
    /// the variable (`IDV_` or the service's own prefix) to fix.
    pub fn validate(&self) -> Result<(), String> {
        fn at_least<T: PartialOrd + std::fmt::Display>(
            name: &str,
            value: T,
            min: T,
        ) -> Result<(), String> {
            if value >= min {
                Ok(())
            } else {
                Err(format!("IDV_{name} must be at least {min} (got {value})"))
            }
        }
        let h = &self.http;
        at_least("HTTP__MAX_IN_FLIGHT", h.max_in_flight, 1)?;
        at_least("HTTP__BODY_LIMIT_BYTES", h.body_limit_bytes, 1)?;
        at_least("HTTP__REQUEST_TIMEOUT_SECS", h.request_timeout_secs, 1)?;
        let r = &self.rate_limit;
        if !(r.requests_per_second.is_finite() && r.requests_per_second > 0.0) {
            return Err(format!(
                "IDV_RATE_LIMIT__REQUESTS_PER_SECOND must be a positive number (got {})",
                r.requests_per_second
            ));
        }
        if !(r.burst.is_finite() && r.burst >= 1.0) {
            return Err(format!(
                "IDV_RATE_LIMIT__BURST must be at least 1 (got {})",
                r.burst
            ));
        }
        at_least("RATE_LIMIT__MAX_KEYS", r.max_keys, 1)?;
        at_least("AUTH__MAX_LIFETIME_SECS", self.auth.max_lifetime_secs, 1)?;
        at_least("AUDIT__LEDGER_TIMEOUT_MS", self.audit.ledger_timeout_ms, 1)?;
        if let Some(url) = &self.audit.ledger_url {
            let url = url.expose();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err("IDV_AUDIT__LEDGER_URL must be a postgres:// URL".into());
            }
        }
        if self
            .audit
            .ledger_chain
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > 128)
        {
            return Err("IDV_AUDIT__LEDGER_CHAIN must be 1 to 128 characters".into());
        }
        at_least("AUDIT__QUEUE_CAPACITY", self.audit.queue_capacity, 1)?;
        at_least(
            "AUDIT__CHECKPOINT_EVERY_ENTRIES",
            self.audit.checkpoint_every_entries,
            1,
        )?;
        at_least(
            "AUDIT__CHECKPOINT_EVERY_SECS",
            self.audit.checkpoint_every_secs,
            1,
        )?;
        at_least(
            "ARTIFACTS__IMAGE_MAX_BYTES",
            self.artifacts.image_max_bytes,
            1,
        )?;
        at_least(
            "ARTIFACTS__JSON_MAX_BYTES",
            self.artifacts.json_max_bytes,
            1,
        )?;
        Ok(())
    }

    /// Defaults for one service (its port).
    pub fn for_service(service: ServiceName) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], default_port(service))),
            ..Self::default()
        }
    }

    /// The regions to serve: the configured ones, or `eu` and `us` as local folders.
    pub fn effective_regions(&self) -> BTreeMap<String, RegionStore> {
        if self.regions.is_empty() {
            ["eu", "us"]
                .into_iter()
                .map(|r| (r.to_owned(), RegionStore::Local { path: None }))
                .collect()
        } else {
            self.regions.clone()
        }
    }

    /// The audit key ring's file.
    pub fn audit_keys_path(&self) -> PathBuf {
        self.audit
            .keys_path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit").join("keys.json"))
    }

    /// Where a service's ledger is kept: PostgreSQL when `audit.ledger_url` is set, else its file.
    pub fn ledger_target(&self, service: ServiceName) -> crate::audit::LedgerTarget {
        match &self.audit.ledger_url {
            Some(url) => {
                crate::audit::LedgerTarget::Postgres(crate::audit::ledger::PostgresLedger {
                    url: url.clone(),
                    chain: self
                        .audit
                        .ledger_chain
                        .clone()
                        .unwrap_or_else(|| service.as_str().to_owned()),
                    timeout: std::time::Duration::from_millis(self.audit.ledger_timeout_ms.max(1)),
                })
            }
            None => crate::audit::LedgerTarget::File(self.ledger_path(service)),
        }
    }

    /// A service's ledger file.
    pub fn ledger_path(&self, service: ServiceName) -> PathBuf {
        self.audit.ledger_path.clone().unwrap_or_else(|| {
            self.data_dir
                .join("ledger")
                .join(format!("{service}.jsonl"))
        })
    }
}

/// The own settings of a service that has none yet.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NoSettings {}

/// Default port of each service.
pub fn default_port(service: ServiceName) -> u16 {
    match service {
        ServiceName::DocumentOcr => 8081,
        ServiceName::FaceMatch => 8082,
        ServiceName::PhoneProof => 8083,
    }
}

/// A service's own environment prefix.
pub fn env_prefix(service: ServiceName) -> &'static str {
    match service {
        ServiceName::DocumentOcr => "OCR_",
        ServiceName::FaceMatch => "FACE_",
        ServiceName::PhoneProof => "PHONE_",
    }
}

/// The layered configuration source of a service. `IDV_CONFIG_FILE` names an optional TOML file whose
/// `[default]` table applies to every service and whose `[<service>]` table to one.
pub fn figment(service: ServiceName) -> Figment {
    let mut fig = Figment::from(Serialized::defaults(CommonConfig::for_service(service)));
    if let Ok(file) = std::env::var("IDV_CONFIG_FILE") {
        fig = fig.merge(Toml::file(file).nested());
    }
    fig.merge(Env::prefixed("IDV_").ignore(&["config_file"]).split("__"))
        .merge(Env::prefixed(env_prefix(service)).split("__"))
        .select(service.as_str())
}

/// Loads the common settings and a service's own settings (any `Deserialize + Default` type) from one source,
/// and the trace export from the standard `OTEL_*` variables.
pub fn load<T: DeserializeOwned>(
    service: ServiceName,
) -> Result<(CommonConfig, T), Box<figment::Error>> {
    let fig = figment(service);
    let mut common: CommonConfig = fig.extract().map_err(Box::new)?;
    common.log.traces =
        crate::telemetry::TraceExport::from_env().map_err(|e| Box::new(figment::Error::from(e)))?;
    let own = fig.extract().map_err(Box::new)?;
    Ok((common, own))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = S3Settings {
            bucket: "b".into(),
            endpoint: None,
            aws_region: "us-east-1".into(),
            path_style: true,
            prefix: String::new(),
            access_key_id: Some("AKIA".into()),
            secret_access_key: Some(Secret::new("hunter2")),
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's own error type
    fn env_layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("IDV_DATA_DIR", "/tmp/idv-x");
            jail.set_env("IDV_RATE_LIMIT__BURST", "7");
            jail.set_env("FACE_BIND", "127.0.0.1:9999");
            jail.set_env("IDV_REGIONS__EU__KIND", "s3");
            jail.set_env("IDV_REGIONS__EU__BUCKET", "idv-eu");
            jail.set_env("IDV_REGIONS__EU__PATH_STYLE", "true");
            let (common, _) =
                load::<NoSettings>(ServiceName::FaceMatch).map_err(|e| e.to_string())?;
            assert_eq!(common.bind.port(), 9999);
            assert_eq!(common.data_dir, PathBuf::from("/tmp/idv-x"));
            assert_eq!(common.rate_limit.burst, 7.0);
            assert!(
                matches!(&common.regions["eu"], RegionStore::S3(s) if s.bucket == "idv-eu" && s.path_style)
            );
            let (ocr, _) =
                load::<NoSettings>(ServiceName::DocumentOcr).map_err(|e| e.to_string())?;
            assert_eq!(
                ocr.bind.port(),
                8081,
                "FACE_ settings do not leak into other services"
            );
            Ok(())
        });
    }

    #[test]
    fn settings_that_would_refuse_everything_are_refused_naming_the_variable() {
        let ok = CommonConfig::for_service(ServiceName::FaceMatch);
        assert_eq!(ok.validate(), Ok(()));
        type Breaks = fn(&mut CommonConfig);
        let cases: [(&str, Breaks); 5] = [
            ("IDV_HTTP__MAX_IN_FLIGHT", |c| c.http.max_in_flight = 0),
            ("IDV_RATE_LIMIT__REQUESTS_PER_SECOND", |c| {
                c.rate_limit.requests_per_second = 0.0
            }),
            ("IDV_RATE_LIMIT__BURST", |c| c.rate_limit.burst = 0.5),
            ("IDV_RATE_LIMIT__REQUESTS_PER_SECOND", |c| {
                c.rate_limit.requests_per_second = f64::NAN
            }),
            ("IDV_AUDIT__CHECKPOINT_EVERY_ENTRIES", |c| {
                c.audit.checkpoint_every_entries = 0
            }),
        ];
        for (variable, break_it) in cases {
            let mut c = ok.clone();
            break_it(&mut c);
            let err = c.validate().unwrap_err();
            assert!(err.starts_with(variable), "{err}");
        }
    }
}
