//! What the PPO loop ([`crate::trainer`]) and the DQN loop ([`crate::dqn_loop`]) share around
//! their algorithms: opening a run (device, env spec, `checkpoints/`), the resume checks, the
//! resolved `config.toml` and TensorBoard writer, episode bookkeeping, the periodic evaluation's
//! TensorBoard points, periodic checkpoints, stop requests, the progress bar and `summary.json`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lepton_agent::checkpoint::{self, CheckpointMeta};
use lepton_agent::device::{DeviceChoice, set_torch_threads};
use tch::Device;

use crate::config::{TrainConfig, incompatible_keys};
use crate::envs::EnvSpec;
use crate::tensorboard::TbWriter;
use crate::trainer::{
    EvalResult, Outcome, RETURN_WINDOW, RunOptions, TORCH_THREADS, TrainError, log_cluster_metrics,
};

/// The device, env spec and checkpoint directory of a run, ready before any env is built.
pub(crate) struct RunSetup {
    pub device: Device,
    pub spec: EnvSpec,
    pub ckpt_dir: PathBuf,
}

impl RunSetup {
    /// Resolves `run.device`, sets libtorch's threads (once per process), builds the env spec
    /// and creates `run_dir/checkpoints`.
    pub fn open(config: &TrainConfig, options: &RunOptions) -> Result<Self, TrainError> {
        let device = config
            .run
            .device
            .parse::<DeviceChoice>()
            .and_then(DeviceChoice::resolve)
            .map_err(|e| TrainError::Config(format!("run.device: {e}")))?;
        TORCH_THREADS.call_once(|| set_torch_threads(config.run.torch_threads));
        let spec = EnvSpec::from_config(&config.env).map_err(TrainError::Config)?;
        let ckpt_dir = options.run_dir.join("checkpoints");
        std::fs::create_dir_all(&ckpt_dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", ckpt_dir.display()))?;
        Ok(Self {
            device,
            spec,
            ckpt_dir,
        })
    }
}

/// The newest periodic checkpoint of the run, checked against `config` and the env's sizes:
/// its metadata path and metadata, for the loop to load its networks and state from.
pub(crate) fn resume_checkpoint(
    ckpt_dir: &Path,
    run_dir: &Path,
    config: &TrainConfig,
    obs_dim: usize,
    num_actions: usize,
) -> Result<(PathBuf, CheckpointMeta), TrainError> {
    let meta_path = checkpoint::latest_periodic(ckpt_dir).map_err(|e| {
        TrainError::Config(format!("cannot resume from {}: {e}", run_dir.display()))
    })?;
    let meta = checkpoint::read_meta(&meta_path).map_err(|e| TrainError::Config(e.to_string()))?;
    let saved: TrainConfig = toml::from_str(&meta.config_toml).map_err(|e| {
        TrainError::Config(format!("{}: unreadable config: {e}", meta_path.display()))
    })?;
    let keys = incompatible_keys(&saved, config);
    if !keys.is_empty() {
        return Err(TrainError::Config(format!(
            "cannot resume {}: the config differs from the checkpoint's in {}",
            meta_path.display(),
            keys.join(", ")
        )));
    }
    if meta.obs_dim != obs_dim || meta.num_actions != num_actions {
        return Err(TrainError::Config(format!(
            "cannot resume {}: it was trained with {} observations and {} actions, the env has {obs_dim} and {num_actions}",
            meta_path.display(),
            meta.obs_dim,
            meta.num_actions
        )));
    }
    Ok((meta_path, meta))
}

/// The resolved config (written to `run_dir/config.toml`), the TensorBoard writer and the
/// reference heuristics' mean slowdowns on the evaluation seeds (computed once).
pub(crate) struct RunLogs {
    pub config_toml: String,
    pub tb: TbWriter,
    pub heuristics: Vec<(String, f64)>,
}

impl RunLogs {
    pub fn start(
        config: &TrainConfig,
        options: &RunOptions,
        spec: &EnvSpec,
        global_step: u64,
    ) -> Result<Self, TrainError> {
        let config_toml = config.to_toml();
        std::fs::write(options.run_dir.join("config.toml"), &config_toml)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", options.run_dir.display()))?;
        let mut tb = TbWriter::new(&options.run_dir);
        tb.text(
            "config",
            &format!("    {}", config_toml.replace('\n', "\n    ")),
            global_step,
        );
        let heuristics = if config.eval.every_steps > 0 {
            spec.heuristic_slowdowns(config.eval.seed, config.eval.num_episodes)
                .map_err(|e| anyhow::anyhow!("{e}"))?
        } else {
            Vec::new()
        };
        Ok(Self {
            config_toml,
            tb,
            heuristics,
        })
    }
}

/// One periodic evaluation's points, with the reference `heuristics`' beside them.
pub(crate) fn log_eval(
    tb: &mut TbWriter,
    heuristics: &[(String, f64)],
    result: &EvalResult,
    step: u64,
) {
    tb.scalar("eval/episodic_return", result.mean_return, step);
    tb.scalar("eval/episodic_length", result.mean_length, step);
    if let Some(slowdown) = result.mean_slowdown {
        tb.scalar("eval/mean_slowdown", slowdown, step);
    }
    for (name, slowdown) in heuristics {
        tb.scalar(
            &format!("eval/heuristic_{name}_mean_slowdown"),
            *slowdown,
            step,
        );
    }
    if let Some(best) = heuristics.iter().map(|h| h.1).reduce(f64::min) {
        tb.scalar("eval/best_heuristic_mean_slowdown", best, step);
    }
}

/// Episode bookkeeping saved in every checkpoint's trainer state: the last [`RETURN_WINDOW`]
/// returns, the highs of their mean, the episode count and the best evaluation return.
#[derive(Clone, Debug, Default)]
pub(crate) struct EpisodeTracker {
    pub recent_returns: VecDeque<f64>,
    /// (env step, mean of the last 20 returns) each time that mean reached a new high.
    pub return_highs: Vec<(u64, f64)>,
    pub num_episodes: u64,
    pub best_eval_return: Option<f64>,
}

impl EpisodeTracker {
    pub fn new() -> Self {
        Self {
            recent_returns: VecDeque::with_capacity(RETURN_WINDOW),
            ..Self::default()
        }
    }

