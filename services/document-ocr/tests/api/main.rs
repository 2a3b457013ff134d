//! Integration tests of document-ocr, served whole on 127.0.0.1:0, with real Tesseract over generated documents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod captures;
mod common_endpoints;
mod documents;
mod helpers;
