//! A Rollout's release controls at `spec` level: Flagger's `skipAnalysis` and
//! `progressDeadlineSeconds`, coalmine's `onFailure` (`Rollback` or `Pause`). The
//! analysis fields are read by the parent module, not here.

use std::time::Duration;

use crate::ingest::{Obj, Report};
use crate::model::{OnFailure, ReleaseControls};

/// The `spec` fields this module reads (for the parent's list of known fields).
pub(super) const FIELDS: [&str; 3] = ["skipAnalysis", "progressDeadlineSeconds", "onFailure"];

/// Reads the controls of `spec`; every problem goes to `r`, defaults where absent.
pub(super) fn try_controls(spec: Obj<'_, '_>, r: &mut Report) -> ReleaseControls {
    let defaults = ReleaseControls::default();
    let skip_analysis = spec.boolean(r, "skipAnalysis").unwrap_or(false);
    let progress_deadline = spec
        .uint(r, "progressDeadlineSeconds", 1, u32::MAX)
        .map_or(defaults.progress_deadline, |s| {
            Duration::from_secs(u64::from(s))
        });
    let on_failure = match spec.string(r, "onFailure").as_deref() {
        None | Some("Rollback") => OnFailure::Rollback,
        Some("Pause") => OnFailure::Pause,
        Some(other) => {
            r.push(
                spec.at("onFailure"),
                format!("unknown value {other:?} (expected Rollback or Pause)"),
            );
            OnFailure::Rollback
        }
    };
    ReleaseControls {
        skip_analysis,
        progress_deadline,
        on_failure,
    }
}
