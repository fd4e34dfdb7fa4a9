//! AI budget spend in the database: one row per budget and period holding
//! the current window and its total, so that a budget's spend survives a
//! restart, an upgrade or a crash (less the last second) and is shared by
//! the processes that use one database.
//!
//! Writers add deltas, never totals ([`Store::add_spend`]): two processes
//! that each spent something in the same window both count, whatever order
//! their writes land in. A delta for a newer window starts that window; one
//! for an older window than the stored one is dropped (that window is over).

use super::{now, Store, StoreError};
use sqlx::Row;

/// One budget window: its total as read, or a delta to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendRow {
    /// The budget's identity (its settings).
    pub budget_key: String,
    /// Which window: `tokens_minute`, `usd_day` or `usd_month`.
    pub period: String,
    /// The window's index (minutes, days or months since the epoch).
    pub window: i64,
    /// Tokens or micro-USD.
    pub amount: i64,
}

impl Store {
    /// Adds each row's amount to its window's total, in one transaction.
    pub async fn add_spend(&self, deltas: &[SpendRow]) -> Result<(), StoreError> {
        let mut tx = super::begin_write(&self.pool, self.backend).await?;
        let at = now();
        for d in deltas {
            // The SET expressions read the row as it was before the update.
            sqlx::query(
                "INSERT INTO spend (budget_key, period, window_index, amount, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (budget_key, period) DO UPDATE SET
                   amount = CASE
                     WHEN spend.window_index = excluded.window_index THEN spend.amount + excluded.amount
                     WHEN spend.window_index < excluded.window_index THEN excluded.amount
                     ELSE spend.amount END,
                   window_index = CASE
                     WHEN spend.window_index < excluded.window_index THEN excluded.window_index
                     ELSE spend.window_index END,
                   updated_at = excluded.updated_at",
            )
            .bind(&d.budget_key)
            .bind(&d.period)
            .bind(d.window)
            .bind(d.amount)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every stored window total.
    pub async fn spend(&self) -> Result<Vec<SpendRow>, StoreError> {
        let rows = sqlx::query("SELECT budget_key, period, window_index, amount FROM spend")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SpendRow {
                    budget_key: r.try_get("budget_key")?,
                    period: r.try_get("period")?,
                    window: r.try_get("window_index")?,
                    amount: r.try_get("amount")?,
                })
            })
            .collect()
    }

    /// Removes rows not written for `days` days: their windows (a month at
    /// most) are over, and their budgets are likely gone.
    pub async fn forget_spend_older_than(&self, days: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM spend WHERE updated_at < $1")
            .bind(now() - days * 86_400)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
