//! Stored entries rendered for a hit (JSON and SSE replay).
//! The check and the input layout: `semantic_cache::core::fuzz_checks::entry`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| semantic_cache::core::fuzz_checks::entry(data));
