//! SSE streams in any chunking: same events as the whole stream.
//! The check and the input layout: `semantic_cache::core::fuzz_checks::sse`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| semantic_cache::core::fuzz_checks::sse(data));
