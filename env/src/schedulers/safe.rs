//! [`Safe`]: a heuristic that keeps new tasks off servers whose health reading predicts a
//! failure (`[failures] health`; see `cluster/failures.rs`).
//!
//! At each decision the placements on servers whose reading is at or above `threshold` are
//! removed when a placement on a server below it remains, and the base heuristic chooses from
//! the rest; when every feasible placement is on a risky server the base chooses as usual, so
//! `safe` waits no more than its base. The threshold is the failure predictor's: a reading at
//! or above it predicts a failure within the signal's lead time
//! (`examples/failure_prediction.rs` fits it on simulated histories). Without health signals
//! every reading is 0 and `safe` plays exactly its base. In slot mode the env picks the
//! server, so a task whose server would be risky is passed over instead.

use super::{Heuristic, Scheduler, Snapshot};
use crate::scenario::ScenarioEnv;

/// Registry name `safe[:BASE[:THRESHOLD]]`, by default `safe:tetris:0.5`.
#[derive(Clone, Debug)]
pub struct Safe {
    base: Heuristic,
    threshold: f64,
    snapshot: Snapshot,
}

impl Safe {
    pub fn new(base: Heuristic, threshold: f64) -> Self {
        Self {
            base,
            threshold,
            snapshot: Snapshot::default(),
        }
    }
}

impl Scheduler for Safe {
    fn name(&self) -> String {
        format!("safe:{}:{}", self.base.name(), self.threshold)
    }

    fn reset(&mut self, _seed: u64) {}

    fn act(&mut self, env: &ScenarioEnv, _obs: &[f32], _mask: &[bool]) -> usize {
        self.snapshot.fill(env);
        keep_off_risky(&mut self.snapshot, self.threshold);
        self.base.action_in(&self.snapshot)
    }
}

/// Removes the placements on servers whose health reading is at or above `threshold`, unless
/// that would remove them all.
pub fn keep_off_risky(snapshot: &mut Snapshot, threshold: f64) {
    let Snapshot {
        servers,
        placements,
        ..
    } = snapshot;
    let safe = |server: usize| servers[server].health < threshold;
    if placements.iter().any(|p| safe(p.server)) {
        placements.retain(|p| safe(p.server));
    }
}
