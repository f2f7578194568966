//! Policy JSON.
//! The check and the input layout: `semantic_cache::core::fuzz_checks::policy_json`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| semantic_cache::core::fuzz_checks::policy_json(data));
