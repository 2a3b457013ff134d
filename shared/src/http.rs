//! HTTP plumbing shared by every service: request ids, the JSON extractor with problem+json rejections,
//! the observation middleware (W3C `traceparent`, one log line per request, request metrics), and the
//! problem middleware that renders every error response as problem+json with its request id.

use std::time::Instant;

use axum::{
    extract::{FromRequest, MatchedPath, Request, rejection::JsonRejection},
    http::{HeaderMap, HeaderName, HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tracing::Instrument;

use crate::{
    error::{ApiError, ErrorCode, PROBLEM_JSON, PendingProblem, render_problem},
    telemetry,
};

/// Header carrying the request id, in and out.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// W3C trace context header.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The request id of a request (set by the request-id layer), or `-` when there is none.
pub fn request_id_of(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

/// Makes request ids: a ULID unless the caller sent a sane one of its own.
#[derive(Clone, Copy, Default)]
pub struct MakeRequestUlid;

impl tower_http::request_id::MakeRequestId for MakeRequestUlid {
    fn make_request_id<B>(
        &mut self,
        _req: &http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        HeaderValue::from_str(&ulid::Ulid::new().to_string())
            .ok()
            .map(Into::into)
    }
}

/// Keeps a caller's request id only when it is short and printable, so it cannot smuggle data into logs.
pub async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let bad = req.headers().get(&REQUEST_ID).is_some_and(|v| {
        let b = v.as_bytes();
        b.is_empty()
            || b.len() > 64
            || !b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    });
    if bad {
        req.headers_mut().remove(&REQUEST_ID);
    }
    next.run(req).await
}

/// `axum::Json` whose rejections are problem+json with stable codes.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                ErrorCode::UnsupportedMedia,
                "expected a request body with Content-Type: application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::invalid(format!("malformed JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => ApiError::invalid(e.body_text()),
            JsonRejection::BytesRejection(e)
                if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body exceeds this route's limit",
                )
            }
            other => ApiError::invalid(other.body_text()),
        }
    }
}

/// A parsed W3C trace context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits: this server's span.
    pub span_id: String,
    /// Trace flags (e.g. `01` sampled).
    pub flags: String,
}

impl TraceContext {
    /// Continues the caller's trace when its `traceparent` is valid, else starts a new one (when traces are
    /// not exported; [`observe_middleware`]).
    pub fn continue_or_start(headers: &HeaderMap) -> Self {
        let parsed = headers
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        let (trace_id, flags) = parsed.unwrap_or_else(|| (random_hex(16), "01".to_owned()));
        Self {
            trace_id,
            span_id: random_hex(8),
            flags,
        }
    }

    /// The `traceparent` value naming this server's span.
    pub fn header_value(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

fn parse_traceparent(v: &str) -> Option<(String, String)> {
    let mut parts = v.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let ok = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace != "0".repeat(32)
        && hex(parent, 16)
        && parent != "0".repeat(16)
        && hex(flags, 2);
    ok.then(|| (trace.to_owned(), flags.to_owned()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // A failing OS RNG leaves zeros; trace ids are not secrets, so degrading beats failing the request.
    let _ = getrandom::fill(&mut buf);
    hex::encode(buf)
}

/// Wraps each request in a span with its request and trace ids, logs one line when it ends, records the
/// duration histogram by route template (never the raw path) and answers with `traceparent`.
///
/// When traces are exported the span is the request's server span, a child of the caller's `traceparent`,
/// and the ids are OpenTelemetry's own; otherwise the trace context is only continued in logs and headers.
pub async fn observe_middleware(req: Request, next: Next) -> Response {
    use opentelemetry::KeyValue;
    let started = Instant::now();
    let request_id = request_id_of(req.headers());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        %request_id,
        trace_id = tracing::field::Empty,
        %method,
        %route,
    );
    let trace = match telemetry::continue_trace(&span, req.headers()) {
        Some((trace_id, span_id, sampled)) => TraceContext {
            trace_id,
            span_id,
            flags: if sampled { "01" } else { "00" }.to_owned(),
        },
        None => TraceContext::continue_or_start(req.headers()),
    };
    span.record("trace_id", trace.trace_id.as_str());
    telemetry::annotate(&span, || {
        vec![
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("http.route", route.clone()),
        ]
    });
    let mut res =
        telemetry::with_request_span(span.clone(), next.run(req).instrument(span.clone())).await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    crate::metrics::record_request(&route, method.as_str(), status, elapsed);
    telemetry::annotate(&span, || {
        vec![KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        )]
    });
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1e3,
            "request finished"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&trace.header_value()) {
        res.headers_mut().insert(TRACEPARENT.clone(), v);
    }
    res
}

/// Turns every error response into problem+json carrying the request id.
///
/// Must run inside the request-id layer (so the header is set) and outside everything that can fail.
pub async fn problem_middleware(req: Request, next: Next) -> Response {
    let request_id = request_id_of(req.headers());
    let mut res = next.run(req).await;
    if let Some(PendingProblem(err)) = res.extensions_mut().remove::<PendingProblem>() {
        return keep_headers(render_problem(&err, &request_id), &res);
    }
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if (status.is_client_error() || status.is_server_error()) && !is_problem {
        let code = ErrorCode::from_status(status);
        let detail = match code {
            ErrorCode::NotFound => "no route matches this path".to_owned(),
            ErrorCode::MethodNotAllowed => "this route does not accept that method".to_owned(),
            ErrorCode::PayloadTooLarge => "the request body exceeds this route's limit".to_owned(),
            ErrorCode::Timeout => "the request took longer than the server allows".to_owned(),
            ErrorCode::Internal => {
                tracing::error!(status = status.as_u16(), "unhandled error response");
                "an internal error occurred; quote the request id when reporting it".to_owned()
            }
            _ => code.title().to_owned(),
        };
        let mut err = ApiError::new(code, detail);
        err.retry_after = res
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let mut out = keep_headers(render_problem(&err, &request_id), &res);
        *out.status_mut() = status;
        return out;
    }
    res
}

/// Carries over headers set by inner layers (e.g. `Allow`, `Retry-After`) onto the rendered problem.
fn keep_headers(mut out: Response, original: &Response) -> Response {
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !out.headers().contains_key(name)
        {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_continued_only_when_valid() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(good),
            Some(("4bf92f3577b34da6a3ce929d0e0e4736".into(), "01".into()))
        );
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }
}
