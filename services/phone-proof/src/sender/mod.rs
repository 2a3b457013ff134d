//! The sender port: how a code reaches the phone. The message is the only place a code ever appears outside
//! the service's memory; senders never log it.

pub mod outbox;
pub mod webhook;

use async_trait::async_trait;
use serde::Serialize;

use crate::challenge::{model::Channel, phone::PhoneNumber};

/// Why a message was a first send or a resend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendKind {
    /// The challenge's first message.
    Initial,
    /// A resend of the same code.
    Resend,
}

/// One message to deliver.
#[derive(Clone)]
pub struct Message {
    /// Unique per send; the CloudEvent id and the gateway's idempotency key.
    pub event_id: String,
    /// The challenge it belongs to.
    pub challenge_id: String,
    /// The caller's tenant.
    pub tenant: String,
    /// Where to.
    pub to: PhoneNumber,
    /// SMS or voice.
    pub channel: Channel,
    /// The code.
    pub code: String,
    /// When the code stops working (RFC 3339).
    pub expires_at: String,
    /// First send or resend.
    pub kind: SendKind,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("event_id", &self.event_id)
            .field("challenge_id", &self.challenge_id)
            .field("channel", &self.channel)
            .field("to", &self.to)
            .field("code", &"[redacted]")
            .finish()
    }
}

impl Message {
    /// What the phone should get: the fields both senders deliver (the outbox as a line, the webhook as the
    /// CloudEvent's `data`).
    pub fn payload(&self) -> serde_json::Value {
        serde_json::json!({
            "event_id": self.event_id,
            "challenge_id": self.challenge_id,
            "tenant": self.tenant,
            "channel": self.channel,
            "kind": self.kind,
            "to": self.to.e164(),
            "code": self.code,
            "text": self.text(),
            "expires_at": self.expires_at,
        })
    }

    /// The human text (what an SMS would say).
    pub fn text(&self) -> String {
        format!(
            "Your verification code is {}. It expires in a few minutes. Never share it.",
            self.code
        )
    }
}

/// The message did not reach the gateway after every attempt.
#[derive(Debug, thiserror::Error)]
#[error("delivery failed after {attempts} attempt(s): {last}")]
pub struct DeliveryError {
    /// Attempts made.
    pub attempts: u32,
    /// The last failure (status or transport error; never the payload).
    pub last: String,
}

/// Delivers messages.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    /// Delivers one message, retrying as the implementation sees fit.
    async fn send(&self, message: &Message) -> Result<(), DeliveryError>;

    /// A short name for logs.
    fn describe(&self) -> String;
}
