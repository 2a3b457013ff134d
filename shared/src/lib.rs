//! The shared kernel of the identity-verification suite.
//!
//! Every service builds a [`kernel::Kernel`] from its [`config::CommonConfig`], adds its routes and calls
//! [`kernel::assemble`]. The kernel owns what the contracts in `DESIGN.md` require of all of them: the
//! [`verdict`] schema, [`error`] (problem+json), [`audit`] tokens and ledger, residency-checked artifact
//! [`store`]s, gateway [`auth`], rate [`limits`], and [`telemetry`]/[`metrics`].

pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod digest;
pub mod error;
pub mod fsutil;
pub mod http;
#[cfg(feature = "imaging")]
pub mod imaging;
pub mod kernel;
pub mod limits;
pub mod metrics;
pub mod secret;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod verdict;
pub mod webhook;
pub mod workers;

pub use error::{ApiError, ErrorCode};
pub use kernel::Kernel;
