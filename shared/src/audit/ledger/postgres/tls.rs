//! How the ledger reaches PostgreSQL: in the clear, or over TLS that verifies the server.
//!
//! The URL is libpq's. `sslmode=require`, `verify-ca` or `verify-full` turn TLS on, and `sslrootcert=FILE` names
//! the certificate authorities to trust (PEM; `system`, or no `sslrootcert`, trusts the system's). Every TLS mode
//! verifies the server's certificate chain **and its name**, as libpq's `verify-full` does: a ledger whose rows
//! are what makes a verdict stand is not written to a peer nobody verified, and a managed database (RDS, Cloud
//! SQL, Azure) serves a certificate for its host name under a CA bundle its provider publishes. Without a mode,
//! or with `disable`, `allow` or `prefer`, the connection is in the clear: no opportunistic TLS that a
//! man-in-the-middle could answer with any certificate. A TLS handshake that fails is an unavailable database
//! (`503 store_unavailable`), never a fall-back to the clear.
//!
//! The connector is tokio-rustls under tokio-postgres's TLS traits, without SCRAM channel binding (the server's
//! certificate is verified instead; tokio-postgres's default `channel_binding=prefer` then authenticates without
//! it). A crate for this exists (`tokio-postgres-rustls`), but it brings six packages for channel binding's
//! certificate parsing.

use std::{
    future::Future,
    io,
    path::Path,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, InvalidDnsNameError, ServerName, pem::PemObject},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_rustls::{TlsConnector, client};

/// How to connect.
pub(super) enum Transport {
    /// In the clear.
    Plain,
    /// TLS, verifying the server against these roots.
    Tls(Rustls),
}

/// A ledger URL split into what tokio-postgres reads and how to reach the server.
pub(super) struct Target {
    /// The connection settings, with `sslmode` as tokio-postgres knows it and libpq's TLS options removed.
    pub config: tokio_postgres::Config,
    /// In the clear or over verified TLS.
    pub transport: Transport,
}

/// What the URL asks for TLS.
#[derive(Debug, Default, PartialEq, Eq)]
struct Asked {
    tls: bool,
    /// `sslrootcert`: a PEM file of CA certificates, or `None` for the system's.
    roots: Option<String>,
}

/// Reads a ledger URL: libpq's TLS options are taken out and turned into the transport; everything else is
/// tokio-postgres's to parse. Errors say what is wrong without repeating the URL (it may hold a password).
pub(super) fn target(url: &str) -> Result<Target, String> {
    let (rest, asked) = split_tls(url)?;
    let config: tokio_postgres::Config = rest
        .parse()
        .map_err(|_| "the ledger's PostgreSQL URL does not parse".to_owned())?;
    let transport = if asked.tls {
        Transport::Tls(Rustls(Arc::new(client_config(asked.roots.as_deref())?)))
    } else {
        Transport::Plain
    };
    Ok(Target { config, transport })
}

/// The URL without `sslrootcert`, its `sslmode` in tokio-postgres's terms (`require` or `disable`), and what
/// was asked.
fn split_tls(url: &str) -> Result<(String, Asked), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((format!("{url}?sslmode=disable"), Asked::default()));
    };
    let mut asked = Asked::default();
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                asked.tls = match percent_decoded(value)?.as_str() {
                    "disable" | "allow" | "prefer" => false,
                    "require" | "verify-ca" | "verify-full" => true,
                    _ => return Err(
                        "the ledger URL's sslmode must be disable, allow, prefer, require, verify-ca or verify-full"
                            .to_owned(),
                    ),
                }
            }
            "sslrootcert" => {
                let path = percent_decoded(value)?;
                asked.roots = (path != "system").then_some(path);
            }
            "sslcert" | "sslkey" => {
                return Err(format!(
                    "the ledger URL's {key} (a client certificate) is not supported: authenticate with a password"
                ));
            }
            _ => kept.push(pair),
        }
    }
    if asked.roots.is_some() && !asked.tls {
        return Err(
            "the ledger URL names an sslrootcert without sslmode=require or verify-full".to_owned(),
        );
    }
    kept.push(if asked.tls {
        "sslmode=require"
    } else {
        "sslmode=disable"
    });
    Ok((format!("{base}?{}", kept.join("&")), asked))
}

