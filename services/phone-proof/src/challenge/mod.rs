//! The domain: challenges, their codes, and the rules between a gateway's request and the store.

pub mod code;
pub mod keys;
pub mod model;
pub mod phone;
pub mod service;
