//! The in-filter model's WordPiece tokenizer on arbitrary text.
//! The check and the input layout: `semantic_cache::core::fuzz_checks::tokenizer`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| semantic_cache::core::fuzz_checks::tokenizer(data));
