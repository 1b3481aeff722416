//! The imitation warm start's IO side (DeepRM's `pg_su`): run the teacher heuristic on
//! training seeds and record its decisions ([`collect`]), clone them into the fresh policy and
//! log how well it agrees ([`warm_start`]), and keep the clone frozen as the prior of PPO's
//! KL term ([`Prior`]), saved in periodic checkpoints as the extra group `prior` so a resumed
//! run continues with it instead of cloning again.
//!
//! Seeds: demonstration episode `k` uses `episode_seed(mix64(train.seed ^ DEMO_STREAM), k)`, a
//! 64-bit mixed seed like every training episode's (disjoint in practice from the small,
//! consecutive held-out seeds of evaluation suites); the minibatch order of cloning is a ChaCha
//! stream of its own. Cloning changes none of PPO's streams, so a run with `[imitation]`
//! differs from one without only by its starting weights (and normaliser) and the KL term.
//!
//! TensorBoard: `imitation/{loss,cross_entropy,value_loss,agreement,agreement_free}` per
//! cloning epoch (step = epoch), `imitation/eval_{episodic_return,mean_slowdown}` of the clone
//! on the run's evaluation seeds (step 0), and during PPO `imitation/kl_coef` and
//! `losses/kl_prior` per update.

use std::path::Path;
use std::time::Instant;

use lepton_agent::checkpoint::{self, Extra};
use lepton_agent::imitation::{self, Demonstrations, ImitationConfig};
use lepton_agent::named::copy_named;
use lepton_agent::networks::{Head, Policy, with_torch_rng};
use lepton_agent::normalize::ObsNormalizer;
use lepton_agent::optim::Adam;
use lepton_agent::ppo::{self, PpoConfig, PpoError, UpdateStats};
use lepton_agent::replay::StepRecord;
use lepton_agent::rollout::Batch;
use lepton_env::{Env, schedulers};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpointing::{Checkpoints, Learner};
use crate::config::TrainConfig;
use crate::envs::{EnvSpec, episode_seed};
use crate::evaluation::evaluate;
use crate::run::TrainError;
use crate::session::EpisodeTracker;
use crate::tensorboard::TbWriter;
use lepton_env::seeds::mix64;

/// Stream tags mixed with the run seed (distinct from the PPO loop's).
const DEMO_STREAM: u64 = 0x6465_6d6f;
const CLONE_STREAM: u64 = 0x636c_6f6e;

/// A teacher's decisions as flat rows (before they go to the device).
#[derive(Debug, Default, PartialEq)]
pub struct DemoRows {
    pub obs: Vec<f32>,
    pub masks: Vec<bool>,
    pub actions: Vec<i64>,
    /// Discounted return-to-go of each decision (rewards × `reward_scale`, discount `gamma`).
    pub returns: Vec<f32>,
    pub num_episodes: usize,
}

/// One decision of a teacher, as [`play_teacher`] hands it over: the transition (its
/// `truncated` also set when the episode reaches `env.max_episode_steps`) and the mask the
/// teacher chose under.
pub(crate) struct TeacherStep<'a> {
    pub mask: &'a [bool],
    pub record: StepRecord<'a>,
}

