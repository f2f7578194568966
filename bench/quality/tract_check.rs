//! Standalone check that tract-onnx 0.23.9 (the filter's version) loads a candidate from .local/models/<name>/
//! the way src/core/embed/local.rs does, and prints the mean-pooled, L2-normalised embedding of each stdin line.
//! Not part of the crate. Build it in a scratch crate (deps: tract-onnx = "=0.23.9", tokenizers = { version =
//! "=0.23.2", default-features = false, features = ["fancy-regex"] }), then:
//!   tract_check .local/models/<name> < texts.txt > tract.jsonl   (compare with onnxruntime; see README.md)
// Loads an ONNX sentence encoder the way src/core/embed/local.rs does and prints the pooled, normalised
// embedding of each line of stdin as JSON arrays (one per line).
use std::io::BufRead;
use tract_onnx::prelude::*;
use tokenizers::Tokenizer;
fn main() -> TractResult<()> {
    let dir = std::env::args().nth(1).expect("model dir");
    let mut model = tract_onnx::onnx().model_for_path(format!("{dir}/model.onnx"))?;
    let mut kinds = vec![];
    for o in model.input_outlets()?.to_vec() { kinds.push(model.node(o.node).name.clone()); }
    let outs = model.output_outlets()?.to_vec();
    let chosen = outs.iter().copied().find(|o| model.node(o.node).name == "last_hidden_state"
        || model.outlet_label(*o).is_some_and(|l| l == "last_hidden_state")).unwrap_or(outs[0]);
    model.select_output_outlets(&[chosen])?;
    let s = model.sym("S");
    for ix in 0..kinds.len() { model = model.with_input_fact(ix, i64::fact(&[1.to_dim(), s.to_dim()]).into())?; }
    let plan = model.into_optimized()?.into_runnable()?;
    let mut tok = Tokenizer::from_file(format!("{dir}/tokenizer.json")).unwrap();
    tok.with_padding(None);
    let stdin = std::io::stdin();
    let t0 = std::time::Instant::now(); let mut n = 0;
    for line in stdin.lock().lines() {
        let line = line?;
        let ids: Vec<i64> = tok.encode(line.as_str(), true).unwrap().get_ids().iter().map(|&x| x as i64).collect();
        let len = ids.len();
        let mut inputs = tvec![];
        for k in &kinds {
            let v: Vec<i64> = match k.as_str() { "input_ids" => ids.clone(), "attention_mask" => vec![1; len], _ => vec![0; len] };
            inputs.push(tract_ndarray::Array2::from_shape_vec((1, len), v)?.into_tvalue());
        }
        let out = plan.run(inputs)?;
        let a = out[0].to_plain_array_view::<f32>()?;
        let d = a.shape()[2];
        let mut m = vec![0f32; d];
        for t in 0..a.shape()[1] { for j in 0..d { m[j] += a[[0, t, j]]; } }
        let norm = m.iter().map(|x| x * x).sum::<f32>().sqrt();
        let v: Vec<String> = m.iter().map(|x| format!("{:.7}", x / norm)).collect();
        println!("[{}]", v.join(","));
        n += 1;
    }
    eprintln!("{n} embeds, {:.2} ms/embed (native)", t0.elapsed().as_secs_f64() * 1000.0 / n.max(1) as f64);
    Ok(())
}
