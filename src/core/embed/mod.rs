//! Embedding: remote provider wire formats, the in-filter static table (`static_model`, feature `static-model`
//! embeds the table) and the in-filter transformer (feature `local-model`).
pub mod bert_tokenizer;
#[cfg(feature = "local-model")]
pub mod local;
#[cfg(not(target_arch = "wasm32"))]
pub mod model_meta;
pub mod provider;
pub mod static_model;

/// Scales `v` to unit length (cosine distance on unit vectors is what the index and the
/// thresholds assume). `false`, and `v` unchanged, when its norm is zero or not finite.
pub fn l2_normalize(v: &mut [f32]) -> bool {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_finite() || norm <= f32::EPSILON {
        return false;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn l2_normalize_scales_or_refuses() {
        let mut v = vec![3.0f32, 4.0];
        assert!(super::l2_normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = vec![0.0f32; 4];
        assert!(!super::l2_normalize(&mut z));
        assert!(!super::l2_normalize(&mut [f32::NAN, 1.0]));
    }
}
