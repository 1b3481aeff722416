//! The one resume path and the one checkpoint-and-evaluate step of both training loops.
//!
//! A checkpoint's `trainer_state` is a [`TrainerState`]: the part both loops write
//! ([`SharedState`]: the action stream, the env snapshots, the episode bookkeeping) and the
//! loop's own part (PPO's minibatch stream; DQN's update count and extra files), flattened into
//! one JSON object whose field names are those of every checkpoint written so far.
//!
//! [`Checkpoints::resume`] reads the newest periodic checkpoint, checks that it fits the config
//! and the env (and that the scenario and data files the env is built from have the content
//! they had when it was written), loads the weights and the optimizer, restores the action stream, the env
//! snapshots and the episode bookkeeping, and hands the loop its own part.
//! [`Checkpoints::evaluate_and_checkpoint`] is the end of every iteration: a greedy evaluation
//! every `eval.every_steps` (and at the end), a `best` checkpoint when it improves; a periodic
//! `step` checkpoint every `run.checkpoint_every_steps`, at the end and before stopping, then
//! the pruning of old ones, then on the last iteration a `final` one.

use std::fs;
use std::path::{Path, PathBuf};

use lepton_agent::checkpoint::{self, CheckpointMeta, Extra, SaveRequest, SourceHash};
use lepton_agent::networks::Policy;
use lepton_agent::normalize::ObsNormalizer;
use lepton_agent::optim::Adam;
use lepton_env::scenario::Scenario;
use lepton_env::{ActionLayout, Env, VecEnv};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::{TrainConfig, incompatible_keys};
use crate::envs::{EnvSnapshot, EnvSpec, Replayable};
use crate::evaluation::Evaluator;
use crate::run::{Outcome, RunOptions, TrainError};
use crate::session::{EpisodeTracker, StopCheck, crossed};
use crate::tensorboard::TbWriter;

/// A ChaCha stream's position, exactly, as written in checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RngState {
    seed: Vec<u8>,
    stream: u64,
    /// u128 as a decimal string (JSON numbers are not 128-bit).
    word_pos: String,
}

/// `#[serde(with = "rng_state")]`: a [`ChaCha8Rng`] saved as its [`RngState`].
pub(crate) mod rng_state {
    use super::*;

    pub fn serialize<S: serde::Serializer>(rng: &ChaCha8Rng, s: S) -> Result<S::Ok, S::Error> {
        RngState {
            seed: rng.get_seed().to_vec(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ChaCha8Rng, D::Error> {
        use serde::de::Error;
        let state = RngState::deserialize(d)?;
        let seed: [u8; 32] = state
            .seed
            .as_slice()
            .try_into()
            .map_err(|_| D::Error::custom("RNG seed is not 32 bytes"))?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(state.stream);
        rng.set_word_pos(
            state
                .word_pos
                .parse()
                .map_err(|_| D::Error::custom("bad RNG word position"))?,
        );
        Ok(rng)
    }
}

/// The part of `trainer_state` both loops write.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SharedState {
    #[serde(with = "rng_state")]
    action_rng: ChaCha8Rng,
    envs: Vec<EnvSnapshot>,
    #[serde(flatten)]
    episodes: EpisodeTracker,
}

/// Everything a loop needs to continue exactly, saved as a checkpoint's `trainer_state`: the
/// shared part and the loop's own part `A`, flattened into one JSON object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TrainerState<A> {
    #[serde(flatten)]
    shared: SharedState,
    #[serde(flatten)]
    algo: A,
}

/// What [`Checkpoints::resume`] restored for the loop to continue from.
pub(crate) struct Resumed<A> {
    /// The metadata file resumed from.
    pub checkpoint: PathBuf,
    pub meta: CheckpointMeta,
    pub action_rng: ChaCha8Rng,
    pub episodes: EpisodeTracker,
    /// The loop's own part of the trainer state.
    pub algo: A,
}

/// What a resume restores besides the weights: the training envs, whose episodes it replays,
/// or, for a loop that ends every episode before it checkpoints (ES), only the env's shape
/// to check the checkpoint against.
pub(crate) enum Resumable<'a> {
    Envs(&'a mut VecEnv<Replayable>),
    Shape(EnvShape),
}

/// An env's observation size and actions, which a checkpoint must match.
#[derive(Clone, Debug)]
pub(crate) struct EnvShape {
    pub obs_dim: usize,
    pub num_actions: usize,
    pub actions: ActionLayout,
}

impl EnvShape {
    pub fn of(env: &dyn Env) -> Self {
        Self {
            obs_dim: env.observation_space().dim(),
            num_actions: env.action_space().n,
            actions: env.action_layout(),
        }
    }
}

/// The networks and optimizer state a checkpoint saves, borrowed from the loop.
pub(crate) struct Learner<'a> {
    pub policy: &'a Policy,
    pub optimizer: &'a Adam,
    pub normalizer: Option<&'a ObsNormalizer>,
    /// PPO iterations, or DQN gradient steps, completed.
    pub iteration: u64,
}

