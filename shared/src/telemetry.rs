//! Logs and traces.
//!
//! Logs are JSON lines (or `pretty`), filtered by `log.filter` or `RUST_LOG`. Traces leave the process only when
//! an operator names an OTLP endpoint with the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; [`TraceExport::from_env`]): then each request is a server span that
//! continues the caller's `traceparent`, with a child span per stage (artifact fetch per region, decode,
//! detect, align, embed, OCR, Redis steps, webhook delivery, ledger commit), exported in batches over
//! OTLP/HTTP with protobuf, which every collector and tracing backend accepts. Sampling (`OTEL_TRACES_SAMPLER`), batching (`OTEL_BSP_*`), headers and resource attributes
//! follow the other standard variables; the service name defaults to the service's own.
//!
//! Stage spans are `DEBUG`, so the log filter's usual `info` never prints them, and exporting is filtered to
//! this suite's crates, so no dependency's spans (the S3 client's, ONNX Runtime's) leave with request details.
//! Span fields are ids, routes, regions, codes and timings — never a phone number, code, name, document number,
//! token or image byte.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::http::HeaderMap;
use opentelemetry::{
    KeyValue,
    propagation::TextMapPropagator,
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{BatchSpanProcessor, SdkTracerProvider},
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, filter::filter_fn, fmt, layer::SubscriberExt,
    util::SubscriberInitExt,
};

use crate::{config::LogSettings, verdict::ServiceName};

/// Where traces go: OTLP over HTTP, resolved once at start from the standard OpenTelemetry variables (not
/// `IDV_*`: operators set these once for every process they run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceExport {
    /// The full URL spans are posted to (`…/v1/traces`); `None` exports nothing.
    pub endpoint: Option<String>,
}

impl TraceExport {
    /// Reads `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as given) or `OTEL_EXPORTER_OTLP_ENDPOINT` (the base,
    /// `/v1/traces` appended), `OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL`, `OTEL_TRACES_EXPORTER=none` and
    /// `OTEL_SDK_DISABLED=true`. Refuses what it cannot honour (gRPC, JSON, a URL that is not http(s)), so a
    /// misconfigured exporter stops the start instead of silently sending nothing.
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let is = |k: &str, want: &str| var(k).is_some_and(|v| v.eq_ignore_ascii_case(want));
        if is("OTEL_SDK_DISABLED", "true") || is("OTEL_TRACES_EXPORTER", "none") {
            return Ok(Self::default());
        }
        let endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
            var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        });
        let Some(endpoint) = endpoint else {
            return Ok(Self::default());
        };
        let url = reqwest::Url::parse(&endpoint)
            .map_err(|e| format!("OTEL_EXPORTER_OTLP endpoint {endpoint:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "OTEL_EXPORTER_OTLP endpoint {endpoint:?} must be http:// or https://"
            ));
        }
        let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|| "http/protobuf".to_owned());
        if protocol != "http/protobuf" {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: use http/protobuf (the default; a \
                 collector's port 4318)"
            ));
        }
        Ok(Self {
            endpoint: Some(endpoint),
        })
    }
}

/// The tracer provider, kept to flush what is left at shutdown.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
/// Whether spans are exported, so request handling skips the OpenTelemetry work when they are not.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Crates whose spans may be exported.
const OWN_CRATES: [&str; 4] = ["idv_shared", "face_match", "document_ocr", "phone_proof"];

/// Installs the global subscriber: logs, and the OTLP exporter when `settings.traces` names an endpoint.
/// Must run inside the Tokio runtime the exporter will use. A second call (as in tests) is a no-op.
pub fn init(settings: &LogSettings, service: ServiceName) -> Result<(), String> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let logs: Box<dyn Layer<Registry> + Send + Sync> = if settings.format == "pretty" {
        fmt::layer().with_target(false).boxed()
    } else {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    };
    let provider = match &settings.traces.endpoint {
        Some(endpoint) => Some(provider(endpoint, service)?),
        None => None,
    };
    let traces = provider.as_ref().map(|p| {
        // Spans of this suite's crates at any level; of their events only warnings and errors (an error
        // event also marks its span as failed).
        let own = |target: &str| OWN_CRATES.iter().any(|c| target.starts_with(c));
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service.as_str()))
            .with_filter(filter_fn(move |m| {
                own(m.target()) && (m.is_span() || *m.level() <= tracing::Level::WARN)
            }))
    });
    let installed = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .try_init()
        .is_ok();
    if let (true, Some(p)) = (installed, provider) {
        tracing::info!(endpoint = ?settings.traces.endpoint, "exporting traces over OTLP");
        let _ = PROVIDER.set(p);
        EXPORTING.store(true, Ordering::Release);
    }
    Ok(())
}

