//! `idvctl`: operator commands for the verification suite.
//!
//! It reads the same configuration as the services (`IDV_*` variables, `IDV_CONFIG_FILE`), so
//! `idvctl artifact put` writes to the stores the services read, and `idvctl token mint` signs with the dev
//! key the services trust by default.

mod sink;

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use idv_shared::{
    audit::{
        AuditClaims, KeyRing, jws,
        ledger::{self, Verification, verify_file},
        verify::{Anchors, verify_file_anchored},
    },
    auth::dev::{DevIssuer, MintRequest},
    config::{self, NoSettings},
    kernel::build_stores,
    store::Residency,
    verdict::ServiceName,
};

#[derive(Parser)]
#[command(
    name = "idvctl",
    version,
    about = "Operator commands for the identity-verification suite"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Gateway tokens from the local dev issuer.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Artifacts in the residency stores.
    Artifact {
        #[command(subcommand)]
        command: ArtifactCommand,
    },
    /// Audit tokens and keys.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The audit ledger.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// A stand-in SMS gateway for phone-proof's webhook sender (local runs and load tests; never production).
    SmsSink {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8099")]
        listen: SocketAddr,
        /// The webhook signing secrets (`whsec_<base64>`, comma-separated), as given to phone-proof.
        #[arg(long, env = "IDV_SINK_SECRETS")]
        secrets: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mints a short-lived dev token (prints only the token).
    Mint {
        /// Audience: document-ocr, face-match or phone-proof.
        #[arg(long)]
        service: String,
        /// Scope to grant (repeatable); defaults to every scope of the service.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Tenant.
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// Allowed region (repeatable).
        #[arg(long = "region", default_values_t = ["eu".to_owned(), "us".to_owned()])]
        regions: Vec<String>,
        /// Lifetime in seconds (at most 900).
        #[arg(long, default_value_t = 600)]
        ttl: i64,
    },
}

#[derive(Subcommand)]
enum ArtifactCommand {
    /// Stores a file in a region's store and prints its new opaque artifact ID.
    Put {
        /// Region.
        #[arg(long)]
        region: String,
        /// The file.
        file: PathBuf,
    },
    /// Stores `count` phone artifacts (distinct valid German mobile numbers from +49 151 1000 0000 up) and
    /// prints their IDs as a JSON array, for load tests.
    SeedPhones {
        /// Region.
        #[arg(long)]
        region: String,
        /// How many.
        #[arg(long)]
        count: u32,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verifies an audit token against a JWKS (file or URL) and prints its claims.
    VerifyToken {
        /// The compact JWS.
        token: String,
        /// JWKS file path or http(s) URL (e.g. http://127.0.0.1:8082/.well-known/jwks.json).
        #[arg(long)]
        jwks: String,
    },
    /// Adds a new signing key; old tokens keep verifying. Send SIGHUP to running services to pick it up.
    RotateKey {
        /// Key file (default: the configured one).
        #[arg(long)]
        keys: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Verifies a ledger's hash chain and names the first broken entry (exit code 1 when broken). With
    /// `--jwks`, also every signed checkpoint: a history rewritten with recomputed hashes, or stripped of its
    /// checkpoints, fails at the first entry after the last checkpoint that still signs the chain.
    Verify {
        /// The ledger file (or `--postgres`).
        #[arg(required_unless_present = "postgres")]
        path: Option<PathBuf>,
        /// Verify the ledger kept in PostgreSQL at this URL instead of a file.
        #[arg(
            long,
            env = "IDV_AUDIT__LEDGER_URL",
            hide_env_values = true,
            conflicts_with = "path"
        )]
        postgres: Option<String>,
        /// With `--postgres`: only this chain (default: every chain in the table).
        #[arg(long, requires = "postgres")]
        chain: Option<String>,
        /// The service's audit keys: its `/.well-known/jwks.json` URL or a file holding that document.
        #[arg(long)]
        jwks: Option<String>,
        /// Most entries allowed before the first checkpoint (the services' `AUDIT__CHECKPOINT_EVERY_ENTRIES`).
        #[arg(long, default_value_t = 1000)]
        max_gap: u64,
    },
    /// Creates the PostgreSQL ledger's table, its append-only triggers and the `idv_ledger_writer` role (which
    /// may INSERT and SELECT only; grant it to the services' login role). Safe to run again.
    Migrate {
        /// An owner's URL (not the services' role: it cannot create tables).
        #[arg(long, env = "IDV_AUDIT__LEDGER_URL", hide_env_values = true)]
        postgres: String,
    },
}

