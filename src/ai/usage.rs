//! What a call may use and what it used: admission before a call (budgets
//! and unpriced models, per target, so a fallback outside a spent budget
//! still runs) and the `portico_ai_*` metrics after it, whose model labels
//! are bounded: a client naming endless `provider/model`s gets `(other)`.

use super::dispatch::Failure;
use super::registry::{AiRegistry, Target};
use super::Usage;
use crate::config::ai::Unpriced;
use crate::error::GatewayError;
use crate::telemetry::labels::LabelBudget;
use crate::telemetry::metrics::METRICS;
use once_cell::sync::Lazy;

/// The targets `consumer` may call now, in order: those no spent budget
/// covers and, unless unpriced models are allowed, those with a price or no
/// USD budget. Err with the first reason when none is left.
pub(crate) fn admit(reg: &AiRegistry, consumer: &str, targets: Vec<Target>) -> Result<Vec<Target>, Failure> {
    let mut first: Option<Failure> = None;
    let mut admitted = Vec::with_capacity(targets.len());
    for t in targets {
        if let Some(spent) = reg.budgets.spent(consumer, &t) {
            let mut f = Failure::new(GatewayError::RateLimited, spent.message);
            f.retry_after = Some(spent.retry_after);
            first.get_or_insert(f);
            continue;
        }
        if t.price.is_none() {
            let refuse = match reg.unpriced {
                Some(Unpriced::Refuse) => true,
                Some(Unpriced::Allow) => false,
                None => reg.budgets.has_usd(consumer, &t),
            };
            if refuse {
                log::info!(
                    "ai: refused {}/{} for {consumer:?}: the model has no price",
                    t.provider.name,
                    t.model
                );
                first.get_or_insert(
                    Failure::new(
                        GatewayError::ModelUnpriced,
                        format!(
                            "model {:?} of provider {} has no price, and a USD budget cannot count it; \
                             the operator can price it in ai.prices",
                            t.model, t.provider.name
                        ),
                    )
                    .at("model"),
                );
                continue;
            }
        }
        admitted.push(t);
    }
    match first {
        Some(f) if admitted.is_empty() => Err(f),
        _ => Ok(admitted),
    }
}

/// The model names clients put in metric labels, bounded ([`LabelBudget`]).
static MODEL_LABELS: Lazy<LabelBudget> = Lazy::new(LabelBudget::new);
/// The unpriced models named in `portico_ai_unpriced_requests_total`, bounded.
static UNPRICED_LABELS: Lazy<LabelBudget> = Lazy::new(LabelBudget::new);

/// Counts tokens, cost and unpriced calls in the metrics.
pub(crate) fn record(consumer: &str, model: &str, target: &Target, usage: &Usage, usd: f64) {
    let m = &*METRICS;
    let model = MODEL_LABELS.admit(model);
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
    if target.price.is_none() {
        let c = m
            .ai_unpriced_requests_total
            .with_label_values(&[target.provider.name.as_str(), UNPRICED_LABELS.admit(&target.model)]);
        if c.get() == 0 {
            log::warn!(
                "ai: model {:?} of provider {} has no price: its calls cost $0 (price it in ai.prices)",
                target.model,
                target.provider.name
            );
        }
        c.inc();
    }
}
