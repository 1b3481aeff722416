//! `lepton-serve`: lepton's policies in front of real schedulers.
//!
//! - [`slurm::driver`]: ranks a Slurm cluster's pending jobs with a lepton priority policy
//!   ([`rank`]) or a trained checkpoint ([`learned`]) and applies the ranking as job
//!   priorities, every few seconds;
//! - [`replay`]: submits a trace window ([`jobs`]) to Slurm as time-scaled `sleep` jobs and
//!   reads back when each started and ended; [`simulate`] runs the same job list in lepton's
//!   simulator and [`compare`] puts the runs in one paired report;
//! - [`extender`]: the Kubernetes scheduler-extender HTTP contract (`filter`, `prioritize`)
//!   backed by a lepton placement score.
//!
//! ```
//! use lepton_serve::rank::{QueueState, QueuedJob, Ranker};
//!
//! let queue = QueueState {
//!     now_s: 10.0,
//!     waiting: vec![
//!         QueuedJob { id: 10, arrival_s: 0.0, estimate_s: 3600.0, procs: 4 },
//!         QueuedJob { id: 11, arrival_s: 5.0, estimate_s: 60.0, procs: 1 },
//!     ],
//!     running: vec![],
//! };
//! assert_eq!(Ranker::by_name("sjf").unwrap().rank(&queue).unwrap(), vec![11, 10]);
//! ```

use std::path::Path;

/// Writes `text` to `path` through a temporary file in the same folder and a rename, so an
/// interrupted write leaves the previous file (lepton's rule for every file it writes).
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

pub mod compare;
pub mod extender;
pub mod jobs;
pub mod learned;
pub mod rank;
pub mod replay;
pub mod simulate;
pub mod slurm;
