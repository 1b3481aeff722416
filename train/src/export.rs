//! `lepton-train export`: a checkpoint as a TorchScript file that runs without lepton.
//!
//! The file is built by the repository's own Python loader (`python/lepton_policy.py`, compiled
//! into this binary so an installed `lepton-train` carries the loader it was tested with), which
//! rebuilds the network from the metadata as `docs/checkpoint-format.md` specifies and scripts
//! it with `torch.jit.script`. Before the file is renamed into place, it is loaded back through
//! libtorch and its greedy actions are compared with lepton's own on seeded probe observations
//! and masks; a file that disagrees is never written.

use std::path::{Path, PathBuf};
use std::process::Command;

use lepton_agent::checkpoint::{self, CheckpointError, LoadedPolicy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{CModule, Device, IValue, Kind, Tensor};

/// The loader the exported module is built from (also importable from `python/`).
const LOADER: &str = include_str!("../../python/lepton_policy.py");

/// Run by the project's Python: argv = loader directory, checkpoint metadata, output file.
const SCRIPT: &str = r#"
import sys
sys.path.insert(0, sys.argv[1])
from lepton_policy import CheckpointError, load_policy
try:
    policy = load_policy(sys.argv[2])
except CheckpointError as e:
    print(e, file=sys.stderr)
    sys.exit(2)
import torch
with open(sys.argv[2]) as f:
    meta = f.read()
torch.jit.save(torch.jit.script(policy), sys.argv[3], _extra_files={"lepton_checkpoint.json": meta})
"#;

/// How many probe observations the written file must decide like lepton.
pub const NUM_PROBES: usize = 256;

/// The exit codes of `lepton-train export`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  the TorchScript file was written and decides like lepton on every probe
  1  the export failed (the Python loader crashed, the written module disagreed with lepton,
     or the file could not be renamed into place); nothing is left at --out
  2  bad input: no such checkpoint, not a metadata .json, a checkpoint that does not load,
     or an --out that cannot be written (the message names the path)
  3  no Python with torch: set LEPTON_PYTHON or pass --python (scripts/bootstrap.sh makes .venv)";

/// Write a checkpoint as a TorchScript module: `forward(obs, mask)` gives the masked head
/// outputs, `greedy_action(obs, mask)` lepton's greedy action (see docs/checkpoint-format.md).
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct ExportArgs {
    /// The checkpoint's metadata file (e.g. runs/demo/checkpoints/best.json), or a run directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The TorchScript file to write (replaced atomically), e.g. policy.pt.
    #[arg(long)]
    pub out: PathBuf,
    /// The Python with torch to build the module with (default: $LEPTON_PYTHON, else
    /// .venv/bin/python, else python3).
    #[arg(long)]
    pub python: Option<PathBuf>,
}

/// Why an export failed, by exit code.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Exit 2.
    #[error("{0}")]
    BadInput(String),
    /// Exit 1.
    #[error("{0}")]
    Failed(String),
    /// Exit 3.
    #[error("{0}")]
    NoPython(String),
}

impl ExportError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Failed(_) => 1,
            Self::BadInput(_) => 2,
            Self::NoPython(_) => 3,
        }
    }
}

impl From<CheckpointError> for ExportError {
    fn from(e: CheckpointError) -> Self {
        Self::BadInput(e.to_string())
    }
}

/// What was written.
#[derive(Debug)]
pub struct Exported {
    pub checkpoint: PathBuf,
    pub out: PathBuf,
    pub num_probes: usize,
}

/// Exports `args.checkpoint` to `args.out` (see the module docs).
pub fn export(args: &ExportArgs) -> Result<Exported, ExportError> {
    let checkpoint = checked_checkpoint(&args.checkpoint)?;
    let temp = temp_out(&args.out)?;
    let result = write_module(args, &checkpoint, &temp)
        .and_then(|()| check_module(&checkpoint, &temp))
        .and_then(|()| {
            // Synced before the rename, so a crash leaves the old file or the whole new one.
            std::fs::File::open(&temp)
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&temp, &args.out))
                .map_err(|e| {
                    ExportError::Failed(format!("cannot move {} into place: {e}", temp.display()))
                })
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map(|()| Exported {
        checkpoint,
        out: args.out.clone(),
        num_probes: NUM_PROBES,
    })
}

/// The metadata file `path` names, read and hash-checked as lepton-eval would load it.
fn checked_checkpoint(path: &Path) -> Result<PathBuf, ExportError> {
    let meta_path = checkpoint::resolve(path)?;
    checkpoint::read_meta(&meta_path)?;
    Ok(meta_path)
}

/// A temporary name beside `out` (so the final rename stays on one file system), created now
/// to prove the directory is writable.
fn temp_out(out: &Path) -> Result<PathBuf, ExportError> {
    let bad = |reason: String| ExportError::BadInput(format!("--out {}: {reason}", out.display()));
    if out.is_dir() {
        return Err(bad(
            "is a directory; name the file to write (e.g. policy.pt)".into(),
        ));
    }
    let name = out.file_name().ok_or_else(|| bad("names no file".into()))?;
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(bad(format!(
            "the directory {} does not exist",
            dir.display()
        )));
    }
    let temp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temp, b"").map_err(|e| bad(format!("cannot write there: {e}")))?;
    Ok(temp)
}

