//! The tasks `coalmine serve` owns: servers (xDS, admin), which end when told to stop
//! and are drained on shutdown, and workers (the publisher, sources, the release
//! controller), which never end on their own. Any task that ends early, or panics, is a
//! failure: the process stops serving instead of going on with a stale snapshot.

use std::future::Future;
use std::time::Duration;

use tokio::task::{JoinError, JoinSet};

/// How a task ended: its name and what it returned.
struct Ended {
    name: &'static str,
    result: anyhow::Result<()>,
}

#[derive(Default)]
pub struct Tasks {
    servers: JoinSet<Ended>,
    workers: JoinSet<Ended>,
}

impl Tasks {
    /// A server: it runs until shutdown is signalled, then returns.
    pub fn server<E>(
        &mut self,
        name: &'static str,
        task: impl Future<Output = Result<(), E>> + Send + 'static,
    ) where
        E: Into<anyhow::Error> + Send + 'static,
    {
        self.servers.spawn(async move {
            let result = task.await.map_err(Into::into);
            Ended { name, result }
        });
    }

    /// A worker: it runs as long as the process; its end is always a failure.
    pub fn worker(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.workers.spawn(async move {
            task.await;
            Ended {
                name,
                result: Err(anyhow::anyhow!("stopped")),
            }
        });
    }

    /// Waits until a task ends (before shutdown that is always a failure), and says
    /// which and how.
    pub async fn failure(&mut self) -> anyhow::Error {
        let ended = tokio::select! {
            Some(ended) = self.servers.join_next() => ended,
            Some(ended) = self.workers.join_next() => ended,
            else => return anyhow::anyhow!("no tasks were running"),
        };
        match ended {
            Ok(Ended {
                name,
                result: Ok(()),
            }) => anyhow::anyhow!("the {name} task ended"),
            Ok(Ended {
                name,
                result: Err(e),
            }) => e.context(format!("the {name} task failed")),
            Err(e) => panicked(e),
        }
    }

    /// After shutdown was signalled: waits up to `timeout` for the servers to close
    /// their connections, then stops everything; false when the time ran out.
    pub async fn drain(mut self, timeout: Duration) -> bool {
        self.workers.abort_all();
        let servers = async { while self.servers.join_next().await.is_some() {} };
        tokio::time::timeout(timeout, servers).await.is_ok()
    }
}

fn panicked(e: JoinError) -> anyhow::Error {
    if !e.is_panic() {
        return anyhow::anyhow!("a task was cancelled");
    }
    let panic = e.into_panic();
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    anyhow::anyhow!("a task panicked: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_worker_that_panics_is_the_failure() {
        let mut tasks = Tasks::default();
        tasks.server("xds", std::future::pending::<anyhow::Result<()>>());
        tasks.worker("publisher", async { panic!("snapshot broke") });
        let e = tasks.failure().await;
        assert_eq!(e.to_string(), "a task panicked: snapshot broke");
    }

    #[tokio::test]
    async fn a_worker_that_returns_or_a_server_that_fails_is_named() {
        let mut tasks = Tasks::default();
        tasks.worker("publisher", async {});
        assert_eq!(
            format!("{:#}", tasks.failure().await),
            "the publisher task failed: stopped"
        );
        let mut tasks = Tasks::default();
        tasks.server("admin", async { Err(anyhow::anyhow!("port gone")) });
        assert_eq!(
            format!("{:#}", tasks.failure().await),
            "the admin task failed: port gone"
        );
    }

    #[tokio::test]
    async fn drain_waits_for_servers_and_stops_workers() {
        let mut tasks = Tasks::default();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        tasks.server("xds", async move {
            let _ = stop_rx.await;
            anyhow::Ok(())
        });
        tasks.worker("publisher", std::future::pending());
        let _ = stop_tx.send(());
        assert!(tasks.drain(Duration::from_secs(5)).await);
        let mut stuck = Tasks::default();
        stuck.server("xds", std::future::pending::<anyhow::Result<()>>());
        assert!(!stuck.drain(Duration::from_millis(10)).await);
    }
}
