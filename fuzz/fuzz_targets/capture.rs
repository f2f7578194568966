//! A miss's response captured read by read and judged for storing.
//! The check and the input layout: `semantic_cache::core::fuzz_checks::capture`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| semantic_cache::core::fuzz_checks::capture(data));
