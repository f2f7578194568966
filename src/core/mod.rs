//! Host-free core: everything here runs natively under `cargo test`.
pub mod bypass;
pub mod calibration;
pub mod capture;
pub mod decision;
pub mod embed;
pub mod entry;
pub mod flow;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_checks;
#[cfg(test)]
mod fuzz_regressions;
pub mod headers;
pub mod key;
pub mod log;
pub mod metrics;
pub mod policy;
pub mod redis;
pub mod request;
pub mod sse;
pub mod verify;
