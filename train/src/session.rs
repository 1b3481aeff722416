//! What the PPO loop ([`crate::ppo_loop`]) and the DQN loop ([`crate::dqn_loop`]) share around
//! their algorithms besides checkpoints ([`crate::checkpointing`]) and evaluation
//! ([`crate::evaluation`]): opening a run (device, env spec), the resolved
//! `config.toml`, TensorBoard writer, progress bar and clock, episode bookkeeping, stop
//! requests, divergence and `summary.json`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lepton_agent::checkpoint;
use lepton_agent::device::{DeviceChoice, set_torch_threads};
use lepton_env::VecEnv;
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::config::TrainConfig;
use crate::envs::{EnvSpec, Replayable};
use crate::run::{Outcome, RETURN_WINDOW, RunOptions, TORCH_THREADS, TrainError};
use crate::tensorboard::TbWriter;

/// The device and env spec of a run, ready before any env is built.
pub(crate) struct RunSetup {
    pub device: Device,
    pub spec: EnvSpec,
    /// The evaluation episodes' env (`eval.scenario`, else `spec`'s).
    pub eval_spec: EnvSpec,
}

impl RunSetup {
    /// Resolves `run.device`, sets libtorch's threads (once per process) and builds the env
    /// specs.
    pub fn open(config: &TrainConfig) -> Result<Self, TrainError> {
        let device = config
            .run
            .device
            .parse::<DeviceChoice>()
            .and_then(DeviceChoice::resolve)
            .map_err(TrainError::Device)?;
        TORCH_THREADS.call_once(|| set_torch_threads(config.run.torch_threads));
        let spec = EnvSpec::from_config(&config.env)?;
        let eval_spec = spec.for_evaluation(config)?;
        Ok(Self {
            device,
            spec,
            eval_spec,
        })
    }
}

/// A session's outputs besides checkpoints: the resolved config written to
/// `run_dir/config.toml`, the TensorBoard writer (with the config as its first text), the
/// progress bar (or log lines) and the session's clock.
pub(crate) struct RunLogs {
    pub tb: TbWriter,
    pub progress: ProgressBar,
    pub clock: SessionClock,
}

impl RunLogs {
    pub fn start(
        config_toml: &str,
        options: &RunOptions,
        total_steps: u64,
        global_step: u64,
    ) -> Result<Self, TrainError> {
        // Atomic, like checkpoints: a kill mid-write leaves the previous config.toml whole.
        checkpoint::write_atomic(&options.run_dir.join("config.toml"), config_toml.as_bytes())?;
        let mut tb = TbWriter::new(&options.run_dir);
        tb.text(
            "config",
            &format!("    {}", config_toml.replace('\n', "\n    ")),
            global_step,
        );
        Ok(Self {
            tb,
            progress: make_progress(options.progress, total_steps, global_step),
            clock: SessionClock::start(global_step),
        })
    }
}

/// Episode bookkeeping saved in every checkpoint's trainer state: the last [`RETURN_WINDOW`]
/// returns, the highs of their mean, the episode count and the best evaluation return.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct EpisodeTracker {
    pub recent_returns: VecDeque<f64>,
    /// (env step, mean of the last 20 returns) each time that mean reached a new high.
    pub return_highs: Vec<(u64, f64)>,
    pub num_episodes: u64,
    /// The best model-selection score so far (higher is better, see
    /// [`EvalResult::selection_score`](crate::evaluation::EvalResult::selection_score)).
    #[serde(alias = "best_eval_return")]
    pub best_eval_score: Option<f64>,
}

impl EpisodeTracker {
    pub fn new() -> Self {
        Self {
            recent_returns: VecDeque::with_capacity(RETURN_WINDOW),
            ..Self::default()
        }
    }

