//! TensorBoard logging through tensorboard-rs, plus the text summary it lacks (written with its
//! protobuf types, the format TensorBoard's text plugin reads).
//!
//! Tags (all at the env step `global_step`):
//! * `charts/episodic_return`, `charts/episodic_length` — every finished training episode;
//! * `charts/SPS` (env steps per second of the whole loop), `charts/learning_rate`,
//!   `perf/env_share`, `perf/inference_share`, `perf/update_share` — every iteration;
//! * `losses/policy_loss`, `losses/value_loss`, `losses/entropy`, `losses/old_approx_kl`,
//!   `losses/approx_kl`, `losses/clipfrac`, `losses/explained_variance` — every iteration;
//! * `cluster/mean_slowdown`, `cluster/p95_slowdown`, `cluster/mean_wait`,
//!   `cluster/num_dropped`, `cluster/num_unfinished`, `cluster/deadline_miss_rate`,
//!   `cluster/utilization_<resource>` — every finished episode of a scheduling env;
//! * `eval/episodic_return`, `eval/episodic_length`, `eval/mean_slowdown`,
//!   `eval/completion_slowdown` (scheduling envs) — every greedy evaluation on the held-out
//!   seeds, with, for reference, the completion-aware slowdown of the heuristics on the same
//!   seeds: `eval/heuristic_{sjf,packer,tetris}_completion_slowdown`,
//!   `eval/best_heuristic_completion_slowdown`, and `eval/vs_best_heuristic` (the policy's
//!   relative difference from the best of them; the `best` checkpoint minimises it);
//! * text `config` — the resolved config, once.
//! * DQN runs (`algo = "dqn"`) log `losses/td_loss`, `losses/q_values`, `losses/grad_norm`,
//!   `charts/epsilon`, `replay/beta`, `replay/mean_priority`, `replay/size` instead of the PPO
//!   losses (see [`crate::dqn_loop`]).

use std::path::Path;

use protobuf::RepeatedField;
use tensorboard_proto::summary::{
    Summary, Summary_Value, SummaryMetadata, SummaryMetadata_PluginData,
};
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::tensor_shape::{TensorShapeProto, TensorShapeProto_Dim};
use tensorboard_proto::types::DataType;
use tensorboard_rs::summary::scalar;
use tensorboard_rs::summary_writer::FileWriter;

/// An event-file writer in one run directory.
pub struct TbWriter {
    writer: FileWriter,
}

impl TbWriter {
    pub fn new(dir: &Path) -> Self {
        Self {
            writer: FileWriter::new(dir),
        }
    }

    pub fn scalar(&mut self, tag: &str, value: f64, step: u64) {
        self.writer
            .add_summary(scalar(tag, value as f32), step as usize);
    }

    /// A text summary (rendered as Markdown by TensorBoard's text plugin).
    pub fn text(&mut self, tag: &str, text: &str, step: u64) {
        let mut dim = TensorShapeProto_Dim::new();
        dim.set_size(1);
        let mut shape = TensorShapeProto::new();
        shape.set_dim(RepeatedField::from_vec(vec![dim]));
        let mut tensor = TensorProto::new();
        tensor.set_dtype(DataType::DT_STRING);
        tensor.set_tensor_shape(shape);
        tensor.set_string_val(RepeatedField::from_vec(vec![text.as_bytes().to_vec()]));
        let mut plugin = SummaryMetadata_PluginData::new();
        plugin.set_plugin_name("text".to_string());
        let mut metadata = SummaryMetadata::new();
        metadata.set_plugin_data(plugin);
        let mut value = Summary_Value::new();
        value.set_tag(tag.to_string());
        value.set_metadata(metadata);
        value.set_tensor(tensor);
        let mut summary = Summary::new();
        summary.set_value(RepeatedField::from_vec(vec![value]));
        self.writer.add_summary(summary, step as usize);
    }

    pub fn flush(&mut self) {
        self.writer.flush();
    }
}