    /// The bookkeeping as saved in a checkpoint.
    pub fn restored(
        recent_returns: Vec<f64>,
        return_highs: Vec<(u64, f64)>,
        num_episodes: u64,
        best_eval_return: Option<f64>,
    ) -> Self {
        let mut tracker = Self::new();
        tracker.recent_returns.extend(recent_returns);
        tracker.return_highs = return_highs;
        tracker.num_episodes = num_episodes;
        tracker.best_eval_return = best_eval_return;
        tracker
    }

    /// Counts a finished episode and logs it (`charts/*`, and `cluster/*` for scheduling envs).
    pub fn record(
        &mut self,
        tb: &mut TbWriter,
        episode_return: f64,
        length: usize,
        metrics: Option<&lepton_env::EpisodeMetrics>,
        resources: &[String],
        global_step: u64,
    ) {
        self.num_episodes += 1;
        tb.scalar("charts/episodic_return", episode_return, global_step);
        tb.scalar("charts/episodic_length", length as f64, global_step);
        if self.recent_returns.len() == RETURN_WINDOW {
            self.recent_returns.pop_front();
        }
        self.recent_returns.push_back(episode_return);
        if self.recent_returns.len() == RETURN_WINDOW {
            let mean = self.recent_returns.iter().sum::<f64>() / RETURN_WINDOW as f64;
            if self
                .return_highs
                .last()
                .is_none_or(|&(_, best)| mean > best)
            {
                self.return_highs.push((global_step, mean));
            }
        }
        if let Some(metrics) = metrics {
            log_cluster_metrics(tb, "cluster", metrics, resources, global_step);
        }
    }

    /// Records an evaluation's mean return; true when it is the best so far.
    pub fn improves_eval(&mut self, mean_return: f64) -> bool {
        let better = self.best_eval_return.is_none_or(|b| mean_return > b);
        if better {
            self.best_eval_return = Some(mean_return);
        }
        better
    }

    pub fn recent_returns_vec(&self) -> Vec<f64> {
        self.recent_returns.iter().copied().collect()
    }