/// Where the trainer state comes from at the end of an iteration.
pub(crate) struct Snapshot<'a, A, F> {
    /// The training envs whose episodes a resume replays (`None`: the loop ends every
    /// episode before it checkpoints, as ES does).
    pub venv: Option<&'a VecEnv<Replayable>>,
    pub action_rng: &'a ChaCha8Rng,
    pub episodes: &'a mut EpisodeTracker,
    /// The loop's own part of the state.
    pub algo: A,
    /// What a periodic checkpoint saves besides the policy and its optimizer, as named extra
    /// groups (DQN's target network and replay buffer); called only for periodic checkpoints.
    pub periodic_extras: F,
}

/// Where a loop stands at the end of an iteration (PPO) or env step (DQN).
#[derive(Clone, Copy, Debug)]
pub(crate) struct At {
    pub global_step: u64,
    /// Env steps since the previous end: an "every N steps" event is due when they crossed a
    /// multiple of N.
    pub step_size: u64,
    /// The run's last iteration.
    pub last: bool,
    pub stop: StopCheck,
}

impl At {
    pub fn now(options: &RunOptions, global_step: u64, step_size: u64, last: bool) -> Self {
        Self {
            global_step,
            step_size,
            last,
            stop: StopCheck::now(options, global_step, last),
        }
    }
}

/// `train.init_from`: a fresh run starts from another checkpoint's weights instead of random
/// ones (with `train.init_optimizer`, from its optimizer state too). Returns the checkpoint's
/// observation normaliser, which its weights expect. Everything is checked before the run
/// directory exists: the checkpoint must hold the same network and head, and normalise
/// observations exactly when `normalize_obs` does (`None`: a loop that keeps whichever
/// normaliser the checkpoint has, frozen, as ES does).
pub(crate) fn warm_start(
    config: &TrainConfig,
    policy: &Policy,
    optimizer: &mut Adam,
    normalize_obs: Option<bool>,
) -> Result<Option<ObsNormalizer>, TrainError> {
    let Some(given) = &config.train.init_from else {
        return Ok(None);
    };
    let refuse = |reason: String| TrainError::InitFrom {
        path: given.clone(),
        reason,
    };
    let path = checkpoint::resolve(given).map_err(|e| refuse(e.to_string()))?;
    let meta = checkpoint::read_meta(&path).map_err(|e| refuse(e.to_string()))?;
    let reason = if meta.head != policy.head() {
        Some(format!(
            "it has a {:?} head (trained by another algorithm), this run needs {:?}",
            meta.head,
            policy.head()
        ))
    } else if meta.network != config.network {
        let inline = |n: &lepton_agent::networks::NetworkConfig| {
            toml::to_string(n)
                .unwrap_or_default()
                .trim()
                .replace('\n', ", ")
        };
        Some(format!(
            "its network is {{ {} }}, the config's [network] is {{ {} }}; set [network] to the checkpoint's",
            inline(&meta.network),
            inline(&config.network)
        ))
    } else {
        match (
            meta.normalizer.is_some(),
            normalize_obs.unwrap_or(meta.normalizer.is_some()),
        ) {
            (true, false) => Some(
                "its weights expect normalised observations: set ppo.normalize_obs = true".into(),
            ),
            (false, true) => {
                Some("its weights expect raw observations: set ppo.normalize_obs = false".into())
            }
            _ => None,
        }
    };
    if let Some(reason) = reason {
        return Err(refuse(reason));
    }
    checkpoint::load_weights(&path, &meta, policy).map_err(|e| refuse(e.to_string()))?;
    if config.train.init_optimizer {
        checkpoint::load_optimizer(&path, &meta, optimizer).map_err(|e| refuse(e.to_string()))?;
    }
    eprintln!(
        "warm start: weights{} of {} (env step {})",
        if config.train.init_optimizer {
            " and optimizer state"
        } else {
            ""
        },
        path.display(),
        meta.global_step
    );
    Ok(meta.normalizer)
}

