//! The production sender: POSTs a CloudEvents 1.0 event (structured JSON) to an SMS gateway, signed the
//! Standard Webhooks way, with bounded retries. The event id is the `webhook-id` and the `Idempotency-Key`, so a
//! gateway that saw an attempt before drops the retry.

use std::time::Duration;

use async_trait::async_trait;
use idv_shared::clock::SharedClock;
use serde_json::json;
use tracing::Instrument;

pub use idv_shared::webhook::SigningSecret;

use super::{DeliveryError, Message, Sender};

/// The CloudEvents `type` of a code delivery request.
pub const EVENT_TYPE: &str = "com.idv.phone.otp.delivery_requested";

/// Retry and timeout settings.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all.
    pub attempts: u32,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// First backoff; doubles.
    pub backoff: Duration,
}

/// POSTs signed CloudEvents.
pub struct WebhookSender {
    client: reqwest::Client,
    url: String,
    secrets: Vec<SigningSecret>,
    source: String,
    retry: RetryPolicy,
    clock: SharedClock,
}

impl WebhookSender {
    /// A sender to `url`, signing with every secret (newest first), so the gateway can rotate.
    pub fn new(
        url: String,
        secrets: Vec<SigningSecret>,
        source: String,
        retry: RetryPolicy,
        clock: SharedClock,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(retry.timeout)
            .connect_timeout(retry.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            url,
            secrets,
            source,
            retry,
            clock,
        })
    }

    fn event(&self, m: &Message) -> serde_json::Value {
        json!({
            "specversion": "1.0",
            "id": m.event_id,
            "source": self.source,
            "type": EVENT_TYPE,
            "subject": m.challenge_id,
            "time": idv_shared::verdict::rfc3339(self.clock.now()),
            "datacontenttype": "application/json",
            "data": m.payload(),
        })
    }

    async fn attempt(&self, id: &str, body: &[u8]) -> Result<(), (bool, String)> {
        let ts = self.clock.now_secs();
        let signature = self
            .secrets
            .iter()
            .map(|s| s.sign(id, ts, body))
            .collect::<Vec<_>>()
            .join(" ");
        let res = self
            .client
            .post(&self.url)
            .header("content-type", "application/cloudevents+json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .header("idempotency-key", id)
            .body(body.to_vec())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                let s = r.status();
                let retry = s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429;
                Err((retry, format!("gateway answered {s}")))
            }
            // Transport errors carry the URL at most, never the body.
            Err(e) => Err((true, format!("transport: {}", e.without_url()))),
        }
    }
}

#[async_trait]
impl Sender for WebhookSender {
    async fn send(&self, m: &Message) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&self.event(m)).map_err(|e| DeliveryError {
            attempts: 0,
            last: e.to_string(),
        })?;
        let mut backoff = self.retry.backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let delivery = tracing::debug_span!("webhook.deliver", attempt = attempts);
            match self.attempt(&m.event_id, &body).instrument(delivery).await {
                Ok(()) => return Ok(()),
                Err((retry, last)) => {
                    tracing::warn!(event_id = %m.event_id, attempt = attempts, error = %last, "sms gateway delivery attempt failed");
                    if !retry || attempts >= self.retry.attempts {
                        return Err(DeliveryError { attempts, last });
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }

    fn describe(&self) -> String {
        format!("webhook ({} signing keys)", self.secrets.len())
    }
}
