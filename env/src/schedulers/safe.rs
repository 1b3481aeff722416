//! `safe[:BASE[:THRESHOLD]]`: BASE keeping new tasks off servers whose health reading
//! (`[failures] health`; see `cluster/failures.rs`) predicts a failure
//! ([`Filter::OffRisky`](super::Filter::OffRisky); registry default `safe:tetris:0.5`).
//!
//! At each decision the placements on servers whose reading is at or above `threshold` are
//! removed when a placement on a server below it remains, and the base heuristic chooses from
//! the rest; when every feasible placement is on a risky server the base chooses as usual, so
//! `safe` waits no more than its base. The threshold is the failure predictor's: a reading at
//! or above it predicts a failure within the signal's lead time
//! (`examples/failure_prediction.rs` fits it on simulated histories). Without health signals
//! every reading is 0 and `safe` plays exactly its base. In slot mode the env picks the
//! server, so a task whose server would be risky is passed over instead.

use super::Snapshot;

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
