//! The controller's rounds: one release per Rollout ([`Controller::sync`]), each
//! ticked in turn ([`Controller::step`]), and every outcome recorded unless it went
//! stale while its IO ran ([`Controller::record`]).
//!
//! The map of releases is locked only to look a release up, swap one in or out, or
//! check that one is still current: never across IO. A release's own work lock is
//! what is held across its IO, so its ticks and commands never interleave and status
//! readers (who read its snapshot) never wait.

use std::sync::Arc;

use tracing::info;

use super::release::{Entry, Release};
use super::{clock, saved, Controller};
use crate::model::Rollout;
use crate::rollout::Machine;

impl Controller {
    /// One release per Rollout: new ones start (or resume from a saved state), removed
    /// ones are forgotten, changed ones start over.
    pub(super) async fn sync(&self, rollouts: &[Rollout]) {
        let gone: Vec<Arc<Release>> = {
            let mut releases = self.releases();
            let (kept, gone) = std::mem::take(&mut *releases)
                .into_iter()
                .partition(|(key, _)| rollouts.iter().any(|r| &r.key == key));
            *releases = kept;
            gone.into_values().collect()
        };
        for release in gone {
            release.retire().await;
        }
        let starting: Vec<(&Rollout, String)> = {
            let releases = self.releases();
            rollouts
                .iter()
                .map(|r| (r, spec_of(r)))
                .filter(|(r, spec)| releases.get(&r.key).is_none_or(|e| &e.spec != spec))
                .collect()
        };
        if starting.is_empty() {
            return; // every release runs on its current spec: nothing to read
        }
        let saved = saved::rollouts(&self.desired).await;
        for (rollout, spec) in starting {
            // The cluster's copy first: another replica may have led the release since.
            let in_cluster = self.sink.cluster_state(&rollout.key).await;
            let resumed = in_cluster
                .as_ref()
                .or_else(|| saved.get(&rollout.key.to_string()))
                .filter(|(s, _)| *s == spec)
                .and_then(|(_, state)| serde_json::from_str(state).ok());
            let machine = match resumed {
                Some(state) => Machine::with_state(rollout.clone(), state),
                None => Machine::new(rollout.clone()),
            };
            let (release, mut entry) = Release::new(machine, spec);
            let actions = entry.machine.start(clock());
            entry.publish();
            let old = self.releases().insert(rollout.key.clone(), release.clone());
            if let Some(old) = old {
                old.retire().await; // its work in flight ends before this one's IO begins
            }
            self.carry_out(&mut entry, actions).await;
            self.record(&release, &mut entry, true).await;
        }
    }

    /// Ticks every machine, and reports step ACKs and NACKs.
    pub(super) async fn step(&self) {
        let releases: Vec<Arc<Release>> = self.releases().values().cloned().collect();
        for release in releases {
            // A release busy with a command is ticked next round.
            let Some(mut entry) = release.try_work() else {
                continue;
            };
            if entry.retired {
                continue;
            }
            let before = entry.machine.state().clone();
            let now = clock();
            // A step whose write failed is written again (first, as it was due first).
            let mut actions: Vec<_> = entry.machine.unstored().into_iter().collect();
            actions.extend(self.check_ack(&mut entry, now).await);
            actions.extend(self.sink.take_relayed(&mut entry).await);
            actions.extend(entry.machine.tick(now));
            self.carry_out(&mut entry, actions).await;
            let changed = *entry.machine.state() != before;
            self.record(&release, &mut entry, changed).await;
        }
    }

    /// After a release's work: shows its status, then saves its state (when `changed`)
    /// and mirrors it, unless it went stale meanwhile (retired, replaced in the map,
    /// or its Rollout edited or deleted in the published config): a stale outcome is
    /// never written over what the release's successor writes.
    pub(super) async fn record(&self, release: &Arc<Release>, entry: &mut Entry, changed: bool) {
        entry.publish();
        if !self.is_current(release, entry) {
            let key = &entry.machine.rollout().key;
            info!(rollout = %key, "the Rollout changed while its release worked: that outcome is not written");
            return;
        }
        if changed {
            let state = serde_json::to_string(entry.machine.state()).expect("state serializes");
            let key = &entry.machine.rollout().key;
            saved::save(&self.desired, key, &entry.spec, state).await;
        }
        self.sink.mirror(entry).await;
    }

    /// Whether `release` is still the one of its Rollout, as published.
    fn is_current(&self, release: &Arc<Release>, entry: &Entry) -> bool {
        let key = &entry.machine.rollout().key;
        let in_map = self
            .releases()
            .get(key)
            .is_some_and(|r| Arc::ptr_eq(r, release));
        in_map && !entry.retired && self.still_published(entry)
    }

    /// Whether the published config still has the Rollout as the release runs it.
    pub(super) fn still_published(&self, entry: &Entry) -> bool {
        let key = &entry.machine.rollout().key;
        let config = self.desired.published().config;
        config
            .rollouts
            .iter()
            .any(|r| &r.key == key && spec_of(r) == entry.spec)
    }
}

/// A fingerprint of a Rollout's spec: a changed spec starts a new release.
fn spec_of(rollout: &Rollout) -> String {
    crate::snapshot::short_hash(format!("{rollout:?}").as_bytes())
}
