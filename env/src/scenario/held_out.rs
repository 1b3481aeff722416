//! The one-line warning that a scenario's test (or model-selection) episodes are not held out
//! from its training episodes, shared by lepton-eval and lepton-train.

use super::Scenario;
use crate::workload::{EpisodeVariety, Part};

/// What episodes a tool is about to play on a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpisodeUse {
    /// lepton-eval's test episodes.
    Test,
    /// lepton-train's model-selection episodes, played on the training scenario.
    ModelSelection,
}

impl Scenario {
    /// How this scenario's episodes differ from one another (see [`EpisodeVariety`]).
    pub fn variety(&self) -> EpisodeVariety {
        match self {
            Self::Cluster(c) => c.workload.variety(),
            Self::DeepRm(c) => c.workload.variety(),
        }
    }

    /// A one-line warning, naming the scenario as `name`, when `usage` episodes on this
    /// scenario would be the training episodes themselves: every episode replays the same
    /// tasks (so intervals collapse to a point), or a split scenario is evaluated on its
    /// training part or trained on its test part. `None` when nothing is wrong.
    pub fn held_out_warning(&self, name: &str, usage: EpisodeUse) -> Option<String> {
        let episodes = match usage {
            EpisodeUse::Test => "test episodes",
            EpisodeUse::ModelSelection => "model-selection episodes",
        };
        match (self.variety(), usage) {
            (EpisodeVariety::Identical { num_tasks }, _) => Some(format!(
                "{name}: every episode replays the same {num_tasks} tasks whatever the seed, so \
                 the {episodes} are the training trace itself and intervals collapse to a \
                 point; set workload.window_jobs and workload.split (part = \"test\" to \
                 evaluate held-out tasks)"
            )),
            (
                EpisodeVariety::Windows {
                    part: Some(Part::Train),
                },
                EpisodeUse::Test,
            ) => Some(format!(
                "{name}: the test episodes replay the training part of workload.split; set \
                 workload.part = \"test\" to evaluate held-out tasks"
            )),
            (
                EpisodeVariety::Windows {
                    part: Some(Part::Test),
                },
                EpisodeUse::ModelSelection,
            ) => Some(format!(
                "{name}: training replays the test part of workload.split, so those tasks are \
                 no longer held out; set workload.part = \"train\" for training"
            )),
            _ => None,
        }
    }
}
