//! The in-filter embedding model, loaded once per VM (one VM per worker thread) on the first
//! request that needs it: Envoy's main-thread VMs never serve requests, so loading at configure
//! time would cost their memory and delay start for nothing.
//!
//! Which model: the transformer when the build has feature `local-model` (scripts/build-local.sh), else the
//! static table of feature `static-model` (the default build), else none (`local` requests BYPASS).

#[cfg(feature = "local-model")]
mod imp {
    use std::cell::RefCell;

    use crate::core::embed::local::LocalEmbedder;

    thread_local! {
        /// `None` until the first embed; then the model or the load error (not retried).
        static MODEL: RefCell<Option<Result<LocalEmbedder, String>>> = const { RefCell::new(None) };
    }

    /// Cheap check at configure time: is a model compiled in at all?
    pub fn check() -> Result<String, String> {
        LocalEmbedder::embedded_model_name()
            .map(str::to_string)
            .ok_or_else(|| "this build has no embedded model (build with `make build-local`)".to_string())
    }

    fn load(max_tokens: usize, dims: usize) -> Result<LocalEmbedder, String> {
        let e = LocalEmbedder::embedded_with_max_tokens(max_tokens).map_err(|e| e.to_string())?;
        if e.dimensions() != dims {
            return Err(format!(
                "the embedded model `{}` has {} dimensions, embedding.dimensions says {dims}",
                e.model_name(),
                e.dimensions()
            ));
        }
        Ok(e)
    }

    /// Embeds `text`; the first call on this VM loads the model (`Err` if that failed).
    pub fn embed(text: &str, max_tokens: usize, dims: usize) -> Result<Vec<f32>, String> {
        MODEL.with(|m| {
            let mut m = m.borrow_mut();
            let model = m.get_or_insert_with(|| load(max_tokens, dims));
            match model {
                Ok(e) => e.embed(text).map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            }
        })
    }
}

#[cfg(all(feature = "static-model", not(feature = "local-model")))]
mod imp {
    use std::cell::RefCell;

    use crate::core::embed::static_model::StaticEmbedder;

    thread_local! {
        /// `None` until the first embed; then the table or the load error (not retried).
        static MODEL: RefCell<Option<Result<StaticEmbedder<'static>, String>>> = const { RefCell::new(None) };
    }

    pub fn check() -> Result<String, String> {
        StaticEmbedder::embedded_model_name().map(str::to_string).ok_or_else(|| {
            "this build has no embedded static model (run scripts/build-static.sh, then `make build`)".to_string()
        })
    }

    fn load(max_tokens: usize, dims: usize) -> Result<StaticEmbedder<'static>, String> {
        let e = StaticEmbedder::embedded(max_tokens).map_err(|e| e.to_string())?;
        if e.dimensions() != dims {
            return Err(format!(
                "the embedded model `{}` has {} dimensions, embedding.dimensions says {dims}",
                e.model_name(),
                e.dimensions()
            ));
        }
        Ok(e)
    }

    /// Embeds `text`; the first call on this VM loads the table (`Err` if that failed).
    pub fn embed(text: &str, max_tokens: usize, dims: usize) -> Result<Vec<f32>, String> {
        MODEL.with(|m| {
            let mut m = m.borrow_mut();
            match m.get_or_insert_with(|| load(max_tokens, dims)) {
                Ok(e) => e.embed(text).map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            }
        })
    }
}

#[cfg(not(any(feature = "local-model", feature = "static-model")))]
mod imp {
    const MISSING: &str = "this build of the filter has no local model (build with `make build-local`)";

    pub fn check() -> Result<String, String> {
        Err(MISSING.into())
    }

    pub fn embed(_text: &str, _max_tokens: usize, _dims: usize) -> Result<Vec<f32>, String> {
        Err(MISSING.into())
    }
}

pub use imp::{check, embed};
