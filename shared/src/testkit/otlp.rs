//! An OTLP/HTTP trace receiver for tests: what a collector (or Jaeger, Tempo) would be sent, decoded and kept.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::{AnyValue, KeyValue, any_value::Value},
};
use prost::Message;

/// One span as the collector received it, ids in hex and attribute values as text.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The resource's `service.name`.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, or empty for a root span.
    pub parent_span_id: String,
    /// OTLP span kind (2 = server).
    pub kind: i32,
    /// Attributes, values rendered as text (arrays joined with `,`).
    pub attributes: Vec<(String, String)>,
    /// Events: name and attributes.
    pub events: Vec<(String, Vec<(String, String)>)>,
}

impl ReceivedSpan {
    /// An attribute's value.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every key and value of the span and its events, as one text to search.
    pub fn all_text(&self) -> String {
        let mut out = format!("{} ", self.name);
        for (k, v) in self
            .attributes
            .iter()
            .chain(self.events.iter().flat_map(|(_, a)| a.iter()))
        {
            out.push_str(&format!("{k}={v} "));
        }
        for (name, _) in &self.events {
            out.push_str(name);
            out.push(' ');
        }
        out
    }
}

/// The receiver, on `127.0.0.1` and an ephemeral port, answering `POST /v1/traces` (OTLP protobuf).
#[derive(Clone)]
pub struct OtlpCollector {
    /// The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it.
    pub endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

impl OtlpCollector {
    /// Starts receiving.
    pub async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(spans.clone());
        let addr = super::serve_ephemeral(app).await.unwrap();
        Self {
            endpoint: format!("http://{addr}"),
            spans,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits (up to `timeout`) until the spans of `trace_id` include every name in `names`, then returns them.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        names: &[&str],
        timeout: Duration,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        loop {
            let got: Vec<_> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            if names.iter().all(|n| got.iter().any(|s| s.name == *n)) {
                return got;
            }
            if Instant::now() > deadline {
                let seen: Vec<_> = got.iter().map(|s| s.name.as_str()).collect();
                panic!("trace {trace_id}: wanted spans {names:?}, received {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    State(spans): State<Arc<Mutex<Vec<ReceivedSpan>>>>,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut got = Vec::new();
    for rs in request.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
            got.push(ReceivedSpan {
                service: service.clone(),
                name: span.name,
                trace_id: hex::encode(span.trace_id),
                span_id: hex::encode(span.span_id),
                parent_span_id: hex::encode(span.parent_span_id),
                kind: span.kind,
                attributes: pairs(&span.attributes),
                events: span
                    .events
                    .iter()
                    .map(|e| (e.name.clone(), pairs(&e.attributes)))
                    .collect(),
            });
        }
    }
    spans.lock().unwrap().extend(got);
    (
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

fn pairs(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::ArrayValue(a)) => a
            .values
            .iter()
            .map(|v| text(Some(v)))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::KvlistValue(l)) => pairs(&l.values)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}
