//! [`ServedEmbedder`]: an [`Embedder`] over an OpenAI-compatible `/embeddings` endpoint
//! (llama.cpp's `llama-server --embeddings`, text-embeddings-inference, `docqa serve`). Its id
//! names the server, the model and the dimension, so an index it built is never read with
//! locally computed vectors (the index header refuses a mismatched embedder).

use serde_json::{json, Value};

use super::{EmbedError, Embedder};
use crate::served::{Client, ServedError, ServedOptions};

/// Texts per request.
const BATCH: usize = 32;

#[derive(Debug)]
pub struct ServedEmbedder {
    client: Client,
    /// The model id sent with each request (`None`: the server's own).
    api_model: Option<String>,
    dim: usize,
    id: String,
}

impl ServedEmbedder {
    /// Connects to the API at `base_url` and embeds one text to learn the model's name (as the
    /// reply gives it) and dimension.
    pub fn connect(
        base_url: &str,
        api_model: Option<&str>,
        opts: ServedOptions,
    ) -> Result<ServedEmbedder, EmbedError> {
        let mut e = ServedEmbedder {
            client: Client::new(base_url, opts),
            api_model: api_model.map(str::to_string),
            dim: 0,
            id: String::new(),
        };
        let (vectors, model) = e.request(&["docqa dimension probe"])?;
        e.dim = vectors[0].len();
        let model = api_model
            .map(str::to_string)
            .or(model)
            .unwrap_or_else(|| "default".into());
        e.id = format!("served:{}#{model}@{}d", e.client.base(), e.dim);
        Ok(e)
    }

    /// The API's base URL.
    pub fn base_url(&self) -> &str {
        self.client.base()
    }

    fn request(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, Option<String>), EmbedError> {
        let mut body = json!({ "input": texts });
        if let Some(m) = &self.api_model {
            body["model"] = json!(m);
        }
        let model = self.api_model.as_deref().unwrap_or("default");
        let v = self.client.post("/embeddings", &body, model)?;
        let bad = |why: String| {
            EmbedError::from(ServedError::BadReply {
                url: format!("{}/embeddings", self.client.base()),
                why,
            })
        };
        let data = v
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `data` list".into()))?;
        let mut out = vec![Vec::new(); texts.len()];
        for (pos, item) in data.iter().enumerate() {
            let i = item
                .get("index")
                .and_then(Value::as_u64)
                .map_or(pos, |i| i as usize);
            let vector: Vec<f32> = item
                .get("embedding")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("item {pos} has no `embedding`")))?
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("item {pos} holds a non-number")))?;
            *out.get_mut(i)
                .ok_or_else(|| bad(format!("index {i} past the {} texts", texts.len())))? =
                normalised(vector);
        }
        if let Some(i) = out.iter().position(Vec::is_empty) {
            return Err(bad(format!("no vector for text {i}")));
        }
        if self.dim > 0 {
            if let Some(v) = out.iter().find(|v| v.len() != self.dim) {
                return Err(bad(format!(
                    "a {}-d vector from a {}-d model",
                    v.len(),
                    self.dim
                )));
            }
        }
        let model = v.get("model").and_then(Value::as_str).map(str::to_string);
        Ok((out, model))
    }
}

/// `v` scaled to length 1 (the trait's contract; servers differ on whether they normalise).
fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

impl Embedder for ServedEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            out.extend(self.request(batch)?.0);
        }
        Ok(out)
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn id(&self) -> &str {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn vectors_are_scaled_to_unit_length() {
        let v = super::normalised(vec![3.0, 4.0]);
        assert_eq!(v, vec![0.6, 0.8]);
        assert_eq!(super::normalised(vec![0.0, 0.0]), vec![0.0, 0.0]);
    }
}