/// A run's `checkpoints/` directory: where it resumes from and saves to.
pub(crate) struct Checkpoints<'a> {
    pub dir: PathBuf,
    config: &'a TrainConfig,
    /// The resolved config, saved in every checkpoint.
    pub config_toml: String,
    /// The content hashes of the scenario and data files the env is built from.
    sources: Vec<SourceHash>,
    /// The env's time unit for its features (a cluster scenario's `time_scale_s`).
    obs_time_scale_s: Option<f64>,
    /// The metadata file of the last checkpoint written or resumed from.
    pub last: Option<PathBuf>,
}

impl<'a> Checkpoints<'a> {
    /// Hashes the env's source files, creates `run_dir/checkpoints` and removes the temporary
    /// files of writes a killed session left there.
    pub fn open(
        config: &'a TrainConfig,
        run_dir: &Path,
        spec: &EnvSpec,
    ) -> Result<Self, TrainError> {
        let sources = checkpoint::hash_sources(&spec.source_files())?;
        let dir = run_dir.join("checkpoints");
        fs::create_dir_all(&dir).map_err(TrainError::io(&dir))?;
        // What a killed earlier session left half-written (its complete files are intact).
        checkpoint::remove_temp_files(run_dir)?;
        checkpoint::remove_temp_files(&dir)?;
        Ok(Self {
            dir,
            config,
            config_toml: config.to_toml(),
            sources,
            obs_time_scale_s: match spec.scenario() {
                Some(Scenario::Cluster(c)) => Some(c.time_scale_s),
                _ => None,
            },
            last: None,
        })
    }

    /// Continues from the newest periodic checkpoint: loads the weights and the optimizer,
    /// schedules each training env's snapshot for its next reset (`Resumable::Envs`), and
    /// returns the rest of the state.
    pub fn resume<A: DeserializeOwned>(
        &mut self,
        run_dir: &Path,
        policy: &Policy,
        optimizer: &mut Adam,
        mut envs: Resumable<'_>,
    ) -> Result<Resumed<A>, TrainError> {
        let shape = match &envs {
            Resumable::Envs(venv) => EnvShape::of(venv.env(0)),
            Resumable::Shape(shape) => shape.clone(),
        };
        let (path, meta, saved_total) = self.latest_compatible(run_dir, &shape)?;
        let total = self.config.train.total_steps;
        if saved_total != total {
            // The schedules (learning rate, ε, β) follow from `total_steps`, so they are
            // re-derived: from here on the run follows a schedule planned for `total` steps.
            let line = format!(
                "env step {}: train.total_steps {saved_total} -> {total} (learning-rate and exploration schedules re-derived for {total} steps)\n",
                meta.global_step
            );
            eprint!("resume: {line}");
            let log = run_dir.join("history.log");
            let mut text = fs::read_to_string(&log).unwrap_or_default();
            text.push_str(&line);
            checkpoint::write_atomic(&log, text.as_bytes())?;
        }
        checkpoint::load_weights(&path, &meta, policy).map_err(TrainError::ResumeCheckpoint)?;
        checkpoint::load_optimizer(&path, &meta, optimizer)
            .map_err(TrainError::ResumeCheckpoint)?;
        let state: TrainerState<A> =
            serde_json::from_value(meta.trainer_state.clone()).map_err(|source| {
                TrainError::TrainerState {
                    checkpoint: path.clone(),
                    source,
                }
            })?;
        let SharedState {
            action_rng,
            envs: snapshots,
            episodes,
        } = state.shared;
        let num_envs = match &envs {
            Resumable::Envs(venv) => venv.num_envs(),
            Resumable::Shape(_) => 0,
        };
        if snapshots.len() != num_envs {
            return Err(TrainError::Resume {
                checkpoint: path,
                reason: format!("saved {} envs, config has {num_envs}", snapshots.len()),
            });
        }
        if let Resumable::Envs(venv) = &mut envs {
            for (i, snapshot) in snapshots.into_iter().enumerate() {
                venv.env_mut(i).restore_on_next_reset(snapshot);
            }
        }
        self.last = Some(path.clone());
        Ok(Resumed {
            checkpoint: path,
            meta,
            action_rng,
            episodes,
            algo: state.algo,
        })
    }