/// `--python`, else `$LEPTON_PYTHON`, else `.venv/bin/python`, else `python3`.
fn python(args: &ExportArgs) -> PathBuf {
    if let Some(p) = &args.python {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("LEPTON_PYTHON") {
        return p.into();
    }
    let venv = Path::new(".venv/bin/python");
    if venv.exists() {
        venv.to_path_buf()
    } else {
        "python3".into()
    }
}

/// Runs the loader under the project's Python to write the scripted module to `temp`.
fn write_module(args: &ExportArgs, checkpoint: &Path, temp: &Path) -> Result<(), ExportError> {
    let python = python(args);
    let probe = Command::new(&python)
        .args(["-c", "import torch"])
        .output()
        .map_err(|e| {
            ExportError::NoPython(format!(
                "cannot run Python {}: {e} (set LEPTON_PYTHON or pass --python)",
                python.display()
            ))
        })?;
    if !probe.status.success() {
        return Err(ExportError::NoPython(format!(
            "Python {} cannot import torch: {}",
            python.display(),
            String::from_utf8_lossy(&probe.stderr).trim()
        )));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let loader_dir =
        std::env::temp_dir().join(format!("lepton-export-{}-{nanos}", std::process::id()));
    let io = |e: std::io::Error| {
        ExportError::Failed(format!(
            "cannot write the loader to {}: {e}",
            loader_dir.display()
        ))
    };
    std::fs::create_dir_all(&loader_dir).map_err(io)?;
    std::fs::write(loader_dir.join("lepton_policy.py"), LOADER).map_err(io)?;
    let run = Command::new(&python)
        .arg("-B") // no __pycache__ beside the temporary loader
        .args(["-c", SCRIPT])
        .arg(&loader_dir)
        .arg(checkpoint)
        .arg(temp)
        .output();
    let _ = std::fs::remove_dir_all(&loader_dir);
    let run =
        run.map_err(|e| ExportError::NoPython(format!("cannot run {}: {e}", python.display())))?;
    let stderr = String::from_utf8_lossy(&run.stderr).trim().to_string();
    match run.status.code() {
        Some(0) => Ok(()),
        Some(2) => Err(ExportError::BadInput(stderr)),
        _ => Err(ExportError::Failed(format!(
            "the Python loader failed on {}: {stderr}",
            checkpoint.display()
        ))),
    }
}

/// Seeded probe observations (uniform in [-2, 2]) and masks (each action legal with
/// probability 1/2, at least one per row), row-major.
pub fn probes(obs_dim: usize, num_actions: usize, rows: usize, seed: u64) -> (Vec<f32>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let obs = (0..rows * obs_dim)
        .map(|_| rng.random_range(-2.0f32..2.0))
        .collect();
    let mut mask: Vec<bool> = (0..rows * num_actions).map(|_| rng.random()).collect();
    for row in mask.chunks_mut(num_actions) {
        if !row.contains(&true) {
            row[rng.random_range(0..num_actions)] = true;
        }
    }
    (obs, mask)
}

/// Greedy actions of an exported module for row-major observations and masks.
pub fn module_greedy(
    module: &CModule,
    obs: &[f32],
    mask: &[bool],
    obs_dim: usize,
    num_actions: usize,
) -> Result<Vec<i64>, tch::TchError> {
    let rows = (obs.len() / obs_dim) as i64;
    let obs = Tensor::from_slice(obs).view([rows, obs_dim as i64]);
    let mask = Tensor::from_slice(mask).view([rows, num_actions as i64]);
    let out = tch::no_grad(|| {
        module.method_is(
            "greedy_action",
            &[IValue::Tensor(obs), IValue::Tensor(mask)],
        )
    })?;
    match out {
        IValue::Tensor(t) => Vec::<i64>::try_from(t.to_kind(Kind::Int64).reshape([-1])),
        other => Err(tch::TchError::Kind(format!(
            "greedy_action returned {other:?}, not a tensor"
        ))),
    }
}

/// The module at `temp` must choose lepton's greedy action on every probe.
fn check_module(checkpoint: &Path, temp: &Path) -> Result<(), ExportError> {
    let mut lepton = LoadedPolicy::load(checkpoint, Device::Cpu)?;
    let failed = |what: String| ExportError::Failed(format!("{}: {what}", temp.display()));
    let module =
        CModule::load(temp).map_err(|e| failed(format!("libtorch cannot load it: {e}")))?;
    let (dim, n) = (lepton.obs_dim(), lepton.num_actions());
    let (obs, mask) = probes(dim, n, NUM_PROBES, 0);
    let mut expected = vec![0usize; NUM_PROBES];
    lepton.act_batch(&obs, &mask, &mut expected);
    let got = module_greedy(&module, &obs, &mask, dim, n)
        .map_err(|e| failed(format!("greedy_action failed: {e}")))?;
    let disagree = expected
        .iter()
        .zip(&got)
        .filter(|(a, b)| **a as i64 != **b)
        .count();
    if disagree > 0 {
        return Err(failed(format!(
            "the exported module's greedy action differs from lepton's on {disagree} of {NUM_PROBES} probes"
        )));
    }
    Ok(())
}
