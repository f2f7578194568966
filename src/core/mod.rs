//! Host-free core: everything here runs natively under `cargo test`.
pub mod api;
pub mod bypass;
pub mod calibration;
pub mod capture;
pub mod compat;
pub mod decision;
pub mod embed;
pub mod entry;
pub mod facts;
pub mod flow;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_checks;
#[cfg(test)]
mod fuzz_regressions;
pub mod headers;
pub mod key;
pub mod log;
pub mod metrics;
pub mod panic_log;
pub mod policy;
pub mod purge;
pub mod redis;
pub mod request;
pub mod savings;
pub mod sse;
pub mod verify;
