//! Integration tests of phone-proof, served whole on 127.0.0.1:0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common_endpoints;
mod helpers;
