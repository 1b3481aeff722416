//! What a search leaves behind: one `trial.json` per trial, the leaderboard (CSV and JSON,
//! best first) and the TensorBoard HParams entries.
//!
//! HParams layout (what TensorBoard's HParams dashboard reads): the search directory's own
//! event file holds `_hparams_/experiment` (every gene with its domain, and the metric
//! `search/fitness`); each trial's `hparams/` sub-run holds `_hparams_/session_start_info`
//! (the trial's gene values), the scalar `search/fitness` and `_hparams_/session_end_info`
//! (success, or failure for a failed trial). They are written with the hparams plugin's own
//! protobuf types, as `tensorboard.rs` writes text summaries.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use protobuf::well_known_types::{ListValue, Value};
use protobuf::{Message, RepeatedField};
use serde::{Deserialize, Serialize};
use tensorboard_proto::api::{
    DataType as HpType, Experiment, HParamInfo, Interval, MetricInfo, MetricName,
    Status as HpStatus,
};
use tensorboard_proto::plugin_hparams::{HParamsPluginData, SessionEndInfo, SessionStartInfo};
use tensorboard_proto::summary::{
    Summary, Summary_Value, SummaryMetadata, SummaryMetadata_PluginData,
};
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::types::DataType;
use tensorboard_rs::summary::scalar;
use tensorboard_rs::summary_writer::FileWriter;

use super::genes::GeneSpec;

/// The scalar tag of a trial's fitness (also the HParams metric).
pub const FITNESS_TAG: &str = "search/fitness";

/// How a trial ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Trained and scored.
    Finished,
    /// Its config did not validate (e.g. a batch larger than the budget).
    Invalid,
    /// Non-finite loss during training.
    Diverged,
    /// Training or evaluation returned an error.
    Failed,
    /// Training panicked.
    Crashed,
    /// Trained, but the fitness was not a finite number.
    Nan,
    /// Stopped early at a rung of successive halving (`[early_stop]`): its fitness there was
    /// below the trials promoted to the next rung.
    Stopped,
}

/// A trial's fitness at one rung of successive halving (mean over its seeds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    pub steps: u64,
    pub fitness: f64,
}

/// One trial, as `trial.json` and a leaderboard row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub trial: usize,
    /// GA generation (0 for PBT members).
    pub generation: usize,
    pub status: Status,
    /// Why it did not finish (`None` when it did).
    pub reason: Option<String>,
    /// Higher is better; `None` (the worst) unless `status = finished`.
    pub fitness: Option<f64>,
    /// Env steps trained (per seed).
    pub budget_steps: u64,
    /// `train.seed` of the trial's first run (the one `best.toml` reproduces).
    pub seed: u64,
    /// GA: `train.seed` of each of the trial's runs (`seeds_per_trial`); its fitness is the
    /// mean of theirs.
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// GA: the fitness of each run, in the order of `seeds`.
    #[serde(default)]
    pub seed_fitness: Vec<f64>,
    /// GA with `[early_stop]`: the fitness at each rung the trial reached before the last.
    #[serde(default)]
    pub rungs: Vec<Rung>,
    /// Gene key → value (for PBT: the final values).
    pub genes: BTreeMap<String, serde_json::Value>,
    /// The `--set` arguments that reproduce the trial on top of the base config.
    pub overrides: Vec<String>,
    /// The raw genome (see [`super::genes`]), which resume and the GA read back.
    pub genome: Vec<f64>,
    /// The trial's run directory, relative to the search directory.
    pub run_dir: String,
    pub wall_s: f64,
    /// PBT only: one line per exploit/explore this member received.
    #[serde(default)]
    pub history: Vec<String>,
}

impl TrialRecord {
    pub fn genes_of(specs: &[GeneSpec], genome: &[f64]) -> BTreeMap<String, serde_json::Value> {
        specs
            .iter()
            .zip(genome)
            .map(|(s, &v)| (s.key().to_string(), s.json_value(v)))
            .collect()
    }
}

/// Records, best first (failed trials last, ties by trial index).
pub fn ranked(records: &[TrialRecord]) -> Vec<&TrialRecord> {
    let fitness: Vec<Option<f64>> = records.iter().map(|r| r.fitness).collect();
    super::operators::rank(&fitness)
        .into_iter()
        .map(|i| &records[i])
        .collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `leaderboard.csv` and `leaderboard.json` in `dir`, best first.
pub fn write(dir: &Path, specs: &[GeneSpec], records: &[TrialRecord]) -> anyhow::Result<()> {
    let rows = ranked(records);
    let mut csv = String::from("rank,trial,generation,status,fitness,budget_steps,seed");
    for s in specs {
        csv.push(',');
        csv.push_str(&csv_field(s.key()));
    }
    csv.push_str(",run_dir,wall_s,reason\n");
    for (rank, r) in rows.iter().enumerate() {
        let status = serde_json::to_value(r.status)?;
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}",
            rank + 1,
            r.trial,
            r.generation,
            status.as_str().unwrap_or_default(),
            r.fitness.map_or(String::new(), |f| f.to_string()),
            r.budget_steps,
            r.seed
        ));
        for s in specs {
            let v = r
                .genes
                .get(s.key())
                .map_or(String::new(), |v| v.to_string());
            csv.push(',');
            csv.push_str(&csv_field(&v));
        }
        csv.push_str(&format!(
            ",{},{:.1},{}\n",
            csv_field(&r.run_dir),
            r.wall_s,
            csv_field(r.reason.as_deref().unwrap_or(""))
        ));
    }
    lepton_agent::checkpoint::write_atomic(&dir.join("leaderboard.csv"), csv.as_bytes())?;
    let json = serde_json::to_string_pretty(&rows)?;
    lepton_agent::checkpoint::write_atomic(&dir.join("leaderboard.json"), json.as_bytes())?;
    Ok(())
}