/// `%XX` escapes decoded (libpq's URLs escape paths that way); `+` is a plus, as in libpq.
fn percent_decoded(s: &str) -> Result<String, String> {
    let bad = || "the ledger URL has a malformed %-escape".to_owned();
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// A TLS client that verifies the server against `roots` (a PEM file) or the system's certificate authorities.
fn client_config(roots: Option<&str>) -> Result<ClientConfig, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(Path::new(path))
                .map_err(|e| format!("the ledger's sslrootcert {path} cannot be read: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("the ledger's sslrootcert {path}: {e}"))?;
                store
                    .add(cert)
                    .map_err(|e| format!("the ledger's sslrootcert {path}: {e}"))?;
            }
            if store.is_empty() {
                return Err(format!(
                    "the ledger's sslrootcert {path} holds no certificate"
                ));
            }
        }
        None => {
            // Certificates the system lists but that do not parse are skipped, as every TLS client does.
            let found = rustls_native_certs::load_native_certs();
            let (_added, _ignored) = store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(
                    "the ledger asks for TLS but the system has no CA certificates: name them with sslrootcert"
                        .to_owned(),
                );
            }
        }
    }
    // ring, the provider the rest of the suite's TLS (reqwest) uses; named, because the dependency tree also
    // enables aws-lc-rs, and rustls will not pick between two.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth())
}

/// tokio-postgres's TLS connector factory: one TLS client configuration, a connection per host name.
#[derive(Clone)]
pub(super) struct Rustls(Arc<ClientConfig>);

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> MakeTlsConnect<S> for Rustls {
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = InvalidDnsNameError;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connect, InvalidDnsNameError> {
        Ok(Connect {
            connector: TlsConnector::from(self.0.clone()),
            name: ServerName::try_from(host.to_owned())?,
        })
    }
}

/// One handshake, verifying the certificate against `name` (a DNS name or an IP address).
pub(super) struct Connect {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> TlsConnect<S> for Connect {
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = self.connector.connect(self.name, stream).await?;
            Ok(Stream(tls))
        })
    }
}

/// A TLS connection to the database.
pub(super) struct Stream<S>(client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_map_to_verified_tls_or_the_clear() {
        let plain = |u: &str| split_tls(u).map(|(rest, a)| (rest, a.tls));
        assert_eq!(
            plain("postgres://u@db/x"),
            Ok(("postgres://u@db/x?sslmode=disable".into(), false))
        );
        assert_eq!(
            plain("postgres://u@db/x?sslmode=prefer&connect_timeout=3"),
            Ok((
                "postgres://u@db/x?connect_timeout=3&sslmode=disable".into(),
                false
            ))
        );
        for mode in ["require", "verify-ca", "verify-full"] {
            let (rest, asked) = split_tls(&format!(
                "postgres://u:p@db:5432/x?sslmode={mode}&sslrootcert=%2Fetc%2Fca.pem"
            ))
            .unwrap_or_default();
            assert_eq!(rest, "postgres://u:p@db:5432/x?sslmode=require");
            assert_eq!(
                asked,
                Asked {
                    tls: true,
                    roots: Some("/etc/ca.pem".into())
                }
            );
        }
        let (_, system) =
            split_tls("postgres://db/x?sslmode=verify-full&sslrootcert=system").unwrap_or_default();
        assert_eq!(system.roots, None);
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_without_echoing_the_url() {
        for url in [
            "postgres://u:hunter2@db/x?sslmode=sometimes",
            "postgres://u:hunter2@db/x?sslrootcert=/ca.pem",
            "postgres://u:hunter2@db/x?sslmode=require&sslcert=/c.pem",
            "postgres://u:hunter2@db/x?sslmode=require&sslrootcert=%zz",
        ] {
            let err = split_tls(url).err().unwrap_or_default();
            assert!(!err.is_empty(), "{url} is refused");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let missing =
            target("postgres://u:hunter2@db/x?sslmode=require&sslrootcert=/nonexistent/ca.pem");
        let err = missing.err().unwrap_or_default();
        assert!(
            err.contains("cannot be read") && !err.contains("hunter2"),
            "{err}"
        );
    }
}
