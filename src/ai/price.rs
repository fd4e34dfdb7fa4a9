//! Model prices: the table (conf/models.yaml, built in; `ai.prices_file`
//! replaces it, `ai.prices` overrides single entries) and the cost of one
//! call.
//!
//! A model is priced by its exact id, or by the id it is a dated or
//! `-latest` version of (`gpt-4o-2024-08-06` and `claude-sonnet-4-20250514`
//! are priced as `gpt-4o` and `claude-sonnet-4`), never by a shorter
//! model's prefix: `o3-pro` is not `o3`, and a model the table does not name
//! has no price (see [`super::usage::admit`] for what then happens). A vendor's
//! `org/model` id (OpenRouter, Groq) is also looked up by its last segment.
//! Targets of configured aliases get their price at load; a `provider/model`
//! call is looked up when it is made.

use super::Usage;
use crate::config::ai::{AiConfig, PriceConfig};
use crate::config::Issues;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const BUILT_IN_PRICES: &str = include_str!("../../conf/models.yaml");

#[derive(Debug, Default)]
pub struct Prices {
    /// kind -> model -> price.
    table: HashMap<String, HashMap<String, PriceConfig>>,
    overrides: HashMap<String, PriceConfig>,
}

impl Prices {
    pub fn load(cfg: &AiConfig, base_dir: &Path, issues: &mut Issues) -> Prices {
        let text = match &cfg.prices_file {
            None => BUILT_IN_PRICES.to_string(),
            Some(f) => {
                let path = if f.is_absolute() { f.clone() } else { base_dir.join(f) };
                match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        issues.add("ai.prices_file", format!("cannot read {}: {e}", path.display()));
                        String::new()
                    }
                }
            }
        };
        let parsed: BTreeMap<String, HashMap<String, PriceConfig>> = if text.trim().is_empty() {
            BTreeMap::new()
        } else {
            match serde_yaml::from_str(&text) {
                Ok(t) => t,
                Err(e) => {
                    issues.add("ai.prices_file", format!("not a price table: {e}"));
                    BTreeMap::new()
                }
            }
        };
        for (k, p) in &cfg.prices {
            if [p.input, p.output, p.cached_input.unwrap_or(0.0)]
                .iter()
                .any(|v| !(v.is_finite() && *v >= 0.0))
            {
                issues.add(format!("ai.prices.{k}"), "prices must be zero or more");
            }
        }
        Prices {
            table: parsed.into_iter().collect(),
            overrides: cfg.prices.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }

    /// The price of `model` on a provider named `provider` of `kind`; None
    /// when neither the overrides nor the table name it.
    pub fn price(&self, provider: &str, kind: &str, model: &str) -> Option<PriceConfig> {
        let model = model.strip_prefix("models/").unwrap_or(model);
        if let Some(p) = self
            .overrides
            .get(&format!("{provider}/{model}"))
            .or_else(|| self.overrides.get(model))
        {
            return Some(*p);
        }
        let last = model.rsplit('/').next().unwrap_or(model);
        let names = [Some(model), undated(model), Some(last), undated(last)];
        for name in names.into_iter().flatten() {
            if let Some(p) = self.overrides.get(name) {
                return Some(*p);
            }
            if let Some(p) = self.table.get(kind).and_then(|t| t.get(name)) {
                return Some(*p);
            }
            if let Some(p) = self.table.values().find_map(|t| t.get(name)) {
                return Some(*p);
            }
        }
        None
    }
}

