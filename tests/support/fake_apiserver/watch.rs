//! The watch half of the fake API server: what happened after the requested
//! resourceVersion (or, without one, every current object as ADDED), then live changes
//! and bookmarks, as newline-delimited JSON events; 410 Gone as an ERROR event.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::store::{key_of, status_object, Failure};
use super::{matches, shape, Shared, Target};

/// How often open watches that asked for bookmarks get one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

fn event_line(kind: &str, object: Value) -> Result<Bytes, Infallible> {
    Ok(Bytes::from(format!(
        "{}\n",
        json!({"type": kind, "object": object})
    )))
}

/// A watch: what happened after the requested version (or, without one, every
/// current object as ADDED), then live changes, bookmarks, until the timeout, a
/// compaction that closes watches, or the client leaving.
pub(super) fn watch(
    store: Shared,
    t: Target,
    query: HashMap<String, String>,
    meta_only: bool,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let initial_events = query.get("sendInitialEvents").is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800u64);
    let from: Option<u64> = query
        .get("resourceVersion")
        .and_then(|s| s.parse().ok())
        .filter(|rv| *rv > 0);
    let (resource, namespace) = (t.resource.clone(), t.namespace.clone());
    let wanted = move |resource: &str, ns: &str, obj: &Value| {
        resource == t.resource
            && t.namespace.as_deref().is_none_or(|w| w == ns)
            && matches(&query, obj)
    };
    let (first, mut changes, mut closer, kind_of, mut last) = {
        let st = store.lock().unwrap();
        let kind_of = st
            .kinds
            .get(&resource)
            .cloned()
            .unwrap_or(("v1".into(), "List".into()));
        let first: Result<Vec<(&'static str, Value)>, Failure> = match from {
            Some(rv) if !initial_events => st.since(rv).map(|cs| {
                cs.iter()
                    .filter(|c| wanted(&c.resource, &c.namespace, &c.object))
                    .map(|c| (c.kind, c.object.clone()))
                    .collect()
            }),
            _ => {
                let (_, items) = st.list(&resource, namespace.as_deref());
                let ns_of = |o: &Value| key_of(o).0;
                Ok(items
                    .into_iter()
                    .filter(|o| wanted(&resource, &ns_of(o), o))
                    .map(|o| ("ADDED", o))
                    .collect())
            }
        };
        let closer = st.closer.subscribe();
        (first, st.changes.subscribe(), closer, kind_of, st.rv)
    };
    let bookmark = move |rv: u64, end: bool| {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        event_line(
            "BOOKMARK",
            json!({"kind": kind_of.1, "apiVersion": kind_of.0, "metadata": meta}),
        )
    };
    tokio::spawn(async move {
        let events = match first {
            Ok(events) => events,
            Err(f) => {
                let _ = tx
                    .send(event_line("ERROR", status_object(f.0, f.1, &f.2)))
                    .await;
                return;
            }
        };
        for (kind, obj) in events {
            if tx
                .send(event_line(kind, shape(obj, meta_only)))
                .await
                .is_err()
            {
                return;
            }
        }
        if initial_events && tx.send(bookmark(last, true)).await.is_err() {
            return;
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_INTERVAL);
        tick.tick().await;
        closer.borrow_and_update();
        loop {
            let line = tokio::select! {
                biased;
                _ = closer.changed() => return,
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                change = changes.recv() => match change {
                    Ok(c) if c.rv <= last => continue,
                    Ok(c) => {
                        last = c.rv;
                        if !wanted(&c.resource, &c.namespace, &c.object) {
                            continue;
                        }
                        event_line(c.kind, shape(c.object.clone(), meta_only))
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if bookmarks => bookmark(last, false),
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(ReceiverStream::new(rx));
    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
}
