//! Request bodies as the flow parses them (byte 0: path, byte 1: settings).
//! The check and the input layout: `semantic_cache::core::fuzz_checks::request`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| semantic_cache::core::fuzz_checks::request(data));