    /// The mean of the recent returns (`None` before the first episode).
    pub fn mean_return(&self) -> Option<f64> {
        mean(&self.recent_returns)
    }
}

pub(crate) fn mean(values: &VecDeque<f64>) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// A mean return for the progress bar and log lines (`-` before the first episode).
pub(crate) fn fmt_return(mean_return: Option<f64>) -> String {
    mean_return.map_or("-".to_string(), |r| format!("{r:.2}"))
}

/// Whether the last `step_size` env steps, ending at `global_step`, crossed a multiple of
/// `every` (never for `every = 0`).
pub(crate) fn crossed(every: u64, global_step: u64, step_size: u64) -> bool {
    every > 0 && global_step / every > (global_step - step_size) / every
}

pub(crate) fn make_progress(enabled: bool, total: u64, position: u64) -> ProgressBar {
    let bar = if enabled {
        ProgressBar::new(total)
    } else {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} steps | {msg} | ETA {eta}",
        )
        .expect("valid template"),
    );
    bar.set_position(position);
    bar
}

/// This session's wall clock and the env step it started at.
pub(crate) struct SessionClock {
    start: Instant,
    start_step: u64,
}

impl SessionClock {
    pub fn start(global_step: u64) -> Self {
        Self {
            start: Instant::now(),
            start_step: global_step,
        }
    }

    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Env steps per second in this session.
    pub fn sps(&self, global_step: u64) -> f64 {
        (global_step - self.start_step) as f64 / self.seconds().max(1e-9)
    }
}

/// The end of a diverged run: flushes the event file, leaves the progress bar as it is.
pub(crate) fn diverged(
    tb: &mut TbWriter,
    progress: &ProgressBar,
    step: u64,
    reason: String,
    last_checkpoint: Option<PathBuf>,
) -> TrainError {
    tb.flush();
    progress.abandon();
    TrainError::Diverged {
        step,
        reason,
        last_checkpoint,
    }
}

/// Whether to stop after this iteration (or env step), and why.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StopCheck {
    /// Interrupted (Ctrl-C).
    pub requested: bool,
    /// `stop_at_step` reached before the last iteration.
    pub at_step: bool,
}

impl StopCheck {
    pub fn now(options: &RunOptions, global_step: u64, last: bool) -> Self {
        Self {
            requested: options.interrupt.load(Ordering::SeqCst),
            at_step: options.stop_at_step.is_some_and(|s| global_step >= s) && !last,
        }
    }

    pub fn any(&self) -> bool {
        self.requested || self.at_step
    }

    /// The outcome to stop with, if any.
    pub fn outcome(&self) -> Option<Outcome> {
        if self.requested {
            Some(Outcome::Interrupted)
        } else if self.at_step {
            Some(Outcome::Stopped)
        } else {
            None
        }
    }
}

/// A periodic (`step`) checkpoint of `state`, then the pruning of old ones (`prune_extra` after
/// the common pruning), then on the last iteration a `final` one: the path of the last written.
pub(crate) fn save_periodic<S: Clone>(
    state: S,
    last: bool,
    ckpt_dir: &Path,
    keep: usize,
    mut save: impl FnMut(&str, S) -> Result<PathBuf, TrainError>,
    prune_extra: impl FnOnce() -> Result<(), TrainError>,
) -> Result<PathBuf, TrainError> {
    let path = save("step", state.clone())?;
    checkpoint::prune_periodic(ckpt_dir, keep).map_err(|e| anyhow::anyhow!("{e}"))?;
    prune_extra()?;
    if last {
        return save("final", state);
    }
    Ok(path)
}

/// Writes `run_dir/summary.json`: the fields both loops record, with the loop's `extra` ones.
pub(crate) fn write_summary(
    run_dir: &Path,
    outcome: Outcome,
    global_step: u64,
    clock: &SessionClock,
    episodes: &EpisodeTracker,
    extra: serde_json::Value,
) -> Result<(), TrainError> {
    let session_s = clock.seconds();
    let mut summary = serde_json::json!({
        "outcome": format!("{outcome:?}"),
        "global_step": global_step,
        "session_seconds": session_s,
        "session_sps": (global_step - clock.start_step) as f64 / session_s.max(1e-9),
        "num_episodes": episodes.num_episodes,
        "mean_return_last_20": episodes.mean_return(),
        "return_highs_20": episodes.return_highs,
        "best_eval_return": episodes.best_eval_return,
    });
    if let (Some(fields), serde_json::Value::Object(extra)) = (summary.as_object_mut(), extra) {
        fields.extend(extra);
    }
    checkpoint::write_atomic(
        &run_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)
            .expect("json")
            .as_bytes(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
