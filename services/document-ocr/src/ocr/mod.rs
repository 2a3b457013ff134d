//! Reading the MRZ off an image with Tesseract: grey, contrast-stretched crops of the likely band (and the
//! whole page, in four rotations when needed), OCRed with the MRZ language data and a `A–Z 0–9 <` whitelist in
//! single-block mode, then the lines that fit an MRZ format picked out of the text.

pub mod band;
pub mod engine;
pub mod find;
pub mod geometry;
pub mod hocr;
pub mod page;
pub mod prepare;
pub mod reader;
pub mod viz;
