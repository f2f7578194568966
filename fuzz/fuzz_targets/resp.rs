//! RESP2 reply streams from Redis: any garbage, any split, every reader.
//! The check and the input layout: `semantic_cache::core::fuzz_checks::resp_stream`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| semantic_cache::core::fuzz_checks::resp_stream(data));
