//! Budget spend as plain data, so that it can outlive the process: what each
//! budget's windows hold now and what changed since they last agreed with
//! the database ([`Budgets::pending`]), and the database's totals folded
//! back in ([`Budgets::settle`]). The database itself is the process
//! layer's business (`process::spend`); this module only reads and adds to
//! the budgets' atomics, so the request path is untouched.
//!
//! A budget is "the same budget" across restarts when its settings are the
//! same: its key ([`budget_key`]) is its settings written out, so an
//! unchanged budget resumes its windows and a changed one starts fresh, as a
//! reload does.
//!
//! Several processes may share one database (nodes on one PostgreSQL, or an
//! old and a new process during an upgrade). Each writes only the spend it
//! added since the last agreement (a delta, added to the stored total), then
//! reads the totals back and adds what the others spent to its own windows,
//! so every process converges on the sum. Between two agreements a window's
//! total is what the database held then plus the local charges since: the
//! local amount minus the synced amount is always the part not yet written.

use super::budget::{Budgets, Window};
use crate::config::ai::BudgetConfig;

/// One budget window as the process holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpendEntry {
    /// The budget's key ([`budget_key`]).
    pub key: String,
    /// `tokens_minute` (tokens) or `usd_day`, `usd_month` (micro-USD).
    pub period: &'static str,
    /// The window index (minutes, days or months since the epoch).
    pub window: u64,
    /// The window's total here.
    pub amount: u64,
    /// The part of `amount` not yet written to the database.
    pub delta: u64,
}

/// One budget window's total as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpendTotal {
    pub key: String,
    pub period: String,
    pub window: u64,
    pub amount: u64,
}

