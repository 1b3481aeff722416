//! Slurm: its command-line tools ([`cli`]), a throwaway local cluster ([`cluster`]) and the
//! loop that applies a lepton ranking to its queue ([`driver`]).

pub mod cli;
pub mod cluster;
pub mod driver;
