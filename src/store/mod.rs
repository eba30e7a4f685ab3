//! The durable revision history in an embedded SQLite file (WAL, full sync).
//!
//! Every apply, delete or restore is one transaction that appends one numbered revision
//! holding the full resource set, so a reader (or a restart after kill -9) sees a whole
//! revision or the one before it, never a mix. History is bounded by a retention count.
//! This module stores documents; it never interprets them.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored revision {revision} is not valid JSON: {source}")]
    Corrupt {
        revision: u64,
        source: serde_json::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "coalmine.db";

/// One stored revision, without its documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionInfo {
    pub revision: u64,
    pub created: SystemTime,
    pub summary: String,
}

/// One stored revision with its full resource set.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub info: RevisionInfo,
    /// Every resource of the set, as whole Kubernetes-shaped documents.
    pub documents: Vec<serde_json::Value>,
}

#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    /// How many revisions are kept; older ones are deleted as new ones are added.
    retention: usize,
}

impl Store {
    /// Opens (creating when missing) the database in `dir`.
    pub fn open(dir: &Path, retention: usize) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
        let conn = Connection::open(dir.join(DB_FILE))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS revisions (
                revision  INTEGER PRIMARY KEY,
                created_ms INTEGER NOT NULL,
                summary   TEXT NOT NULL,
                documents TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS rollouts (
                key   TEXT PRIMARY KEY,
                spec  TEXT NOT NULL,
                state TEXT NOT NULL
            );",
        )?;
        Ok(Store {
            conn: Mutex::new(conn),
            retention: retention.max(1),
        })
    }

    /// Appends a revision holding `documents` and returns its number. One transaction:
    /// after a crash the revision is either wholly there or not at all.
    pub fn append(&self, summary: &str, documents: &[serde_json::Value]) -> Result<RevisionInfo> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        // Statements prepared once per connection (an apply's cost is mostly the fsync).
        let last: Option<u64> = tx
            .prepare_cached("SELECT MAX(revision) FROM revisions")?
            .query_row([], |r| r.get(0))?;
        let revision = last.unwrap_or(0) + 1;
        let created = SystemTime::now();
        let text = serde_json::to_string(documents).expect("JSON values always serialize");
        tx.prepare_cached(
            "INSERT INTO revisions (revision, created_ms, summary, documents) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![revision, to_millis(created), summary, text])?;
        tx.prepare_cached("DELETE FROM revisions WHERE revision <= ?1")?
            .execute(params![revision.saturating_sub(self.retention as u64)])?;
        tx.commit()?;
        Ok(RevisionInfo {
            revision,
            created: from_millis(to_millis(created)),
            summary: summary.to_string(),
        })
    }

    /// The newest revision, if any.
    pub fn latest(&self) -> Result<Option<Revision>> {
        self.query_one("SELECT revision, created_ms, summary, documents FROM revisions ORDER BY revision DESC LIMIT 1", [])
    }

    /// The newest revision older than `revision`, if any.
    pub fn before(&self, revision: u64) -> Result<Option<Revision>> {
        self.query_one(
            "SELECT revision, created_ms, summary, documents FROM revisions WHERE revision < ?1 ORDER BY revision DESC LIMIT 1",
            [revision],
        )
    }

    pub fn get(&self, revision: u64) -> Result<Option<Revision>> {
        // SQLite integers are i64: a larger number names no revision (not an error).
        if i64::try_from(revision).is_err() {
            return Ok(None);
        }
        self.query_one(
            "SELECT revision, created_ms, summary, documents FROM revisions WHERE revision = ?1",
            [revision],
        )
    }

    /// Every kept revision, oldest first.
    pub fn list(&self) -> Result<Vec<RevisionInfo>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT revision, created_ms, summary FROM revisions ORDER BY revision")?;
        let rows = stmt.query_map([], |r| {
            Ok(RevisionInfo {
                revision: r.get(0)?,
                created: from_millis(r.get(1)?),
                summary: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Saves a release's state, with a fingerprint of the spec it belongs to.
    pub fn save_rollout(&self, key: &str, spec: &str, state: &str) -> Result<()> {
        self.lock().execute(
            "INSERT INTO rollouts (key, spec, state) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET spec = excluded.spec, state = excluded.state",
            params![key, spec, state],
        )?;
        Ok(())
    }

    /// Every saved release state: (key, spec fingerprint, state).
    pub fn rollouts(&self) -> Result<Vec<(String, String, String)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT key, spec, state FROM rollouts ORDER BY key")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn delete_rollout(&self, key: &str) -> Result<()> {
        self.lock()
            .execute("DELETE FROM rollouts WHERE key = ?1", params![key])?;
        Ok(())
    }

    fn query_one<P: rusqlite::Params>(&self, sql: &str, params: P) -> Result<Option<Revision>> {
        let conn = self.lock();
        let row = conn
            .query_row(sql, params, |r| {
                Ok((
                    r.get::<_, u64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .optional()?;
        let Some((revision, created, summary, text)) = row else {
            return Ok(None);
        };
        let documents =
            serde_json::from_str(&text).map_err(|source| Error::Corrupt { revision, source })?;
        Ok(Some(Revision {
            info: RevisionInfo {
                revision,
                created: from_millis(created),
                summary,
            },
            documents,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().expect("store connection poisoned")
    }
}

fn to_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn appends_numbered_revisions_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 10).unwrap();
        assert!(store.latest().unwrap().is_none());
        let a = store.append("first", &[json!({"kind": "A"})]).unwrap();
        let b = store.append("second", &[json!({"kind": "B"})]).unwrap();
        assert_eq!((a.revision, b.revision), (1, 2));
        let latest = store.latest().unwrap().unwrap();
        assert_eq!(latest.info.revision, 2);
        assert_eq!(latest.documents, vec![json!({"kind": "B"})]);
        assert_eq!(
            store.get(1).unwrap().unwrap().documents,
            vec![json!({"kind": "A"})]
        );
        let list: Vec<u64> = store.list().unwrap().iter().map(|r| r.revision).collect();
        assert_eq!(list, [1, 2]);
    }

    #[test]
    fn a_revision_past_sqlite_integers_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 10).unwrap();
        store.append("one", &[]).unwrap();
        assert!(store.get(u64::MAX).unwrap().is_none());
        assert!(store.get(1 << 63).unwrap().is_none());
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 10).unwrap();
            store.append("one", &[json!({"n": 1})]).unwrap();
        }
        let store = Store::open(dir.path(), 10).unwrap();
        assert_eq!(store.latest().unwrap().unwrap().info.summary, "one");
        assert_eq!(store.append("two", &[]).unwrap().revision, 2);
    }

    #[test]
    fn rollout_states_are_saved_replaced_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 10).unwrap();
        store.save_rollout("Rollout default/a", "s1", "{}").unwrap();
        store
            .save_rollout("Rollout default/a", "s2", "{\"x\":1}")
            .unwrap();
        assert_eq!(
            store.rollouts().unwrap(),
            vec![(
                "Rollout default/a".to_string(),
                "s2".to_string(),
                "{\"x\":1}".to_string()
            )]
        );
        store.delete_rollout("Rollout default/a").unwrap();
        assert!(store.rollouts().unwrap().is_empty());
    }

    #[test]
    fn retention_drops_the_oldest_and_keeps_numbering() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 3).unwrap();
        for i in 0..5 {
            store.append(&format!("r{i}"), &[]).unwrap();
        }
        let list: Vec<u64> = store.list().unwrap().iter().map(|r| r.revision).collect();
        assert_eq!(list, [3, 4, 5]);
        assert!(store.get(1).unwrap().is_none());
    }
}