fn service(name: &str) -> anyhow::Result<ServiceName> {
    Ok(match name {
        "document-ocr" => ServiceName::DocumentOcr,
        "face-match" => ServiceName::FaceMatch,
        "phone-proof" => ServiceName::PhoneProof,
        other => bail!("unknown service '{other}' (document-ocr, face-match, phone-proof)"),
    })
}

fn default_scopes(service: ServiceName) -> Vec<String> {
    match service {
        ServiceName::DocumentOcr => vec!["ocr:verify".into()],
        ServiceName::FaceMatch => vec!["face:verify".into()],
        ServiceName::PhoneProof => vec!["phone:challenge".into(), "phone:verify".into()],
    }
}

async fn fetch_jwks(location: &str) -> anyhow::Result<jws::Jwks> {
    let raw = if location.starts_with("http://") || location.starts_with("https://") {
        reqwest_get(location).await?
    } else {
        std::fs::read(location).with_context(|| format!("read {location}"))?
    };
    serde_json::from_slice(&raw).context("parse JWKS")
}

async fn reqwest_get(url: &str) -> anyhow::Result<Vec<u8>> {
    let res = reqwest::get(url)
        .await
        .with_context(|| format!("GET {url}"))?
        .error_for_status()?;
    Ok(res.bytes().await?.to_vec())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Any service's view of the common settings will do: regions, data dir and keys are shared.
    let (common, NoSettings {}) =
        config::load::<NoSettings>(ServiceName::FaceMatch).context("configuration")?;
    match cli.command {
        Command::Token {
            command:
                TokenCommand::Mint {
                    service: name,
                    scopes,
                    tenant,
                    regions,
                    ttl,
                },
        } => {
            let svc = service(&name)?;
            let dev = DevIssuer::load_or_create(
                &common.data_dir,
                idv_shared::clock::SystemClock::shared(),
            )?;
            let scopes = if scopes.is_empty() {
                default_scopes(svc)
            } else {
                scopes
            };
            for r in &regions {
                r.parse::<Residency>()
                    .map_err(|e| anyhow::anyhow!("region '{r}': {e}"))?;
            }
            let req = MintRequest {
                audience: svc.as_str().into(),
                scopes,
                tenant,
                regions,
                ttl_secs: ttl,
            };
            println!("{}", dev.mint(&req)?);
        }
        Command::Artifact {
            command: ArtifactCommand::Put { region, file },
        } => {
            let region: Residency = region.parse().map_err(|e| anyhow::anyhow!("region: {e}"))?;
            let bytes = std::fs::read(&file).with_context(|| format!("read {}", file.display()))?;
            // Only the stores: a kernel would open a service's ledger beside the running service.
            let stores = build_stores(&common).await?;
            let id = stores.put_new(&region, bytes.into()).await?;
            println!("{id}");
        }
        Command::Artifact {
            command: ArtifactCommand::SeedPhones { region, count },
        } => {
            let region: Residency = region.parse().map_err(|e| anyhow::anyhow!("region: {e}"))?;
            let stores = build_stores(&common).await?;
            let mut ids = Vec::with_capacity(count as usize);
            for i in 0..count {
                let body =
                    serde_json::json!({ "phone_number": format!("+49151{:08}", 10_000_000 + i) });
                ids.push(
                    stores
                        .put_new(&region, serde_json::to_vec(&body)?.into())
                        .await?
                        .to_string(),
                );
            }
            println!("{}", serde_json::to_string(&ids)?);
        }
        Command::SmsSink { listen, secrets } => sink::run(listen, &secrets).await?,
        Command::Audit {
            command: AuditCommand::VerifyToken { token, jwks },
        } => {
            let jwks = fetch_jwks(&jwks).await?;
            let claims: AuditClaims =
                jws::verify(token.trim(), &jwks).map_err(|e| anyhow::anyhow!("INVALID: {e}"))?;
            println!("VALID (kid {})", jws::peek_kid(&token).unwrap_or_default());
            println!("{}", serde_json::to_string_pretty(&claims)?);
        }
        Command::Audit {
            command: AuditCommand::RotateKey { keys },
        } => {
            let path = keys.unwrap_or_else(|| common.audit_keys_path());
            if !path.exists() {
                KeyRing::load_or_create(&path, &idv_shared::clock::SystemClock)?;
            }
            let kid = KeyRing::rotate(&path, &idv_shared::clock::SystemClock)?;
            println!(
                "new active key {kid} in {}; send SIGHUP to running services",
                path.display()
            );
        }
        Command::Ledger {
            command:
                LedgerCommand::Verify {
                    path,
                    postgres,
                    chain,
                    jwks,
                    max_gap,
                },
        } => {
            let keys = match &jwks {
                Some(location) => Some(fetch_jwks(location).await?),
                None => None,
            };
            let anchors = keys.as_ref().map(|keys| Anchors { keys, max_gap });
            match (path, postgres) {
                (_, Some(url)) => {
                    let db = pg(url);
                    let chains = match chain {
                        Some(c) => vec![c],
                        None => ledger::postgres::chains(&db).await?,
                    };
                    if chains.is_empty() {
                        println!("OK: the ledger table holds no chain yet");
                    }
                    for c in chains {
                        println!("chain {c}:");
                        let verification = ledger::postgres::verify_chain(&db, &c, anchors).await?;
                        report_ledger(verification, keys.is_some());
                    }
                }
                (Some(path), None) => {
                    let verification = match anchors {
                        Some(anchors) => verify_file_anchored(&path, anchors),
                        None => verify_file(&path),
                    }
                    .with_context(|| format!("read {}", path.display()))?;
                    report_ledger(verification, keys.is_some());
                }
                (None, None) => bail!("name a ledger file or --postgres"),
            }
        }
        Command::Ledger {
            command: LedgerCommand::Migrate { postgres },
        } => {
            ledger::postgres::migrate(&pg(postgres)).await?;
            println!("ledger schema ready");
        }
    }
    Ok(())
}

/// A PostgreSQL ledger at `url` (the chain is named per command).
fn pg(url: String) -> ledger::PostgresLedger {
    ledger::PostgresLedger {
        url: idv_shared::config::Secret::new(url),
        chain: String::new(),
        timeout: std::time::Duration::from_secs(10),
    }
}

/// Prints a ledger verification; exits 1 when it is broken.
fn report_ledger(verification: Verification, anchored: bool) {
    match verification {
        Verification::Intact {
            entries,
            head,
            checkpoints,
            unanchored,
        } => {
            println!("OK: {entries} entries, chain intact, head {}", head.hash);
            if anchored {
                println!(
                    "{checkpoints} signed checkpoints verified; {unanchored} entries after the last one are not \
                     yet covered by a signature"
                );
            } else {
                println!(
                    "{checkpoints} checkpoints not checked: pass --jwks to detect a rewritten history"
                );
            }
        }
        Verification::Broken { line, seq, reason } => {
            let seq = seq.map(|s| format!(" (seq {s})")).unwrap_or_default();
            println!("BROKEN at line {line}{seq}: {reason}");
            std::process::exit(1);
        }
    }
}
