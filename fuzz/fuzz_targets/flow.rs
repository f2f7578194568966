//! The whole state machine under a fuzzer-chosen sequence of host events.
//! The check and the input layout: `semantic_cache::core::fuzz_checks::flow`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| semantic_cache::core::fuzz_checks::flow(data));
