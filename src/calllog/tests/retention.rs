//! Retention against a real SQLite file, with a clock the test turns: by
//! age, then by size, each rollup level after its own age, and a range
//! across levels counted exactly.

use super::*;

#[test]
fn ranges_read_the_finest_level_still_kept() {
    let r: Retention = (&crate::config::RetentionConfig::default()).into();
    let hour = 3_600_000;
    assert_eq!(finest_level(T0 - hour, T0, &r), 0);
    assert_eq!(finest_level(T0 - 30 * 24 * hour, T0, &r), 1);
    assert_eq!(finest_level(T0 - 400 * 24 * hour, T0, &r), 2);
}

#[tokio::test]
async fn retention_goes_by_age_then_by_size_with_the_clock_turned() {
    let (_dir, mut w, db) = open("retention").await;
    let mode: i64 =
        sqlx::Row::try_get(&sqlx::query("PRAGMA auto_vacuum").fetch_one(&db.pool).await.unwrap(), 0).unwrap();
    assert_eq!(mode, 2, "freed pages go back to the file system (incremental)");
    let day = 86_400_000i64;
    // Ten days of calls, 300 a day.
    let mut n = 0;
    for d in 0..10 {
        let batch: Vec<Arc<CallRecord>> = (0..300)
            .map(|i| {
                n += 1;
                rec(T0 + d * day + i * 1000, 200).build(n)
            })
            .collect();
        w.write("t", &batch).await.unwrap();
    }
    let count = |db: CallDb| async move {
        db.calls(&all(0, i64::MAX), &Scope::All)
            .await
            .map(|p| p.items.len())
            .unwrap_or(0)
    };
    assert_eq!(count(db.clone()).await, 3000);
    let mut r: Retention = (&crate::config::RetentionConfig::default()).into();
    // The clock at the end of day 10: days 0..=2 are older than 7 days.
    let now = T0 + 10 * day;
    loop {
        let s = db.retain_step(&r, now).await.unwrap();
        if !s.more {
            break;
        }
    }
    assert_eq!(count(db.clone()).await, 2100);
    let page = db.calls(&all(0, i64::MAX), &Scope::All).await.unwrap();
    assert!(page.items.iter().all(|c| c.time.as_str() >= "2026-11-04"));
    // Minute rollups are kept 7 days too, in every projection; hours and
    // days still count all ten; a summary over the ten days reads days.
    assert_eq!(counted(&db, "calls_minute").await, 2100);
    assert_eq!(counted(&db, "calls_minute_total").await, 2100);
    assert_eq!(counted(&db, "calls_hour_service").await, 3000);
    assert_eq!(counted(&db, "calls_day").await, 3000);
    let slice = Slice {
        from_ms: T0,
        to_ms: now,
        ..Default::default()
    };
    assert_eq!(db.summary(&slice, &Scope::All, 0).await.unwrap().figures.requests, 3000);

    // By size: a cap below what is held deletes oldest first until it fits.
    let before = db.size().await.unwrap();
    r.raw_size = before / 2;
    let mut steps = 0;
    loop {
        let s = db.retain_step(&r, now).await.unwrap();
        steps += 1;
        if !s.more || steps > 100 {
            break;
        }
    }
    let left = count(db.clone()).await;
    assert!(left < 2100 && left > 0, "{left}");
    assert!(db.size().await.unwrap() <= before / 2, "the file's used pages shrink");
    let oldest = db.calls(&all(0, i64::MAX), &Scope::All).await.unwrap();
    let last = oldest.items.last().map(|c| c.time.clone()).unwrap_or_default();
    assert!(last.as_str() > "2026-11-04", "the oldest went first: {last}");

    // A year later, everything but the daily rollups is gone.
    let later = now + 365 * day;
    loop {
        if !db.retain_step(&r, later).await.unwrap().more {
            break;
        }
    }
    assert_eq!(count(db.clone()).await, 0);
    let year = Slice {
        from_ms: T0,
        to_ms: later,
        ..Default::default()
    };
    assert_eq!(counted(&db, "calls_hour").await, 0);
    assert_eq!(counted(&db, "calls_hour_teams").await, 0);
    assert_eq!(counted(&db, "calls_day_application").await, 3000);
    assert_eq!(db.summary(&year, &Scope::All, 2).await.unwrap().figures.requests, 3000);
}

/// The requests a rollup table counts.
async fn counted(db: &CallDb, table: &str) -> i64 {
    let sql = format!("SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS n FROM {table}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&db.pool).await.unwrap();
    sqlx::Row::try_get(&row, "n").unwrap()
}

/// A range across days, cut into days, hours and minutes, counts exactly
/// the calls in it, from the narrow projections and the full rollups alike.
#[tokio::test]
async fn a_range_across_levels_counts_exactly() {
    let (_dir, mut w, db) = open("levels").await;
    // A call every 7 minutes for three days.
    let step = 7 * 60_000;
    let batch: Vec<Arc<CallRecord>> = (0..(3 * 1440 / 7))
        .map(|n| rec(T0 + i64::try_from(n).unwrap_or(0) * step, 200).build(n))
        .collect();
    w.write("t", &batch).await.unwrap();
    let (from, to) = (T0 + 90 * 60_000 + 13_000, T0 + 2 * 86_400_000 + 5 * 60_000);
    // Widened to whole minutes.
    let (lo, hi) = (from - from % 60_000, to + (60_000 - to % 60_000) % 60_000);
    let want = batch.iter().filter(|r| (lo..hi).contains(&r.unix_ms())).count() as i64;
    let slice = Slice {
        from_ms: from,
        to_ms: to,
        ..Default::default()
    };
    let s = db.summary(&slice, &Scope::All, 0).await.unwrap();
    assert_eq!(s.figures.requests, want, "{}..{}", s.from, s.to);
    let narrowed = Slice {
        service: Some("pay".into()),
        ..slice.clone()
    };
    assert_eq!(
        db.summary(&narrowed, &Scope::All, 0).await.unwrap().figures.requests,
        want
    );
    let scoped = Scope::Teams(vec!["shop".into()]);
    assert_eq!(db.summary(&slice, &scoped, 0).await.unwrap().figures.requests, want);
    let top = db
        .top(&slice, &Scope::All, 0, "application", "requests", 5)
        .await
        .unwrap();
    assert_eq!(top.items[0].figures.requests, want);
}
