//! Reading the MRZ off an image with Tesseract: the page located and rectified, the MRZ band found on the side
//! its geometry points to, read glyph by glyph (confidences and alternatives from hOCR) with the MRZ language
//! data and an `A–Z 0–9 <` whitelist and again cell by cell against OCR-B's own glyphs (`ocrb`), several passes
//! merged, names checked against the visual zone; all within a time budget. `reader` is the entry point.

pub mod band;
pub mod engine;
pub mod find;
pub mod geometry;
pub mod hocr;
pub mod merge;
pub mod ocrb;
pub mod page;
pub mod prepare;
pub mod reader;
pub mod viz;
