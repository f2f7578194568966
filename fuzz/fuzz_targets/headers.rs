//! The request headers the filter interprets.
//! The check and the input layout: `semantic_cache::core::fuzz_checks::headers`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| semantic_cache::core::fuzz_checks::headers(data));