fn provider(endpoint: &str, service: ServiceName) -> Result<SdkTracerProvider, String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "trace export must be set up inside the Tokio runtime".to_owned())?;
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("OTLP HTTP client: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(RuntimeHttpClient { client, runtime })
        .with_endpoint(endpoint)
        .with_protocol(Protocol::HttpBinary)
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    // The builder reads `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`; the service's own name is the
    // default, not an override.
    let mut resource = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.as_str());
    }
    Ok(SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_resource(resource.build())
        .build())
}

/// What one export may take (the OTLP default timeout).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// A collector's answer is a small status message; anything longer is cut off.
const MAX_EXPORT_RESPONSE: usize = 64 * 1024;

/// Sends the exporter's requests with the service's own client on the service's runtime: the batch processor
/// runs on a thread of its own, outside the runtime, so the request is spawned onto the runtime and awaited.
#[derive(Debug)]
struct RuntimeHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for RuntimeHttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let mut res = client.execute(request).await?;
            let mut body = Vec::new();
            while let Some(chunk) = res.chunk().await? {
                let room = MAX_EXPORT_RESPONSE.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            let mut out = http::Response::new(bytes::Bytes::from(body));
            *out.status_mut() = res.status();
            *out.headers_mut() = std::mem::take(res.headers_mut());
            Ok::<_, reqwest::Error>(out)
        });
        Ok(sent.await??)
    }
}

/// Flushes spans not yet exported and stops the exporter (graceful shutdown). Blocks a thread of its own,
/// not the runtime's, since the export itself runs on the runtime.
pub async fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        let p = p.clone();
        let _ = tokio::task::spawn_blocking(move || p.shutdown()).await;
    }
}

/// Whether spans are being exported.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Acquire)
}

/// The trace a request's server span belongs to, when spans are exported: the caller's `traceparent` becomes
/// the span's parent, and the ids are the span's own (trace id, span id, sampled flag). `None` without export.
pub fn continue_trace(span: &Span, headers: &HeaderMap) -> Option<(String, String, bool)> {
    if !exporting() {
        return None;
    }
    let parent =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    let _ = span.set_parent(parent);
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        (
            sc.trace_id().to_string(),
            sc.span_id().to_string(),
            sc.is_sampled(),
        )
    })
}

/// Sets attributes on an exported span: for values known only once the work is done. Without export it does
/// nothing, and `attributes` is not even called (no allocation on the request path).
pub fn annotate(span: &Span, attributes: impl FnOnce() -> Vec<KeyValue>) {
    if exporting() {
        for kv in attributes() {
            span.set_attribute(kv.key, kv.value);
        }
    }
}

tokio::task_local! {
    /// The server span of the request this task serves, so code deep in a request can annotate it.
    static REQUEST_SPAN: Span;
}

/// Runs a request's future with `span` as its server span ([`annotate_request`]).
pub async fn with_request_span<F: Future>(span: Span, fut: F) -> F::Output {
    REQUEST_SPAN.scope(span, fut).await
}

/// Sets attributes on the current request's server span (a no-op without export or outside a request).
pub fn annotate_request(attributes: impl FnOnce() -> Vec<KeyValue>) {
    if exporting() {
        let _ = REQUEST_SPAN.try_with(|span| annotate(span, attributes));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn export(vars: &[(&str, &str)]) -> Result<TraceExport, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TraceExport::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn the_standard_variables_decide_export() {
        assert_eq!(export(&[]), Ok(TraceExport::default()));
        let base = export(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]);
        assert_eq!(
            base.map(|e| e.endpoint),
            Ok(Some("http://collector:4318/v1/traces".into()))
        );
        let both = export(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://b/otlp/traces",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        assert_eq!(
            both,
            Ok(TraceExport {
                endpoint: Some("https://b/otlp/traces".into()),
            })
        );
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let e = export(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"), off]);
            assert_eq!(e, Ok(TraceExport::default()), "{off:?}");
        }
    }

    #[test]
    fn what_cannot_be_honoured_stops_the_start() {
        for bad in [
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")],
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector")],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ],
        ] {
            assert!(export(&bad).is_err(), "{bad:?}");
        }
    }
}