    /// Resets the training envs with `seed`: a fresh start, or after [`Checkpoints::resume`]
    /// the restored episodes, refused if an env could not replay its recorded actions.
    pub fn reset_envs(
        &self,
        venv: &mut VecEnv<Replayable>,
        seed: u64,
        group_size: usize,
    ) -> Result<(), TrainError> {
        // Env i's base seed is seed + i / group_size: a group's members play the same episodes.
        let seeds: Vec<u64> = (0..venv.num_envs())
            .map(|i| seed.wrapping_add((i / group_size.max(1)) as u64))
            .collect();
        venv.reset_each(&seeds);
        for i in 0..venv.num_envs() {
            if let Some(reason) = venv.env_mut(i).take_restore_error() {
                return Err(TrainError::Resume {
                    checkpoint: self.last.clone().unwrap_or_else(|| self.dir.clone()),
                    reason: format!(
                        "env {i} cannot be restored ({reason}): the env is not the one the checkpoint was taken from"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The newest periodic checkpoint, checked against the config, the env's source files and
    /// the env's sizes and action layout; with the `train.total_steps` it was written under.
    fn latest_compatible(
        &self,
        run_dir: &Path,
        shape: &EnvShape,
    ) -> Result<(PathBuf, CheckpointMeta, u64), TrainError> {
        let EnvShape {
            obs_dim,
            num_actions,
            actions,
        } = shape.clone();
        let path =
            checkpoint::latest_periodic(&self.dir).map_err(|source| TrainError::NoCheckpoint {
                run_dir: run_dir.to_path_buf(),
                source,
            })?;
        let meta = checkpoint::read_meta(&path).map_err(TrainError::ResumeCheckpoint)?;
        let saved: TrainConfig =
            toml::from_str(&meta.config_toml).map_err(|source| TrainError::SavedConfig {
                checkpoint: path.clone(),
                source,
            })?;
        let keys = incompatible_keys(&saved, self.config);
        let changed = checkpoint::changed_sources(&meta.sources);
        let reason = if !keys.is_empty() {
            format!(
                "the config differs from the checkpoint's in {}",
                keys.join(", ")
            )
        } else if !changed.is_empty() {
            // Replaying the envs' recorded actions on other data would silently diverge.
            format!(
                "the env's files are not what it was trained on: {}",
                changed.join("; ")
            )
        } else if meta.versions.format >= 2 && meta.action_layout != actions {
            format!(
                "it was trained with the actions {:?}, the env has {actions:?}",
                meta.action_layout
            )
        } else if meta.obs_dim != obs_dim || meta.num_actions != num_actions {
            format!(
                "it was trained with {} observations and {} actions, the env has {obs_dim} and {num_actions}",
                meta.obs_dim, meta.num_actions
            )
        } else if self.config.train.total_steps <= meta.global_step {
            format!(
                "train.total_steps = {} is not beyond the checkpoint's step {}: nothing is left to train (pass a larger --total-steps to extend the run)",
                self.config.train.total_steps, meta.global_step
            )
        } else {
            let saved_total = saved.train.total_steps;
            return Ok((path, meta, saved_total));
        };
        Err(TrainError::Resume {
            checkpoint: path,
            reason,
        })
    }

    /// The end of an iteration (see the module docs); the outcome to stop with, if any.
    pub fn evaluate_and_checkpoint<A: Serialize>(
        &mut self,
        evaluator: &Evaluator<'_>,
        tb: &mut TbWriter,
        at: At,
        learner: Learner<'_>,
        mut snapshot: Snapshot<
            '_,
            A,
            impl FnMut() -> Result<Vec<(&'static str, Extra)>, TrainError>,
        >,
    ) -> Result<Option<Outcome>, TrainError> {
        let crossed = |every: u64| crossed(every, at.global_step, at.step_size);
        let eval_every = self.config.eval.every_steps;
        if crossed(eval_every) || (at.last && eval_every > 0) {
            let result = evaluator.evaluate_and_log(
                tb,
                learner.policy,
                learner.normalizer,
                at.global_step,
            )?;
            if snapshot
                .episodes
                .improves_eval(result.selection_score(self.config.eval.select))
            {
                let state = snapshot.state();
                self.save("best", at.global_step, &learner, &state, Vec::new())?;
            }
        }
        if crossed(self.config.run.checkpoint_every_steps) || at.last || at.stop.any() {
            let extras = (snapshot.periodic_extras)()?;
            let state = snapshot.state();
            let mut path = self.save("step", at.global_step, &learner, &state, extras)?;
            checkpoint::prune_periodic(&self.dir, self.config.run.keep_checkpoints)?;
            if at.last {
                path = self.save("final", at.global_step, &learner, &state, Vec::new())?;
            }
            self.last = Some(path);
            tb.flush();
        }
        Ok(at.stop.outcome())
    }

    /// Writes the imitation clone as the checkpoint `clone` (step 0, no trainer state: it is
    /// for evaluation, never resumed from).
    pub fn save_clone(&self, learner: &Learner<'_>) -> Result<PathBuf, TrainError> {
        self.write("clone", 0, learner, serde_json::Value::Null, Vec::new())
    }

    /// Writes the imitation clone as the checkpoint `best` (see [`Self::save_clone`]), before
    /// any PPO checkpoint competes with it.
    pub fn save_best_clone(&self, learner: &Learner<'_>) -> Result<PathBuf, TrainError> {
        self.write("best", 0, learner, serde_json::Value::Null, Vec::new())
    }

    fn save<A: Serialize>(
        &self,
        kind: &str,
        global_step: u64,
        learner: &Learner<'_>,
        state: &TrainerState<A>,
        extras: Vec<(&str, Extra)>,
    ) -> Result<PathBuf, TrainError> {
        let state = serde_json::to_value(state).expect("trainer state serialises");
        self.write(kind, global_step, learner, state, extras)
    }

    fn write(
        &self,
        kind: &str,
        global_step: u64,
        learner: &Learner<'_>,
        trainer_state: serde_json::Value,
        extras: Vec<(&str, Extra)>,
    ) -> Result<PathBuf, TrainError> {
        Ok(checkpoint::save(
            &self.dir,
            SaveRequest {
                kind,
                global_step,
                iteration: learner.iteration,
                seed: self.config.train.seed,
                config_toml: &self.config_toml,
                network: &self.config.network,
                policy: learner.policy,
                optimizer: learner.optimizer,
                normalizer: learner.normalizer,
                extras,
                sources: &self.sources,
                obs_time_scale_s: self.obs_time_scale_s,
                trainer_state,
            },
        )?)
    }
}

impl<A: Serialize, F> Snapshot<'_, A, F> {
    fn state(&self) -> TrainerState<&A> {
        let envs = self.venv.map_or_else(Vec::new, |venv| {
            (0..venv.num_envs())
                .map(|i| venv.env(i).snapshot())
                .collect()
        });
        TrainerState {
            shared: SharedState {
                action_rng: self.action_rng.clone(),
                envs,
                episodes: self.episodes.clone(),
            },
            algo: &self.algo,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checkpoints written before the state was split into a shared and a per-loop part
    /// still resume: the JSON field names are the same.
    #[test]
    fn trainer_state_keeps_its_field_names() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Own {
            num_updates: u64,
            target_file: Option<String>,
        }
        let mut episodes = EpisodeTracker::new();
        episodes.recent_returns.extend([1.0, 2.5]);
        episodes.return_highs.push((64, 1.75));
        episodes.num_episodes = 2;
        episodes.best_eval_score = Some(3.0);
        let state = TrainerState {
            shared: SharedState {
                action_rng: ChaCha8Rng::seed_from_u64(1),
                envs: Vec::new(),
                episodes,
            },
            algo: Own {
                num_updates: 7,
                target_file: None,
            },
        };
        let value = serde_json::to_value(&state).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "action_rng",
                "best_eval_score",
                "envs",
                "num_episodes",
                "num_updates",
                "recent_returns",
                "return_highs",
                "target_file"
            ]
        );
        assert_eq!(
            value["action_rng"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["seed", "stream", "word_pos"]
        );
        let back: TrainerState<Own> = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(back.algo, state.algo);
        assert_eq!(back.shared.action_rng, state.shared.action_rng);
        assert_eq!(serde_json::to_value(&back).unwrap(), value);
    }
}