/// Runs `teacher` (a registry name) for whole episodes on the training seeds derived from
/// `seed_base` (episode `k` uses `episode_seed(seed_base, k)`) until at least `min_steps`
/// decisions have been handed to `visit`; returns the number of episodes.
pub(crate) fn play_teacher(
    spec: &EnvSpec,
    teacher: &str,
    min_steps: u64,
    seed_base: u64,
    mut visit: impl FnMut(&TeacherStep<'_>),
) -> Result<usize, TrainError> {
    let scenario = spec
        .scenario()
        .ok_or_else(|| TrainError::Imitation("a heuristic teacher needs a scenario env".into()))?;
    let mut teacher =
        schedulers::by_name(teacher).map_err(|e| TrainError::Imitation(e.to_string()))?;
    let mut env = scenario.build();
    let (obs_dim, num_actions) = (env.observation_space().dim(), env.action_space().n);
    let (mut obs, mut next_obs) = (vec![0.0f32; obs_dim], vec![0.0f32; obs_dim]);
    let (mut mask, mut next_mask) = (vec![false; num_actions], vec![false; num_actions]);
    let (mut num_steps, mut num_episodes) = (0u64, 0usize);
    while num_steps < min_steps {
        let episode_seed = episode_seed(seed_base, num_episodes as u64);
        teacher.reset(episode_seed);
        env.reset(Some(episode_seed), &mut obs);
        env.action_mask(&mut mask);
        let mut length = 0usize;
        loop {
            let action = teacher.act(&env, &obs, &mask);
            let step = env.step(action, &mut next_obs).map_err(|e| {
                TrainError::Imitation(format!(
                    "teacher {} took action {action}: {e}",
                    teacher.name()
                ))
            })?;
            env.action_mask(&mut next_mask);
            length += 1;
            num_steps += 1;
            let limit = spec.max_episode_steps().is_some_and(|m| length >= m);
            visit(&TeacherStep {
                mask: &mask,
                record: StepRecord {
                    obs: &obs,
                    action,
                    reward: step.reward,
                    next_obs: &next_obs,
                    next_mask: &next_mask,
                    terminated: step.terminated,
                    truncated: step.truncated || (limit && !step.terminated),
                },
            });
            if step.terminated || step.truncated || limit {
                break;
            }
            std::mem::swap(&mut obs, &mut next_obs);
            std::mem::swap(&mut mask, &mut next_mask);
        }
        num_episodes += 1;
    }
    Ok(num_episodes)
}

/// Records `teacher`'s decisions (see [`play_teacher`]) on the training seeds derived from
/// `seed` until at least `min_steps` are recorded. An episode the env truncates (or that
/// reaches `env.max_episode_steps`) ends its returns there without a bootstrap.
pub fn collect(
    spec: &EnvSpec,
    teacher: &str,
    min_steps: u64,
    gamma: f64,
    reward_scale: f64,
    seed: u64,
) -> Result<DemoRows, TrainError> {
    let mut rows = DemoRows::default();
    let mut rewards = Vec::new();
    rows.num_episodes = play_teacher(
        spec,
        teacher,
        min_steps,
        mix64(seed ^ DEMO_STREAM),
        |step| {
            let record = &step.record;
            rows.obs.extend_from_slice(record.obs);
            rows.masks.extend_from_slice(step.mask);
            rows.actions.push(record.action as i64);
            rewards.push((record.reward as f64 * reward_scale) as f32);
            if record.terminated || record.truncated {
                rows.returns
                    .extend(imitation::discounted_returns(&rewards, gamma));
                rewards.clear();
            }
        },
    )?;
    Ok(rows)
}

/// What the warm start did, for the log line and `summary.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WarmStart {
    pub teacher: String,
    pub num_decisions: usize,
    pub num_episodes: usize,
    pub epochs: Vec<imitation::EpochStats>,
    /// The clone's greedy mean return on the run's evaluation seeds.
    pub eval_mean_return: Option<f64>,
    /// ... and its mean slowdown over finished tasks only (flatters a clone that waits).
    pub eval_mean_slowdown: Option<f64>,
    pub seconds: f64,
}