fn hparams_summary(tag: &str, data: HParamsPluginData) -> Summary {
    let mut plugin = SummaryMetadata_PluginData::new();
    plugin.set_plugin_name("hparams".to_string());
    plugin.set_content(data.write_to_bytes().expect("hparams protobuf serialises"));
    let mut metadata = SummaryMetadata::new();
    metadata.set_plugin_data(plugin);
    // TensorBoard's own writer attaches this placeholder tensor (its `NULL_TENSOR`).
    let mut tensor = TensorProto::new();
    tensor.set_dtype(DataType::DT_FLOAT);
    tensor.set_float_val(vec![0.0]);
    let mut value = Summary_Value::new();
    value.set_tag(tag.to_string());
    value.set_metadata(metadata);
    value.set_tensor(tensor);
    let mut summary = Summary::new();
    summary.set_value(RepeatedField::from_vec(vec![value]));
    summary
}

fn hparam_value(spec: &GeneSpec, v: &serde_json::Value) -> Value {
    let mut out = Value::new();
    match (spec, v.as_f64()) {
        (GeneSpec::Choice { .. }, _) | (_, None) => out.set_string_value(v.to_string()),
        (_, Some(x)) => out.set_number_value(x),
    }
    out
}

/// `_hparams_/experiment` in `dir` (the search directory): the genes and the fitness metric.
pub fn write_experiment(dir: &Path, specs: &[GeneSpec], description: &str) {
    let infos = specs
        .iter()
        .map(|spec| {
            let mut info = HParamInfo::new();
            info.set_name(spec.key().to_string());
            match spec {
                GeneSpec::Uniform { min, max, .. } | GeneSpec::LogUniform { min, max, .. } => {
                    info.set_field_type(HpType::DATA_TYPE_FLOAT64);
                    let mut i = Interval::new();
                    i.set_min_value(*min);
                    i.set_max_value(*max);
                    info.set_domain_interval(i);
                }
                GeneSpec::Int { min, max, .. } => {
                    info.set_field_type(HpType::DATA_TYPE_FLOAT64);
                    let mut i = Interval::new();
                    i.set_min_value(*min as f64);
                    i.set_max_value(*max as f64);
                    info.set_domain_interval(i);
                }
                GeneSpec::Choice { values, .. } => {
                    info.set_field_type(HpType::DATA_TYPE_STRING);
                    let mut list = ListValue::new();
                    list.set_values(RepeatedField::from_vec(
                        values
                            .iter()
                            .map(|v| {
                                let mut x = Value::new();
                                x.set_string_value(
                                    serde_json::to_value(v).unwrap_or_default().to_string(),
                                );
                                x
                            })
                            .collect(),
                    ));
                    info.set_domain_discrete(list);
                }
            }
            info
        })
        .collect();
    let mut name = MetricName::new();
    name.set_tag(FITNESS_TAG.to_string());
    let mut metric = MetricInfo::new();
    metric.set_name(name);
    metric.set_display_name("fitness".to_string());
    metric.set_description(description.to_string());
    let mut experiment = Experiment::new();
    experiment.set_hparam_infos(RepeatedField::from_vec(infos));
    experiment.set_metric_infos(RepeatedField::from_vec(vec![metric]));
    let mut data = HParamsPluginData::new();
    data.set_version(0);
    data.set_experiment(experiment);
    let mut writer = FileWriter::new(dir);
    writer.add_summary(hparams_summary("_hparams_/experiment", data), 0);
    writer.flush();
}

/// The HParams session of one trial, in `<trial run dir>/hparams`.
pub fn write_session(trial_dir: &Path, specs: &[GeneSpec], record: &TrialRecord) {
    let hparams: HashMap<String, Value> = specs
        .iter()
        .filter_map(|s| {
            record
                .genes
                .get(s.key())
                .map(|v| (s.key().to_string(), hparam_value(s, v)))
        })
        .collect();
    let mut start = SessionStartInfo::new();
    start.set_hparams(hparams);
    start.set_group_name(format!("trial_{:04}", record.trial));
    let mut data = HParamsPluginData::new();
    data.set_version(0);
    data.set_session_start_info(start);
    let mut writer = FileWriter::new(trial_dir.join("hparams"));
    writer.add_summary(hparams_summary("_hparams_/session_start_info", data), 0);
    if let Some(f) = record.fitness {
        writer.add_summary(scalar(FITNESS_TAG, f as f32), record.budget_steps as usize);
    }
    let mut end = SessionEndInfo::new();
    end.set_status(if record.status == Status::Finished {
        HpStatus::STATUS_SUCCESS
    } else {
        HpStatus::STATUS_FAILURE
    });
    let mut data = HParamsPluginData::new();
    data.set_version(0);
    data.set_session_end_info(end);
    writer.add_summary(
        hparams_summary("_hparams_/session_end_info", data),
        record.budget_steps as usize,
    );
    writer.flush();
}
