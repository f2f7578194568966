//! Embedding provider responses (status, expected dimensions, body).
//! The check and the input layout: `semantic_cache::core::fuzz_checks::embed_response`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| semantic_cache::core::fuzz_checks::embed_response(data));
