//! The in-filter embedding model, loaded once per VM (one VM per worker thread).

#[cfg(feature = "local-model")]
mod imp {
    use std::cell::RefCell;

    use crate::core::embed::local::LocalEmbedder;

    thread_local! {
        static MODEL: RefCell<Option<LocalEmbedder>> = const { RefCell::new(None) };
    }

    pub fn load(max_tokens: usize, dims: usize) -> Result<(), String> {
        if MODEL.with(|m| m.borrow().is_some()) {
            return Ok(());
        }
        let e = LocalEmbedder::embedded_with_max_tokens(max_tokens).map_err(|e| e.to_string())?;
        if e.dimensions() != dims {
            return Err(format!(
                "the embedded model `{}` has {} dimensions, embedding.dimensions says {dims}",
                e.model_name(),
                e.dimensions()
            ));
        }
        MODEL.with(|m| *m.borrow_mut() = Some(e));
        Ok(())
    }

    pub fn embed(text: &str) -> Result<Vec<f32>, String> {
        MODEL.with(|m| match m.borrow().as_ref() {
            Some(e) => e.embed(text).map_err(|e| e.to_string()),
            None => Err("local model not loaded".into()),
        })
    }
}

#[cfg(not(feature = "local-model"))]
mod imp {
    const MISSING: &str = "this build of the filter has no local model (build with `make build-local`)";

    pub fn load(_max_tokens: usize, _dims: usize) -> Result<(), String> {
        Err(MISSING.into())
    }

    pub fn embed(_text: &str) -> Result<Vec<f32>, String> {
        Err(MISSING.into())
    }
}

pub use imp::{embed, load};
