//! Integration tests of phone-proof, served whole on 127.0.0.1:0, against the in-memory store and real Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common_endpoints;
mod flow;
mod helpers;
mod keys;
mod limits;
mod redis_ops;
mod store_model;
mod traces;
mod webhook;