    /// Counts and logs the episodes that ended on the last step of `venv`.
    pub fn record_finished(
        &mut self,
        tb: &mut TbWriter,
        venv: &VecEnv<Replayable>,
        resources: &[String],
        global_step: u64,
    ) {
        for i in 0..venv.num_envs() {
            // The VecEnv says whether the episode ended on this step (a parked env's
            // `last_episode` outlives it); the Replayable's return survives a resume.
            let (Some((_, metrics)), Some((episode_return, length))) =
                (venv.finished_episode(i), venv.env(i).last_episode)
            else {
                continue;
            };
            self.record(tb, episode_return, length, metrics, resources, global_step);
        }
    }

    /// Counts `count` episodes played by a population of policies (ES) and logs their mean
    /// return and length as one point, which is also what enters the recent returns.
    pub fn record_population(
        &mut self,
        tb: &mut TbWriter,
        mean_return: f64,
        mean_length: f64,
        count: u64,
        global_step: u64,
    ) {
        self.record(
            tb,
            mean_return,
            mean_length.round() as usize,
            None,
            &[],
            global_step,
        );
        self.num_episodes += count.saturating_sub(1);
    }

    /// Counts a finished episode and logs it (`charts/*`, and `cluster/*` for scheduling envs).
    fn record(
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
    pub fn improves_eval(&mut self, score: f64) -> bool {
        let better = self.best_eval_score.is_none_or(|b| score > b);
        if better {
            self.best_eval_score = Some(score);
        }
        better
    }

    /// The mean of the recent returns (`None` before the first episode).
    pub fn mean_return(&self) -> Option<f64> {
        mean(&self.recent_returns)
    }
}

fn mean(values: &VecDeque<f64>) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// A mean return for the progress bar and log lines (`-` before the first episode).
pub(crate) fn fmt_return(mean_return: Option<f64>) -> String {
    mean_return.map_or("-".to_string(), |r| format!("{r:.2}"))
}

/// Whether the last `step_size` env steps, ending at `global_step`, crossed a multiple of
/// `every` (never for `every = 0`).
pub(crate) fn crossed(every: u64, global_step: u64, step_size: u64) -> bool {
    times_crossed(every, global_step, step_size) > 0
}

/// How many multiples of `every` the last `step_size` steps up to `global_step` crossed (0 when
/// `every` is 0).
pub(crate) fn times_crossed(every: u64, global_step: u64, step_size: u64) -> u64 {
    match every {
        0 => 0,
        _ => global_step / every - (global_step - step_size) / every,
    }
}

fn make_progress(enabled: bool, total: u64, position: u64) -> ProgressBar {
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

/// Logs a scheduling episode's metrics under `prefix/`.
fn log_cluster_metrics(
    tb: &mut TbWriter,
    prefix: &str,
    m: &lepton_env::EpisodeMetrics,
    resources: &[String],
    step: u64,
) {
    tb.scalar(&format!("{prefix}/mean_slowdown"), m.mean_slowdown, step);
    tb.scalar(
        &format!("{prefix}/completion_slowdown"),
        m.completion_slowdown,
        step,
    );
    tb.scalar(&format!("{prefix}/p95_slowdown"), m.p95_slowdown, step);
    tb.scalar(&format!("{prefix}/mean_wait"), m.mean_wait, step);
    tb.scalar(&format!("{prefix}/num_dropped"), m.num_dropped as f64, step);
    tb.scalar(
        &format!("{prefix}/num_unfinished"),
        m.num_unfinished as f64,
        step,
    );
    tb.scalar(
        &format!("{prefix}/deadline_miss_rate"),
        m.deadline_miss_rate,
        step,
    );
    for (r, u) in m.utilization.iter().enumerate() {
        let name = resources.get(r).cloned().unwrap_or_else(|| r.to_string());
        tb.scalar(&format!("{prefix}/utilization_{name}"), *u, step);
    }
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
        "best_eval_score": episodes.best_eval_score,
    });
    if let (Some(fields), serde_json::Value::Object(extra)) = (summary.as_object_mut(), extra) {
        fields.extend(extra);
    }
    checkpoint::write_atomic(
        &run_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)
            .expect("json")
            .as_bytes(),
    )?;
    Ok(())
}
