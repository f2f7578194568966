//! Host-free core: everything here runs natively under `cargo test`.
pub mod calibration;
pub mod capture;
pub mod decision;
pub mod embed;
pub mod entry;
pub mod flow;
pub mod index;
pub mod key;
pub mod metrics;
pub mod policy;
pub mod request;
pub mod resp;
pub mod sse;
pub mod store_job;
pub mod verify;