/// Clones the teacher into `policy` (fresh from its seeded initialisation), updating and
/// applying `normalizer` to the demonstrations when PPO normalises observations; logs the
/// `imitation/*` points, evaluates the clone on the run's evaluation seeds and writes it as the
/// checkpoint `clone` (via `save_clone`).
pub(crate) fn warm_start(
    config: &TrainConfig,
    im: &ImitationConfig,
    spec: &EnvSpec,
    policy: &Policy,
    normalizer: Option<&mut ObsNormalizer>,
    tb: &mut TbWriter,
) -> Result<WarmStart, TrainError> {
    let start = Instant::now();
    let ppo_cfg = &config.ppo;
    let mut rows = collect(
        spec,
        &im.teacher,
        im.steps,
        ppo_cfg.gamma,
        ppo_cfg.reward_scale,
        config.train.seed,
    )?;
    if let Some(norm) = normalizer {
        norm.update(&rows.obs);
        norm.normalize(&mut rows.obs);
    }
    let demos = Demonstrations::from_rows(
        &rows.obs,
        &rows.masks,
        &rows.actions,
        &rows.returns,
        policy.device(),
    );
    let mut adam = Adam::new(policy.named_parameters(), ppo_cfg.adam_eps);
    let mut rng = ChaCha8Rng::seed_from_u64(mix64(config.train.seed ^ CLONE_STREAM));
    let epochs = imitation::fit(
        im,
        policy,
        &mut adam,
        &demos,
        ppo_cfg.max_grad_norm,
        &mut rng,
        |s| {
            let step = s.epoch as u64;
            tb.scalar("imitation/loss", s.loss, step);
            tb.scalar("imitation/cross_entropy", s.cross_entropy, step);
            tb.scalar("imitation/value_loss", s.value_loss, step);
            tb.scalar("imitation/agreement", s.agreement.all, step);
            tb.scalar("imitation/agreement_free", s.agreement.free, step);
        },
    )
    .map_err(|e| TrainError::Imitation(e.to_string()))?;
    Ok(WarmStart {
        teacher: im.teacher.clone(),
        num_decisions: demos.len(),
        num_episodes: rows.num_episodes,
        epochs,
        eval_mean_return: None,
        eval_mean_slowdown: None,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Scores the clone greedily on the run's evaluation seeds (`imitation/eval_*` at step 0);
/// returns its model-selection score (`eval.select`), none without evaluation episodes.
pub(crate) fn evaluate_clone(
    warm: &mut WarmStart,
    spec: &EnvSpec,
    config: &TrainConfig,
    policy: &Policy,
    normalizer: Option<&ObsNormalizer>,
    tb: &mut TbWriter,
) -> Result<Option<f64>, TrainError> {
    if config.eval.num_episodes == 0 {
        return Ok(None);
    }
    let result = evaluate(spec, policy, normalizer, config, policy.device())?;
    tb.scalar("imitation/eval_episodic_return", result.mean_return, 0);
    if let Some(slowdown) = result.mean_slowdown {
        tb.scalar("imitation/eval_mean_slowdown", slowdown, 0);
    }
    warm.eval_mean_return = Some(result.mean_return);
    warm.eval_mean_slowdown = result.mean_slowdown;
    Ok(Some(result.selection_score(config.eval.select)))
}

impl WarmStart {
    /// One line for the log.
    pub fn describe(&self) -> String {
        let last = self.epochs.last().cloned().unwrap_or_default();
        format!(
            "imitation: cloned {} from {} decisions ({} episodes) in {:.1} s: agreement {:.3} \
             ({:.3} on the {} decisions with a choice), loss {:.4}{}",
            self.teacher,
            self.num_decisions,
            self.num_episodes,
            self.seconds,
            last.agreement.all,
            last.agreement.free,
            last.agreement.num_free,
            last.loss,
            match (self.eval_mean_return, self.eval_mean_slowdown) {
                (Some(r), Some(s)) =>
                    format!(", eval return {r:.2}, finished-only mean slowdown {s:.3}"),
                (Some(r), None) => format!(", eval return {r:.2}"),
                _ => String::new(),
            }
        )
    }
}

/// The frozen clone and the weight of PPO's KL(π_prior ‖ π) term.
pub(crate) struct Prior {
    policy: Policy,
    config: ImitationConfig,
}

/// How many rows of a batch the logged KL to the prior is measured on.
const KL_LOG_ROWS: i64 = 1024;

impl Prior {
    /// A frozen copy of `policy` when `im` asks for a KL term, else `None`.
    pub fn of(
        im: &ImitationConfig,
        policy: &Policy,
        config: &TrainConfig,
    ) -> Result<Option<Self>, TrainError> {
        if im.kl_coef <= 0.0 {
            return Ok(None);
        }
        let copy = with_torch_rng(None, || {
            Policy::new(
                &config.network,
                policy.obs_layout(),
                policy.action_layout(),
                Head::Logits,
                policy.device(),
            )
        })?;
        copy_named(
            &copy.named_parameters(),
            &policy.named_parameters(),
            "prior",
        )
        .map_err(TrainError::Imitation)?;
        Ok(Some(Self {
            policy: copy,
            config: im.clone(),
        }))
    }

    /// The prior saved in the checkpoint `meta_path` (a resumed run), when `im` asks for one.
    pub fn resumed(
        im: &ImitationConfig,
        policy: &Policy,
        config: &TrainConfig,
        meta_path: &Path,
    ) -> Result<Option<Self>, TrainError> {
        let Some(prior) = Self::of(im, policy, config)? else {
            return Ok(None);
        };
        let meta = checkpoint::read_meta(meta_path).map_err(TrainError::ResumeCheckpoint)?;
        checkpoint::load_extra_tensors(meta_path, &meta, "prior", &prior.policy.named_parameters())
            .map_err(TrainError::ResumeCheckpoint)?;
        Ok(Some(prior))
    }

    /// The extra group periodic checkpoints save.
    pub fn extras(prior: Option<&Self>) -> Result<Vec<(&'static str, Extra)>, TrainError> {
        Ok(prior
            .map(|p| ("prior", Extra::Tensors(p.policy.named_parameters())))
            .into_iter()
            .collect())
    }

    /// A PPO update with `kl_coef_at(global_step)` · KL(π_prior ‖ π) added to each minibatch's
    /// loss (plain [`ppo::update`] once the weight has annealed to 0); logs the weight and the
    /// KL before the update on up to [`KL_LOG_ROWS`] evenly spaced rows of the batch (a sample,
    /// so that watching the drift after the anneal costs a small fraction of an update).
    #[allow(clippy::too_many_arguments)]
    pub fn update<R: Rng>(
        &self,
        ppo_cfg: &PpoConfig,
        policy: &Policy,
        optimizer: &mut Adam,
        batch: &Batch,
        lr: f64,
        rng: &mut R,
        global_step: u64,
        tb: &mut TbWriter,
    ) -> Result<UpdateStats, PpoError> {
        let coef = self.config.kl_coef_at(global_step);
        tb.scalar("imitation/kl_coef", coef, global_step);
        let prior_log_probs = |obs: &tch::Tensor, masks: &tch::Tensor| {
            tch::no_grad(|| {
                let (logits, _) = self.policy.forward(obs);
                lepton_agent::distributions::MaskedCategorical::new(&logits, masks)
                    .log_probs()
                    .shallow_clone()
            })
        };
        let len = batch.len() as i64;
        let step = (len + KL_LOG_ROWS - 1) / KL_LOG_ROWS;
        let rows = tch::Tensor::arange_start_step(0, len, step.max(1), tch::kind::INT64_CPU)
            .to_device(policy.device());
        let (obs, masks) = (
            batch.obs.index_select(0, &rows),
            batch.masks.index_select(0, &rows),
        );
        // While the KL term is on, the loss needs the prior on the whole batch; the logged
        // sample reads its rows from that.
        let whole = (coef > 0.0).then(|| prior_log_probs(&batch.obs, &batch.masks));
        let sampled = match &whole {
            Some(whole) => whole.index_select(0, &rows),
            None => prior_log_probs(&obs, &masks),
        };
        let kl = tch::no_grad(|| {
            let (logits, _) = policy.forward(&obs);
            let pi = lepton_agent::distributions::MaskedCategorical::new(&logits, &masks);
            imitation::kl_to_prior(&sampled, &pi).double_value(&[])
        });
        tb.scalar("losses/kl_prior", kl, global_step);
        let Some(whole) = whole else {
            return ppo::update(ppo_cfg, policy, optimizer, batch, lr, rng);
        };
        ppo::update_with(ppo_cfg, policy, optimizer, batch, lr, rng, |idx, pi| {
            let prior = whole.index_select(0, idx);
            Some(coef * imitation::kl_to_prior(&prior, pi))
        })
    }
}

/// The warm start before the PPO loop: on a fresh run, clone the teacher into `policy`, score
/// the clone on the evaluation episodes (`eval_spec`), write it as the checkpoint `clone` and
/// print what it did; on a resumed run, only reload the frozen prior from the checkpoint
/// resumed from. The clone is the first candidate for `best` when the run evaluates: a PPO
/// phase that never beats it on the evaluation episodes leaves it there. Returns the KL prior
/// (when `kl_coef > 0`) and, on a fresh run, what the cloning did.
#[allow(clippy::too_many_arguments)]
pub(crate) fn begin(
    config: &TrainConfig,
    resume: bool,
    spec: &EnvSpec,
    eval_spec: &EnvSpec,
    episodes: &mut EpisodeTracker,
    policy: &Policy,
    optimizer: &Adam,
    normalizer: &mut Option<ObsNormalizer>,
    tb: &mut TbWriter,
    checkpoints: &Checkpoints<'_>,
    progress: &indicatif::ProgressBar,
) -> Result<(Option<Prior>, Option<WarmStart>), TrainError> {
    // A run warm-started from a checkpoint (`train.init_from`) takes its weights from there.
    let Some(im) = config
        .imitation
        .as_ref()
        .filter(|_| config.train.init_from.is_none())
    else {
        return Ok((None, None));
    };
    if resume {
        let resumed_from = checkpoints
            .last
            .as_deref()
            .ok_or(TrainError::NoCheckpointWritten)?;
        return Ok((Prior::resumed(im, policy, config, resumed_from)?, None));
    }
    let mut warm = warm_start(config, im, spec, policy, normalizer.as_mut(), tb)?;
    let score = evaluate_clone(
        &mut warm,
        eval_spec,
        config,
        policy,
        normalizer.as_ref(),
        tb,
    )?;
    let learner = Learner {
        policy,
        optimizer,
        normalizer: normalizer.as_ref(),
        iteration: 0,
    };
    checkpoints.save_clone(&learner)?;
    let candidate = score.filter(|_| config.eval.every_steps > 0);
    if candidate.is_some_and(|score| episodes.improves_eval(score)) {
        checkpoints.save_best_clone(&learner)?;
    }
    if progress.is_hidden() {
        eprintln!("{}", warm.describe());
    } else {
        progress.println(warm.describe());
    }
    Ok((Prior::of(im, policy, config)?, Some(warm)))
}
