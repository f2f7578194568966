//! Everything the filter says to Redis: RESP commands and replies, the index check, the store
//! pipeline's reply check and the store job handed to the root context.
pub mod index;
pub mod nesting;
pub mod resp;
pub mod store;
pub mod store_job;
