//! The in-filter embedding model, loaded once per VM (one VM per worker thread) on the first
//! request that needs it: Envoy's main-thread VMs never serve requests, so loading at configure
//! time would cost their memory and delay start for nothing.
//!
//! Which model: the transformer when the build has feature `local-model` (scripts/build-local.sh), else the
//! static table of feature `static-model` (the default build), else none (`local` requests BYPASS).

use std::cell::RefCell;

/// What the host needs of an in-filter model, whichever the build compiled in.
trait Model {
    fn embed_text(&self, text: &str) -> Result<Vec<f32>, String>;
    fn dims(&self) -> usize;
    fn name(&self) -> &str;
}

#[cfg(feature = "local-model")]
mod compiled {
    use super::Model;
    use crate::core::embed::local::LocalEmbedder;

    impl Model for LocalEmbedder {
        fn embed_text(&self, text: &str) -> Result<Vec<f32>, String> {
            self.embed(text).map_err(|e| e.to_string())
        }
        fn dims(&self) -> usize {
            self.dimensions()
        }
        fn name(&self) -> &str {
            self.model_name()
        }
    }

    pub const MISSING: &str = "this build has no embedded model (build with `make build-local`)";

    pub fn name() -> Option<&'static str> {
        LocalEmbedder::embedded_model_name()
    }

    pub fn load(max_tokens: usize) -> Result<Box<dyn Model>, String> {
        Ok(Box::new(LocalEmbedder::embedded_with_max_tokens(max_tokens).map_err(|e| e.to_string())?))
    }
}

#[cfg(all(feature = "static-model", not(feature = "local-model")))]
mod compiled {
    use super::Model;
    use crate::core::embed::static_model::StaticEmbedder;

    impl Model for StaticEmbedder<'static> {
        fn embed_text(&self, text: &str) -> Result<Vec<f32>, String> {
            self.embed(text).map_err(|e| e.to_string())
        }
        fn dims(&self) -> usize {
            self.dimensions()
        }
        fn name(&self) -> &str {
            self.model_name()
        }
    }

    pub const MISSING: &str =
        "this build has no embedded static model (run scripts/build-static.sh, then `make build`)";

    pub fn name() -> Option<&'static str> {
        StaticEmbedder::embedded_model_name()
    }

    pub fn load(max_tokens: usize) -> Result<Box<dyn Model>, String> {
        Ok(Box::new(StaticEmbedder::embedded(max_tokens).map_err(|e| e.to_string())?))
    }
}

#[cfg(not(any(feature = "local-model", feature = "static-model")))]
mod compiled {
    use super::Model;

    pub const MISSING: &str =
        "this build of the filter has no local model (build with `make build` or `make build-local`)";

    pub fn name() -> Option<&'static str> {
        None
    }

    pub fn load(_max_tokens: usize) -> Result<Box<dyn Model>, String> {
        Err(MISSING.into())
    }
}

thread_local! {
    /// `None` until the first embed; then the model or the load error (not retried).
    static MODEL: RefCell<Option<Result<Box<dyn Model>, String>>> = const { RefCell::new(None) };
}

/// Cheap check at configure time: is a model compiled in at all? Its name if so.
pub fn check() -> Result<String, String> {
    compiled::name().map(str::to_string).ok_or_else(|| compiled::MISSING.to_string())
}

fn load(max_tokens: usize, dims: usize) -> Result<Box<dyn Model>, String> {
    let m = compiled::load(max_tokens)?;
    if m.dims() != dims {
        return Err(format!(
            "the embedded model `{}` has {} dimensions, embedding.dimensions says {dims}",
            m.name(),
            m.dims()
        ));
    }
    Ok(m)
}

/// Embeds `text`; the first call on this VM loads the model (`Err` if that failed).
pub fn embed(text: &str, max_tokens: usize, dims: usize) -> Result<Vec<f32>, String> {
    MODEL.with(|m| match m.borrow_mut().get_or_insert_with(|| load(max_tokens, dims)) {
        Ok(model) => model.embed_text(text),
        Err(e) => Err(e.clone()),
    })
}
