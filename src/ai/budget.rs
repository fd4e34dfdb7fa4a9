//! Budgets per consumer, optionally for one model: tokens per minute, USD per
//! day and per month, checked before a call and charged after it.
//!
//! A budget's `model` names an alias or a `provider/model`; it is compiled at
//! load into the (provider, model) pairs it stands for, and a call is matched
//! by the provider and model actually called (after alias resolution and
//! fallback), whatever name the client used: `oai` and `openai/gpt-4o` are
//! one model, and so are its dated versions. A budget without `model` covers
//! every call of the consumer, on every route and prompt API.
//!
//! Budget windows are calendar windows in UTC (the minute, the day, the
//! month). Each budget's counters are two atomics per window: the window's
//! index and its total; a request reads them without a lock. A call that is
//! in flight when a budget runs out is still charged, so a budget can be
//! overrun by the calls that were already admitted. The counters outlive the
//! process through [`super::spend`]: a background task reads them and writes
//! what changed to a database, and a start reads them back.

use super::price::canonical_model;
use super::registry::Target;
use super::Usage;
use crate::config::ai::BudgetConfig;
use crate::config::Issues;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

/// Seconds from `now` until the window of `period` that holds it ends.
fn seconds_left(period: Period, now: u64) -> u64 {
    match period {
        Period::Minute => 60 - now % 60,
        Period::Day => 86_400 - now % 86_400,
        Period::Month => {
            let (y, m) = year_month(now / 86_400);
            let (ny, nm) = if m == 11 { (y + 1, 0) } else { (y, m + 1) };
            (days_from_civil(ny, nm + 1, 1) * 86_400).saturating_sub(now).max(1)
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

/// Days since 1970-01-01 of year `y`, month `m` (1-12), day `d` (Hinnant's days_from_civil).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = y as i64 - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468).max(0) as u64
}

/// One window's total: the window index and the amount, both atomics; and
/// the window and total last agreed with the database ([`super::spend`]),
/// which only the task that writes spend touches.
#[derive(Debug, Default)]
pub(super) struct Window {
    index: AtomicU64,
    amount: AtomicU64,
    synced_index: AtomicU64,
    synced_amount: AtomicU64,
}

impl Window {
    fn current(&self, index: u64) -> u64 {
        if self.index.load(Ordering::Acquire) == index {
            self.amount.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    pub(super) fn add(&self, index: u64, n: u64) {
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

    /// The window index and its amount now. Not one atomic snapshot: at a
    /// window's turn a read can pair the new index with the old amount for
    /// an instant, the same race `add` accepts.
    pub(super) fn read(&self) -> (u64, u64) {
        let index = self.index.load(Ordering::Acquire);
        (index, self.amount.load(Ordering::Relaxed))
    }

    /// Adds `n` to window `index` unless this window has moved past it.
    pub(super) fn absorb(&self, index: u64, n: u64) {
        if self.index.load(Ordering::Acquire) <= index {
            self.add(index, n);
        }
    }

    /// The window and total last agreed with the database.
    pub(super) fn synced(&self) -> (u64, u64) {
        (
            self.synced_index.load(Ordering::Relaxed),
            self.synced_amount.load(Ordering::Relaxed),
        )
    }

    pub(super) fn set_synced(&self, index: u64, amount: u64) {
        self.synced_index.store(index, Ordering::Relaxed);
        self.synced_amount.store(amount, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub(super) struct BudgetState {
    pub(super) tokens_minute: Window,
    /// Micro-USD.
    pub(super) usd_day: Window,
    pub(super) usd_month: Window,
}

/// What a budget covers.
#[derive(Debug)]
enum Scope {
    /// Every call of the consumer.
    All,
    /// Calls of these (provider, canonical model) pairs.
    Models(Vec<(String, String)>),
}

#[derive(Debug)]
pub(super) struct Budget {
    pub(super) cfg: BudgetConfig,
    scope: Scope,
    pub(super) state: Arc<BudgetState>,
}

impl Budget {
    fn covers(&self, consumer: &str, target: &Target) -> bool {
        self.cfg.consumer == consumer
            && match &self.scope {
                Scope::All => true,
                Scope::Models(pairs) => {
                    let model = canonical_model(&target.model);
                    pairs.iter().any(|(p, m)| *p == target.provider.name && m == model)
                }
            }
    }
}

/// The (provider, model) pairs a budget's `model` stands for; None when it names nothing.
pub(crate) type TargetsOf<'a> = &'a dyn Fn(&str) -> Option<Vec<(String, String)>>;

/// A spent budget: why, and when its window ends.
#[derive(Debug)]
pub(crate) struct Spent {
    pub message: String,
    pub retry_after: u64,
}

#[derive(Debug, Default)]
pub struct Budgets {
    pub(super) list: Vec<Budget>,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Budgets {
    /// Compiles the budgets; `targets_of` gives the (provider, model) pairs a
    /// budget's `model` stands for (None: it names nothing). Budgets whose
    /// settings are unchanged keep their counters across reloads.
    pub fn build(
        cfgs: &[BudgetConfig],
        previous: Option<&Budgets>,
        targets_of: TargetsOf<'_>,
        issues: &mut Issues,
    ) -> Budgets {
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
            let scope = match &c.model {
                None => Scope::All,
                Some(m) => match targets_of(m) {
                    Some(pairs) => Scope::Models(
                        pairs
                            .into_iter()
                            .map(|(p, m)| (p, canonical_model(&m).to_string()))
                            .collect(),
                    ),
                    None => {
                        issues.add(
                            format!("ai.budgets[{i}].model"),
                            format!("{m:?} is neither a model alias nor `provider/model` of a configured provider"),
                        );
                        Scope::Models(Vec::new())
                    }
                },
            };
            let state = previous
                .and_then(|p| p.list.iter().find(|b| b.cfg == *c))
                .map_or_else(Arc::default, |b| Arc::clone(&b.state));
            list.push(Budget {
                cfg: c.clone(),
                scope,
                state,
            });
        }
        Budgets { list }
    }

    /// Whether a USD budget covers `consumer` calling `target`.
    pub(crate) fn has_usd(&self, consumer: &str, target: &Target) -> bool {
        self.list
            .iter()
            .any(|b| (b.cfg.usd_per_day.is_some() || b.cfg.usd_per_month.is_some()) && b.covers(consumer, target))
    }

    /// The first spent budget that covers `consumer` calling `target`.
    pub(crate) fn spent(&self, consumer: &str, target: &Target) -> Option<Spent> {
        let now = now_secs();
        for b in self.list.iter().filter(|b| b.covers(consumer, target)) {
            let scope = match &b.cfg.model {
                Some(m) => format!("consumer {consumer:?} on model {m:?}"),
                None => format!("consumer {consumer:?}"),
            };
            if let Some(limit) = b.cfg.tokens_per_minute {
                if b.state.tokens_minute.current(window_index(Period::Minute, now)) >= limit {
                    return Some(Spent {
                        message: format!("token budget of {limit} tokens per minute for {scope} is spent"),
                        retry_after: seconds_left(Period::Minute, now),
                    });
                }
            }
            for (limit, window, period, name) in [
                (b.cfg.usd_per_day, &b.state.usd_day, Period::Day, "daily"),
                (b.cfg.usd_per_month, &b.state.usd_month, Period::Month, "monthly"),
            ] {
                if let Some(limit) = limit {
                    let spent = window.current(window_index(period, now)) as f64 / 1e6;
                    if spent >= limit {
                        return Some(Spent {
                            message: format!("{name} budget of ${limit} for {scope} is spent (${spent:.6} used)"),
                            retry_after: seconds_left(period, now),
                        });
                    }
                }
            }
        }
        None
    }

    /// Charges one finished call of `target`.
    pub(crate) fn charge(&self, consumer: &str, target: &Target, usage: &Usage, usd: f64) {
        let now = now_secs();
        let micro = (usd * 1e6).round().max(0.0) as u64;
        for b in self.list.iter().filter(|b| b.covers(consumer, target)) {
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
        assert_eq!(days_from_civil(2026, 11, 27), 20_784);
        assert_eq!(days_from_civil(2027, 1, 1), 20_819);
    }

    #[test]
    fn windows_end() {
        // 2026-11-30T23:59:00Z: a minute, and a day's last minute, and the month's.
        let now = days_from_civil(2026, 11, 30) * 86_400 + 86_340;
        assert_eq!(seconds_left(Period::Minute, now), 60);
        assert_eq!(seconds_left(Period::Day, now), 60);
        assert_eq!(seconds_left(Period::Month, now), 60);
        assert_eq!(seconds_left(Period::Month, now - 86_400), 86_460);
    }
}