/// A budget's identity across restarts: its settings as a JSON object with a
/// fixed field order (numbers as serde_json writes them), readable in the
/// database.
pub(crate) fn budget_key(cfg: &BudgetConfig) -> String {
    let text = |v: &Option<String>| v.as_deref().map_or_else(|| "null".to_string(), json_string);
    let num = |v: Option<f64>| v.map_or_else(|| "null".to_string(), |v| serde_json::Value::from(v).to_string());
    format!(
        r#"{{"consumer":{},"model":{},"tokens_per_minute":{},"usd_per_day":{},"usd_per_month":{}}}"#,
        json_string(&cfg.consumer),
        text(&cfg.model),
        cfg.tokens_per_minute
            .map_or_else(|| "null".to_string(), |v| v.to_string()),
        num(cfg.usd_per_day),
        num(cfg.usd_per_month),
    )
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

impl Budgets {
    /// The windows a budget limits, with their period names. Budgets with
    /// the same settings share one key: the first of them is the one kept.
    fn windows(&self) -> Vec<(String, &'static str, &Window)> {
        let mut out: Vec<(String, &'static str, &Window)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for b in &self.list {
            let key = budget_key(&b.cfg);
            if !seen.insert(key.clone()) {
                continue;
            }
            let s = &b.state;
            for (limited, period, window) in [
                (b.cfg.tokens_per_minute.is_some(), "tokens_minute", &s.tokens_minute),
                (b.cfg.usd_per_day.is_some(), "usd_day", &s.usd_day),
                (b.cfg.usd_per_month.is_some(), "usd_month", &s.usd_month),
            ] {
                if limited {
                    out.push((key.clone(), period, window));
                }
            }
        }
        out
    }

    /// Every limited window now, with what it added since it last agreed
    /// with the database.
    pub(crate) fn pending(&self) -> Vec<SpendEntry> {
        self.windows()
            .into_iter()
            .map(|(key, period, w)| {
                let (window, amount) = w.read();
                let (synced_window, synced_amount) = w.synced();
                let delta = if window == synced_window {
                    amount.saturating_sub(synced_amount)
                } else {
                    amount
                };
                SpendEntry {
                    key,
                    period,
                    window,
                    amount,
                    delta,
                }
            })
            .collect()
    }

    /// Marks the deltas of `read` (what [`Budgets::pending`] returned) as
    /// written, as soon as the write succeeded: a failure to read the
    /// totals back must not write them twice.
    pub(crate) fn written(&self, read: &[SpendEntry]) {
        let windows = self.windows();
        for e in read.iter().filter(|e| e.delta > 0) {
            if let Some((_, _, w)) = windows.iter().find(|(k, p, _)| *k == e.key && *p == e.period) {
                w.set_synced(e.window, e.amount);
            }
        }
    }

    /// Folds the database's `totals` in, once the deltas of `read` (what
    /// [`Budgets::pending`] returned) are written ([`Budgets::written`]):
    /// each window gains what other processes spent, and agrees with the
    /// database again.
    pub(crate) fn settle(&self, read: &[SpendEntry], totals: &[SpendTotal]) {
        let windows = self.windows();
        for e in read {
            let Some((_, _, w)) = windows.iter().find(|(k, p, _)| *k == e.key && *p == e.period) else {
                continue;
            };
            match totals.iter().find(|t| t.key == e.key && t.period == e.period) {
                Some(t) => {
                    // What this process held of the stored window when it read.
                    let here = if e.window == t.window { e.amount } else { 0 };
                    if t.amount > here {
                        w.absorb(t.window, t.amount - here);
                    }
                    w.set_synced(t.window, t.amount);
                }
                // Nothing stored: everything held here is still to write.
                None => w.set_synced(0, 0),
            }
        }
    }

    /// Seeds the windows from stored totals (at start, before serving).
    pub(crate) fn restore(&self, totals: &[SpendTotal]) {
        self.settle(&self.pending(), totals);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Issues;

    fn budgets(yaml: &str) -> Budgets {
        let cfgs: Vec<BudgetConfig> = serde_yaml::from_str(yaml).unwrap();
        let positions = crate::config::Positions::default();
        let mut issues = Issues::new("t", &positions);
        let b = Budgets::build(&cfgs, None, &|_| Some(Vec::new()), &mut issues);
        assert!(issues.finish().is_ok());
        b
    }

    fn total(e: &SpendEntry, window: u64, amount: u64) -> SpendTotal {
        SpendTotal {
            key: e.key.clone(),
            period: e.period.to_string(),
            window,
            amount,
        }
    }

    /// The database's side: adds each delta to its window's total.
    fn write(db: &mut Vec<SpendTotal>, read: &[SpendEntry]) {
        for e in read.iter().filter(|e| e.delta > 0) {
            match db.iter_mut().find(|t| t.key == e.key && t.period == e.period) {
                Some(t) if t.window == e.window => t.amount += e.delta,
                Some(t) if t.window < e.window => (t.window, t.amount) = (e.window, e.delta),
                Some(_) => {}
                None => db.push(total(e, e.window, e.delta)),
            }
        }
    }

    fn sync(b: &Budgets, db: &mut Vec<SpendTotal>) {
        let read = b.pending();
        write(db, &read);
        b.written(&read);
        b.settle(&read, db);
    }

    fn day(b: &Budgets) -> &Window {
        &b.list[0].state.usd_day
    }

    #[test]
    fn keys_are_the_settings() {
        let b = budgets("[{consumer: a, usd_per_day: 0.5}, {consumer: a, model: m, tokens_per_minute: 40}]");
        assert_eq!(
            budget_key(&b.list[0].cfg),
            r#"{"consumer":"a","model":null,"tokens_per_minute":null,"usd_per_day":0.5,"usd_per_month":null}"#
        );
        assert_eq!(
            budget_key(&b.list[1].cfg),
            r#"{"consumer":"a","model":"m","tokens_per_minute":40,"usd_per_day":null,"usd_per_month":null}"#
        );
        // Only the windows a budget limits are kept.
        let periods: Vec<&str> = b.pending().iter().map(|e| e.period).collect();
        assert_eq!(periods, ["usd_day", "tokens_minute"]);
    }

    #[test]
    fn deltas_are_what_changed_since_the_last_agreement() {
        let b = budgets("[{consumer: a, usd_per_day: 1, usd_per_month: 10}]");
        let mut db = Vec::new();
        assert!(b.pending().iter().all(|e| e.delta == 0), "nothing spent");
        day(&b).add(100, 5);
        b.list[0].state.usd_month.add(7, 5);
        let read = b.pending();
        assert_eq!((read[0].window, read[0].amount, read[0].delta), (100, 5, 5));
        write(&mut db, &read);
        b.written(&read);
        assert!(
            b.pending().iter().all(|e| e.delta == 0),
            "written, even before the totals are read"
        );
        day(&b).add(100, 3);
        assert_eq!(b.pending()[0].delta, 3);
        sync(&b, &mut db);
        assert_eq!(db[0].amount, 8);
        // A new window: all of its amount is new.
        day(&b).add(101, 2);
        let read = b.pending();
        assert_eq!((read[0].window, read[0].delta), (101, 2));
        write(&mut db, &read);
        b.written(&read);
        b.settle(&read, &db);
        assert_eq!((db[0].window, db[0].amount), (101, 2));
        assert_eq!(day(&b).read(), (101, 2));
    }

    #[test]
    fn a_restart_resumes_and_a_changed_budget_starts_fresh() {
        let mut db = Vec::new();
        let before = budgets("[{consumer: a, usd_per_day: 1}]");
        day(&before).add(100, 42);
        sync(&before, &mut db);
        let after = budgets("[{consumer: a, usd_per_day: 1}]");
        after.restore(&db);
        assert_eq!(day(&after).read(), (100, 42));
        assert_eq!(after.pending()[0].delta, 0, "restored spend is not written again");
        day(&after).add(100, 1);
        sync(&after, &mut db);
        assert_eq!(db[0].amount, 43);
        let changed = budgets("[{consumer: a, usd_per_day: 2}]");
        changed.restore(&db);
        assert_eq!(day(&changed).read(), (0, 0));
    }

    #[test]
    fn processes_on_one_database_converge_on_the_sum() {
        let mut db = Vec::new();
        let yaml = "[{consumer: a, usd_per_day: 1}]";
        let (one, two) = (budgets(yaml), budgets(yaml));
        day(&one).add(100, 10);
        sync(&one, &mut db);
        day(&two).add(100, 5);
        sync(&two, &mut db);
        assert_eq!(db[0].amount, 15);
        assert_eq!(day(&two).read(), (100, 15));
        // `one` spent nothing since: it learns what `two` spent.
        sync(&one, &mut db);
        assert_eq!(day(&one).read(), (100, 15));
        // Both spend, then sync in turn: nothing counted twice, nothing lost.
        day(&one).add(100, 1);
        day(&two).add(100, 2);
        sync(&one, &mut db);
        sync(&two, &mut db);
        sync(&one, &mut db);
        assert_eq!(db[0].amount, 18);
        assert_eq!((day(&one).read(), day(&two).read()), ((100, 18), (100, 18)));
    }

    #[test]
    fn a_start_without_the_database_catches_up_when_it_comes_back() {
        let mut db = Vec::new();
        let yaml = "[{consumer: a, usd_per_day: 1}]";
        let before = budgets(yaml);
        day(&before).add(100, 40);
        sync(&before, &mut db);
        // Started without the database: counts from zero, then syncs.
        let after = budgets(yaml);
        day(&after).add(100, 2);
        sync(&after, &mut db);
        assert_eq!(db[0].amount, 42);
        assert_eq!(day(&after).read(), (100, 42));
    }

    #[test]
    fn a_window_another_process_opened_replaces_an_old_one() {
        let mut db = Vec::new();
        let yaml = "[{consumer: a, usd_per_day: 1}]";
        let (one, two) = (budgets(yaml), budgets(yaml));
        day(&one).add(100, 9);
        sync(&one, &mut db);
        sync(&two, &mut db);
        day(&two).add(101, 4);
        sync(&two, &mut db);
        sync(&one, &mut db);
        assert_eq!(day(&one).read(), (101, 4), "the new day, not yesterday's total");
        // Stored totals of a window this process has left are ignored.
        let old = [total(&one.pending()[0], 100, 50)];
        one.settle(&one.pending(), &old);
        assert_eq!(day(&one).read(), (101, 4));
    }
}
