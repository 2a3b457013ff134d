//! Integration tests of face-match, served whole on 127.0.0.1:0, with the real models on ONNX Runtime and real
//! photos from registry packages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agreement;
mod bad_input;
mod common_endpoints;
mod framing;
mod helpers;
mod matching;
mod models;
mod traces;
