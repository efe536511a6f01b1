//! The audit log of admin actions: append-only, listed newest first with id-based paging.

use crate::error::{Result, StoreError};
use crate::records::{
    AuditEntry, AuditFilter, AuditRecord, MAX_AUDIT_PAGE, from_millis, now, to_millis,
};
use crate::{Store, validate};

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    detail_json: String,
}

impl AuditRow {
    fn into_record(self) -> Result<AuditRecord> {
        Ok(AuditRecord {
            id: self.id,
            at: from_millis(self.at)?,
            actor: self.actor,
            action: self.action,
            target: self.target,
            detail_json: self.detail_json,
        })
    }
}

impl Store {
    /// Appends an entry stamped with the current time; returns its id.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<i64> {
        validate::text("actor", &entry.actor)?;
        validate::text("action", &entry.action)?;
        validate::text("target", &entry.target)?;
        validate::json("detail", &entry.detail_json)?;
        let at = to_millis(now())?;
        self.insert_returning_id(
            "INSERT INTO audit_log (at, actor, action, target, detail_json) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            args![
                at,
                &entry.actor,
                &entry.action,
                &entry.target,
                &entry.detail_json
            ],
        )
        .await
    }

    /// Audit records matching `filter`, newest first. The next page is
    /// `before_id = Some(last.id)`.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        if filter.limit == 0 {
            return Err(StoreError::Invalid("limit must be at least 1".into()));
        }
        let limit = i64::from(filter.limit.min(MAX_AUDIT_PAGE));
        let prefix = filter.target_prefix.as_deref().unwrap_or_default();
        validate::text("target prefix", prefix)?;
        let upper = validate::prefix_upper_bound(prefix);
        let before = filter.before_id.unwrap_or(i64::MAX);
        let upper_clause = if upper.is_some() {
            "AND target < $4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT id, at, actor, action, target, detail_json FROM audit_log \
             WHERE id < $1 AND target >= $2 {upper_clause} ORDER BY id DESC LIMIT $3"
        );
        with_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, AuditRow>(&sql)
                .bind(before)
                .bind(prefix)
                .bind(limit);
            if let Some(upper) = &upper {
                query = query.bind(upper);
            }
            let rows = query.fetch_all(pool).await?;
            rows.into_iter().map(AuditRow::into_record).collect()
        })
    }
}