/// The model id a dated or `-latest` id is a version of: `gpt-4o-2024-08-06`,
/// `claude-3-5-sonnet-20241022`, `claude-opus-4@20250514` (Vertex),
/// `gpt-4-0613`, `mistral-large-2411`, `gemini-2.0-flash-001` and
/// `mistral-large-latest` lose their last part; None when the id has none.
fn undated(model: &str) -> Option<&str> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((base, date)) = model.rsplit_once('@') {
        return digits(date, 8).then_some(base);
    }
    if let Some(base) = model.strip_suffix("-latest") {
        return Some(base);
    }
    // -YYYY-MM-DD
    let parts: Vec<&str> = model.rsplitn(4, '-').collect();
    if parts.len() == 4 && digits(parts[0], 2) && digits(parts[1], 2) && digits(parts[2], 4) {
        return Some(parts[3]);
    }
    // -YYYYMMDD, -MMDD or -YYMM, -001
    let (base, last) = model.rsplit_once('-')?;
    (digits(last, 8) || digits(last, 4) || digits(last, 3)).then_some(base)
}

/// The id `model` is a version of, for matching budgets: without a Gemini
/// `models/` prefix and without a date or `-latest`.
pub(crate) fn canonical_model(model: &str) -> &str {
    let model = model.strip_prefix("models/").unwrap_or(model);
    undated(model).unwrap_or(model)
}

/// USD for one call's usage at `price` (per million tokens).
pub(crate) fn cost(usage: &Usage, price: Option<PriceConfig>) -> f64 {
    let Some(p) = price else { return 0.0 };
    let cached = usage.cached_tokens.min(usage.prompt_tokens);
    let fresh = usage.prompt_tokens - cached;
    (fresh as f64 * p.input
        + cached as f64 * p.cached_input.unwrap_or(p.input)
        + usage.completion_tokens as f64 * p.output)
        / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs() {
        let p = PriceConfig {
            input: 3.0,
            output: 15.0,
            cached_input: Some(0.3),
        };
        let u = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 100_000,
            cached_tokens: 500_000,
            reasoning_tokens: 0,
        };
        let c = cost(&u, Some(p));
        assert!((c - (1.5 + 0.15 + 1.5)).abs() < 1e-9, "{c}");
        assert_eq!(cost(&u, None), 0.0);
    }

    fn built_in() -> Prices {
        let cfg = AiConfig::default();
        let positions = crate::config::Positions::default();
        let mut issues = Issues::new("t", &positions);
        let prices = Prices::load(&cfg, Path::new("."), &mut issues);
        assert!(issues.finish().is_ok());
        prices
    }

    #[test]
    fn exact_ids_and_their_dated_versions() {
        let prices = built_in();
        let input = |kind: &str, model: &str| prices.price("p", kind, model).map(|p| p.input);
        assert_eq!(input("anthropic", "claude-sonnet-4-20250514"), Some(3.0));
        assert_eq!(input("anthropic", "claude-3-5-sonnet-20241022"), Some(3.0));
        assert_eq!(input("openai", "gpt-4o-2024-08-06"), Some(2.5));
        assert_eq!(input("openai", "gpt-4o-mini-2024-07-18"), Some(0.15));
        assert_eq!(input("mistral", "mistral-large-latest"), Some(2.0));
        assert_eq!(input("openrouter", "openai/gpt-4o"), Some(2.5));
        assert_eq!(input("gemini", "models/gemini-2.0-flash-001"), Some(0.10));
        // Pro and reasoning variants have their own prices, never a shorter model's.
        assert_eq!(input("openai", "o3-pro"), Some(20.0));
        assert_eq!(input("openai", "o1-pro"), Some(150.0));
        assert_eq!(input("openai", "gpt-5-pro"), Some(15.0));
        assert_eq!(input("openai", "o3-pro-2025-06-10"), Some(20.0));
        // Unknown models have no price at all.
        assert_eq!(input("openai", "o3-ultra"), None);
        assert_eq!(input("vllm", "my-finetune"), None);
    }

    #[test]
    fn the_dated_part() {
        assert_eq!(undated("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(undated("claude-opus-4@20250514"), Some("claude-opus-4"));
        assert_eq!(undated("gpt-4-0613"), Some("gpt-4"));
        assert_eq!(undated("gpt-4o"), None);
        assert_eq!(undated("o3-pro"), None);
        assert_eq!(undated("llama-3.1-8b"), None);
    }
}
