//! The parts of `lepton-eval` other crates use: the suite loader (the fuzzer feeds it mutated
//! suite files). The rest of the tool lives in the binary.

pub mod suite;
