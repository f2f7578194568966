//! The verifier and the canonical form on arbitrary text.
//! The check and the input layout: `semantic_cache::core::fuzz_checks::verify`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| semantic_cache::core::fuzz_checks::verify(data));
