//! Which rollups a question reads: the narrowest projection that holds
//! every dimension it filters or groups on (and the teams, for a
//! team-scoped reader), and the range cut into the coarsest buckets that
//! fit: whole days in the middle, hours and then minutes at the edges. A
//! 30-day summary so reads about 30 day rows, 46 hour rows and 118 minute
//! rows per value of its dimensions, and stays exact to the minute.
//!
//! The finest level read is the finest whose retention still holds the
//! range's start; the range is widened to its buckets.

use super::query::Scope;
use super::retention::Retention;
use super::rollup::WIDTHS;
use super::schema::PROJECTIONS;

/// What a question narrows or groups by.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Need {
    pub dims: Vec<&'static str>,
}

impl Need {
    /// The dimensions of the given filters, a grouping and the scope.
    pub(crate) fn of(filters: &[(&'static str, bool)], by: Option<&'static str>, scope: &Scope) -> Need {
        let mut dims: Vec<&'static str> = filters.iter().filter(|(_, on)| *on).map(|(d, _)| *d).collect();
        dims.extend(by);
        if matches!(scope, Scope::Teams(_)) {
            dims.extend(["service_team", "team"]);
        }
        dims.push("status_class");
        Need { dims }
    }

    /// The narrowest projection that holds every needed dimension.
    pub(crate) fn projection(&self) -> usize {
        PROJECTIONS
            .iter()
            .position(|(_, kept)| self.dims.iter().all(|d| kept.contains(d)))
            .unwrap_or(PROJECTIONS.len() - 1)
    }
}

/// The finest level whose retention still holds `from_ms`.
pub(crate) fn finest_level(from_ms: i64, now_ms: i64, retention: &Retention) -> usize {
    let age = (now_ms - from_ms).max(0) / 1000;
    (0..WIDTHS.len())
        .find(|&l| retention.levels.get(l).is_some_and(|&keep| age <= keep))
        .unwrap_or(WIDTHS.len() - 1)
}

fn floor(t: i64, w: i64) -> i64 {
    t.div_euclid(w) * w
}

fn ceil(t: i64, w: i64) -> i64 {
    floor(t + w - 1, w)
}

/// `[from, to)` (unix seconds, widened to `finest`'s buckets) as
/// `(level, from, to)` parts: the coarsest buckets that fit, then finer
/// ones at the edges. Each second is in exactly one part.
pub(crate) fn segments(from: i64, to: i64, finest: usize) -> Vec<(usize, i64, i64)> {
    let w = WIDTHS.get(finest).copied().unwrap_or(60);
    let mut out = Vec::new();
    cut(floor(from, w), ceil(to, w), WIDTHS.len() - 1, finest, &mut out);
    out
}

fn cut(from: i64, to: i64, level: usize, finest: usize, out: &mut Vec<(usize, i64, i64)>) {
    if from >= to {
        return;
    }
    if level <= finest {
        out.push((level, from, to));
        return;
    }
    let w = WIDTHS.get(level).copied().unwrap_or(60);
    let (lo, hi) = (ceil(from, w), floor(to, w));
    if lo < hi {
        cut(from, lo, level - 1, finest, out);
        out.push((level, lo, hi));
        cut(hi, to, level - 1, finest, out);
    } else {
        cut(from, to, level - 1, finest, out);
    }
}

/// Steps a time series may take, in seconds.
const STEPS: &[i64] = &[60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400];
/// Most points a series has.
const POINTS: i64 = 200;

/// A series' step over `span` seconds and the level it reads: the
/// smallest step (not finer than `finest`) giving at most 200 points, read
/// from the coarsest level whose buckets divide it.
pub(crate) fn series_step(span: i64, finest: usize) -> (i64, usize) {
    let min = WIDTHS.get(finest).copied().unwrap_or(60);
    let step = STEPS
        .iter()
        .copied()
        .filter(|&s| s >= min)
        .find(|&s| span / s <= POINTS)
        .unwrap_or(30 * 86_400);
    let level = (finest..WIDTHS.len())
        .rev()
        .find(|&l| WIDTHS.get(l).is_some_and(|&w| w <= step && step % w == 0))
        .unwrap_or(finest);
    (step, level)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_range_is_cut_into_days_hours_and_minutes() {
        // 2026-11-01 00:00 is a day boundary.
        let t0 = 1_793_491_200;
        let from = t0 + 3 * 3600 + 17 * 60;
        let to = t0 + 30 * DAY + 5 * 3600 + 2 * 60;
        let parts = segments(from, to, 0);
        let total: i64 = parts.iter().map(|(_, a, b)| b - a).sum();
        assert_eq!(total, to - from, "{parts:?}");
        assert!(parts.windows(2).all(|w| w[0].2 == w[1].1), "contiguous: {parts:?}");
        let rows = |level: usize| -> i64 {
            parts
                .iter()
                .filter(|p| p.0 == level)
                .map(|(l, a, b)| (b - a) / WIDTHS[*l])
                .sum()
        };
        assert_eq!((rows(2), rows(1), rows(0)), (29, 20 + 5, 43 + 2));
        // Without the minutes (their retention is over), hours at the edges.
        let coarse = segments(from, to, 1);
        assert_eq!(coarse.first().map(|p| p.1), Some(t0 + 3 * 3600));
        assert!(coarse.iter().all(|p| p.0 >= 1));
    }

    #[test]
    fn questions_read_the_narrowest_projection() {
        let all = Scope::All;
        let teams = Scope::Teams(vec!["a".into()]);
        let name = |n: Need| PROJECTIONS[n.projection()].0;
        assert_eq!(name(Need::of(&[], None, &all)), "total");
        assert_eq!(name(Need::of(&[], Some("service"), &all)), "service");
        assert_eq!(name(Need::of(&[("service", true)], Some("route"), &all)), "route");
        assert_eq!(name(Need::of(&[("application", true)], None, &all)), "application");
        assert_eq!(name(Need::of(&[], Some("model"), &all)), "model");
        assert_eq!(name(Need::of(&[], None, &teams)), "teams");
        assert_eq!(name(Need::of(&[("service", true)], None, &teams)), "");
        assert_eq!(name(Need::of(&[("service", false)], None, &all)), "total");
    }

    #[test]
    fn series_steps_follow_the_span() {
        assert_eq!(series_step(3600, 0), (60, 0));
        assert_eq!(series_step(DAY, 0), (900, 0));
        assert_eq!(series_step(7 * DAY, 0), (3600, 1));
        assert_eq!(series_step(30 * DAY, 0), (6 * 3600, 1));
        assert_eq!(series_step(365 * DAY, 2), (7 * DAY, 2));
        assert_eq!(series_step(3600, 1), (3600, 1));
    }
}
