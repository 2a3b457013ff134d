#![allow(clippy::unwrap_used, clippy::expect_used)]
//! HTTP-level tests of the kernel: the real middleware stack, auth, stores (folder and SeaweedFS) and auditor,
//! served on 127.0.0.1:0 with a probe route that does what every verification route does (authenticate,
//! fetch one artifact under the residency rules, issue a verdict).

mod audit;
mod auth;
mod gateway_keys;
mod helpers;
mod postgres;
mod postgres_tls;
mod problems;
mod residency;
mod shared_limits;
