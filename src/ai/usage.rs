//! Usage and cost: the price table (conf/models.yaml, built in, overridable),
//! the cost of one call, the `portico_ai_*` metrics, and budgets per consumer
//! (and model): tokens per minute, USD per day and per month, checked before
//! a call and charged after it.
//!
//! Budget windows are calendar windows in UTC (the minute, the day, the
//! month). Each budget's counters are two atomics per window: the window's
//! index and its total; a request reads them without a lock. A call that is
//! in flight when a budget runs out is still charged, so a budget can be
//! overrun by the calls that were already admitted.

use super::Usage;
use crate::config::ai::{AiConfig, BudgetConfig, PriceConfig};
use crate::config::Issues;
use crate::telemetry::metrics::METRICS;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const BUILT_IN_PRICES: &str = include_str!("../../conf/models.yaml");

#[derive(Debug, Default)]
pub struct Prices {
    /// kind -> (model, price), longest model name first.
    table: HashMap<String, Vec<(String, PriceConfig)>>,
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
        let parsed: BTreeMap<String, BTreeMap<String, PriceConfig>> = if text.trim().is_empty() {
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
        let mut table = HashMap::new();
        for (kind, models) in parsed {
            let mut list: Vec<(String, PriceConfig)> = models.into_iter().collect();
            list.sort_by_key(|(model, _)| std::cmp::Reverse(model.len()));
            table.insert(kind, list);
        }
        Prices {
            table,
            overrides: cfg.prices.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }

    /// The price of `model` on a provider named `provider` of `kind`.
    pub fn price(&self, provider: &str, kind: &str, model: &str) -> Option<PriceConfig> {
        if let Some(p) = self
            .overrides
            .get(&format!("{provider}/{model}"))
            .or_else(|| self.overrides.get(model))
        {
            return Some(*p);
        }
        let find = |list: &Vec<(String, PriceConfig)>| {
            list.iter()
                .find(|(m, _)| m == model)
                .or_else(|| list.iter().find(|(m, _)| model.starts_with(m.as_str())))
                .map(|(_, p)| *p)
        };
        if let Some(p) = self.table.get(kind).and_then(find) {
            return Some(p);
        }
        self.table.values().find_map(find)
    }
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

/// Counts tokens and cost in the metrics.
pub(crate) fn record(consumer: &str, model: &str, usage: &Usage, usd: f64) {
    let m = &*METRICS;
    for (kind, n) in [
        ("prompt", usage.prompt_tokens),
        ("completion", usage.completion_tokens),
        ("cached", usage.cached_tokens),
    ] {
        if n > 0 {
            m.ai_tokens_total.with_label_values(&[consumer, model, kind]).inc_by(n);
        }
    }
    if usd > 0.0 {
        m.ai_cost_usd_total.with_label_values(&[consumer, model]).inc_by(usd);
    }
}

/// Calendar windows in UTC.
#[derive(Debug, Clone, Copy)]
enum Period {
    Minute,
    Day,
    Month,
}

fn window_index(period: Period, unix_secs: u64) -> u64 {
    match period {
        Period::Minute => unix_secs / 60,
        Period::Day => unix_secs / 86_400,
        Period::Month => {
            let (y, m) = year_month(unix_secs / 86_400);
            y * 12 + m
        }
    }
}

/// (year, month 0-11) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
fn year_month(days: u64) -> (u64, u64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y.max(0) as u64, (m - 1) as u64)
}

/// One window's total: the window index and the amount, both atomics.
#[derive(Debug, Default)]
struct Window {
    index: AtomicU64,
    amount: AtomicU64,
}

impl Window {
    fn current(&self, index: u64) -> u64 {
        if self.index.load(Ordering::Acquire) == index {
            self.amount.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    fn add(&self, index: u64, n: u64) {
        let seen = self.index.load(Ordering::Acquire);
        if seen != index
            && self
                .index
                .compare_exchange(seen, index, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.amount.store(0, Ordering::Relaxed);
        }
        self.amount.fetch_add(n, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct BudgetState {
    tokens_minute: Window,
    /// Micro-USD.
    usd_day: Window,
    usd_month: Window,
}

#[derive(Debug)]
struct Budget {
    cfg: BudgetConfig,
    state: Arc<BudgetState>,
}

#[derive(Debug, Default)]
pub struct Budgets {
    list: Vec<Budget>,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Budgets {
    /// Budgets whose settings are unchanged keep their counters across reloads.
    pub fn build(cfgs: &[BudgetConfig], previous: Option<&Budgets>, issues: &mut Issues) -> Budgets {
        let mut list = Vec::new();
        for (i, c) in cfgs.iter().enumerate() {
            if c.tokens_per_minute.is_none() && c.usd_per_day.is_none() && c.usd_per_month.is_none() {
                issues.add(
                    format!("ai.budgets[{i}]"),
                    "give tokens_per_minute, usd_per_day or usd_per_month",
                );
            }
            if [c.usd_per_day, c.usd_per_month]
                .iter()
                .flatten()
                .any(|v| !(v.is_finite() && *v >= 0.0))
            {
                issues.add(format!("ai.budgets[{i}]"), "USD budgets must be zero or more");
            }
            let state = previous
                .and_then(|p| p.list.iter().find(|b| b.cfg == *c))
                .map_or_else(Arc::default, |b| Arc::clone(&b.state));
            list.push(Budget { cfg: c.clone(), state });
        }
        Budgets { list }
    }

    fn matching<'a>(&'a self, consumer: &'a str, model: &'a str) -> impl Iterator<Item = &'a Budget> + 'a {
        self.list
            .iter()
            .filter(move |b| b.cfg.consumer == consumer && b.cfg.model.as_deref().is_none_or(|m| m == model))
    }

    /// Err with the message naming the spent budget.
    pub fn check(&self, consumer: &str, model: &str) -> Result<(), String> {
        let now = now_secs();
        for b in self.matching(consumer, model) {
            let scope = match &b.cfg.model {
                Some(m) => format!("consumer {consumer:?} on model {m:?}"),
                None => format!("consumer {consumer:?}"),
            };
            if let Some(limit) = b.cfg.tokens_per_minute {
                if b.state.tokens_minute.current(window_index(Period::Minute, now)) >= limit {
                    return Err(format!(
                        "token budget of {limit} tokens per minute for {scope} is spent"
                    ));
                }
            }
            for (limit, window, period, name) in [
                (b.cfg.usd_per_day, &b.state.usd_day, Period::Day, "daily"),
                (b.cfg.usd_per_month, &b.state.usd_month, Period::Month, "monthly"),
            ] {
                if let Some(limit) = limit {
                    let spent = window.current(window_index(period, now)) as f64 / 1e6;
                    if spent >= limit {
                        return Err(format!(
                            "{name} budget of ${limit:.2} for {scope} is spent (${spent:.4} used)"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Charges one finished call.
    pub fn charge(&self, consumer: &str, model: &str, usage: &Usage, usd: f64) {
        let now = now_secs();
        let micro = (usd * 1e6).round().max(0.0) as u64;
        for b in self.matching(consumer, model) {
            b.state
                .tokens_minute
                .add(window_index(Period::Minute, now), usage.total());
            b.state.usd_day.add(window_index(Period::Day, now), micro);
            b.state.usd_month.add(window_index(Period::Month, now), micro);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        assert_eq!(year_month(0), (1970, 0));
        // 2026-11-27 is day 20784.
        assert_eq!(year_month(20_784), (2026, 10));
        assert_eq!(year_month(20_788), (2026, 11));
        assert_eq!(year_month(20_819), (2027, 0));
    }

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

    #[test]
    fn built_in_table_parses_and_matches_prefixes() {
        let cfg = AiConfig::default();
        let positions = crate::config::Positions::default();
        let mut issues = Issues::new("t", &positions);
        let prices = Prices::load(&cfg, Path::new("."), &mut issues);
        assert!(issues.finish().is_ok());
        let p = prices.price("claude", "anthropic", "claude-sonnet-4-20250514").unwrap();
        assert_eq!(p.input, 3.0);
        assert!(prices.price("x", "openai", "gpt-4o-mini-2024").unwrap().input < 1.0);
        assert!(prices.price("local", "vllm", "my-finetune").is_none());
    }
}
