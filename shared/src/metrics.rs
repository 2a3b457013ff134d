//! Prometheus metrics. One process-wide recorder; labels are route templates, codes and regions only,
//! never identifiers or PII.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets in seconds: fine below 50 ms, where the verification routes live.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the recorder (once per process) and returns the handle that renders `/metrics`.
pub fn init() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Renders the Prometheus text exposition.
pub fn render() -> String {
    init().map(PrometheusHandle::render).unwrap_or_default()
}

/// Records one finished HTTP request.
pub fn record_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("route", route.to_owned()),
        ("method", method.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

/// Records the time of one pipeline stage (fetch, decode, inference, ocr, ledger, …).
pub fn record_stage(service: &'static str, stage: &'static str, elapsed: Duration) {
    metrics::histogram!("verification_stage_duration_seconds", "service" => service, "stage" => stage)
        .record(elapsed.as_secs_f64());
}

/// Counts one verdict: `verifications_total` once, by service, outcome, document format and the region of its
/// first artifact (the verdict mix, and review/fail rates by format and region); `verdicts_total` once per
/// reason code (why).
pub fn record_verdict(
    service: &'static str,
    verdict: &'static str,
    reasons: &[&'static str],
    format: Option<&'static str>,
    region: &str,
) {
    metrics::counter!(
        "verifications_total",
        "service" => service,
        "verdict" => verdict,
        "format" => format.unwrap_or("-"),
        "region" => region.to_owned()
    )
    .increment(1);
    if reasons.is_empty() {
        metrics::counter!("verdicts_total", "service" => service, "verdict" => verdict, "reason" => "none").increment(1);
    }
    for reason in reasons {
        metrics::counter!("verdicts_total", "service" => service, "verdict" => verdict, "reason" => *reason).increment(1);
    }
}

/// Counts one object-store error by region and kind.
pub fn record_store_error(region: &str, kind: &'static str) {
    metrics::counter!("store_errors_total", "region" => region.to_owned(), "kind" => kind)
        .increment(1);
}
