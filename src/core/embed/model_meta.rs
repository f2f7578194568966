//! The `meta.json` beside a model's `model.onnx` (written by scripts/models/*): only its `name` is
//! read. One definition for build.rs (which includes this file by `#[path]` to name the embedded
//! model) and for embed_server (which names a model loaded with `--model-dir`).
use std::path::Path;

use serde::Deserialize;

/// The fields of `meta.json` this crate reads; the scripts write more (dims, pooling, ...), ignored here.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ModelMeta {
    #[serde(default)]
    pub name: Option<String>,
}

impl ModelMeta {
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// The model's name: `meta.json`'s `name`, else the directory's name, else "local". A missing or
/// unreadable `meta.json` is not an error (it is optional).
pub fn model_name(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("meta.json"))
        .ok()
        .and_then(|s| ModelMeta::parse(&s).ok())
        .and_then(|m| m.name)
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "local".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_name_and_ignores_other_fields() {
        let m = ModelMeta::parse(r#"{"name": "all-MiniLM-L6-v2-q8", "dimensions": 384, "pooling": "mean"}"#);
        assert_eq!(m.ok().and_then(|m| m.name).as_deref(), Some("all-MiniLM-L6-v2-q8"));
        assert_eq!(ModelMeta::parse(r#"{"dimensions": 384}"#).ok(), Some(ModelMeta { name: None }));
        assert!(ModelMeta::parse(r#"{"name": 3}"#).is_err());
    }

    #[test]
    fn falls_back_to_the_directory_name() {
        let dir = std::env::temp_dir().join(format!("semcache-meta-{}", std::process::id()));
        let named = dir.join("some-model");
        std::fs::create_dir_all(&named).ok();
        assert_eq!(model_name(&named), "some-model");
        std::fs::write(named.join("meta.json"), r#"{"name": "from-meta"}"#).ok();
        assert_eq!(model_name(&named), "from-meta");
        std::fs::write(named.join("meta.json"), "not json").ok();
        assert_eq!(model_name(&named), "some-model");
        std::fs::remove_dir_all(&dir).ok();
    }
}
