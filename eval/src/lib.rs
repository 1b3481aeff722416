//! The parts of `lepton-eval` other crates use: the suite loader (the fuzzer feeds it mutated
//! suite files) and the statistics (`lepton-serve` compares real-Slurm runs with them). The
//! rest of the tool lives in the binary.

pub mod stats;
pub mod suite;
