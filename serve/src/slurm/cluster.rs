//! A throwaway Slurm cluster on this machine, for tests, replays and trying lepton-serve out:
//! one `slurmctld -D` and one `slurmd -D -N nK` per node, all in a temporary folder with their
//! own free ports, no systemd, no munge (`auth/none`), no accounting. Nodes declare CPUs the
//! machine may not have (`SlurmdParameters=config_overrides`): jobs are `sleep`s.
//!
//! Dropping a [`LocalCluster`] cancels its jobs and ends its daemons (also on a panic), then
//! removes the folder.

use super::cli::Slurm;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Slurm's scheduler plugin (`SchedulerType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerType {
    /// `sched/builtin`: strict priority order, nothing overtakes the first job.
    Builtin,
    /// `sched/backfill`, run every second (`bf_interval=1`).
    Backfill,
}

impl SchedulerType {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "builtin" | "sched/builtin" => Some(Self::Builtin),
            "backfill" | "sched/backfill" => Some(Self::Backfill),
            _ => None,
        }
    }

    pub fn plugin(self) -> &'static str {
        match self {
            Self::Builtin => "sched/builtin",
            Self::Backfill => "sched/backfill",
        }
    }
}

/// Slurm's priority plugin (`PriorityType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriorityType {
    /// `priority/basic`: submission order. With `sched/builtin` Slurm ignores priorities set
    /// by `scontrol` (measured on 22.05), so lepton-serve refuses that pair.
    Basic,
    /// `priority/multifactor` with every weight 0: every job gets priority 1 (ties go to the
    /// earlier job), and priorities set by `scontrol` are obeyed by both schedulers.
    Multifactor,
}

impl PriorityType {
    pub fn plugin(self) -> &'static str {
        match self {
            Self::Basic => "priority/basic",
            Self::Multifactor => "priority/multifactor",
        }
    }
}

/// What to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    pub nodes: u32,
    pub cpus_per_node: u32,
    pub scheduler: SchedulerType,
    pub priority: PriorityType,
}

/// Why a local cluster did not come up.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "`{program}` not found: install Slurm (Debian: apt-get install -y slurmctld slurmd slurm-client munge; .ci/run does this as root)"
    )]
    NotInstalled { program: String },
    #[error("local Slurm cluster: {0}")]
    Io(#[from] std::io::Error),
    #[error("local Slurm cluster did not come up within {seconds} s; last log lines:\n{log}")]
    Timeout { seconds: u64, log: String },
    #[error("local Slurm cluster: {0}")]
    Spec(String),
}

/// A running throwaway cluster (see the module docs).
pub struct LocalCluster {
    dir: tempfile::TempDir,
    daemons: Vec<Child>,
    slurm: Slurm,
    spec: ClusterSpec,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("dir", &self.dir.path())
            .field("spec", &self.spec)
            .finish()
    }
}

/// Whether `program` is on the PATH (or an absolute path that exists).
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        || ["/usr/sbin", "/usr/bin"]
            .iter()
            .any(|d| Path::new(d).join(program).is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalCluster {
    /// Starts the cluster and waits (up to 30 s) until every node is idle.
    pub fn start(spec: ClusterSpec) -> Result<Self, ClusterError> {
        if spec.nodes == 0 || spec.cpus_per_node == 0 {
            return Err(ClusterError::Spec(
                "needs at least one node and one CPU per node".into(),
            ));
        }
        for program in ["slurmctld", "slurmd", "squeue", "sbatch", "scontrol"] {
            if !installed(program) {
                return Err(ClusterError::NotInstalled {
                    program: program.into(),
                });
            }
        }
        let dir = tempfile::Builder::new().prefix("lepton-slurm-").tempdir()?;
        for sub in ["state", "spool", "log", "out"] {
            std::fs::create_dir(dir.path().join(sub))?;
        }
        let ports: Vec<u16> = (0..spec.nodes + 2)
            .map(|_| free_port())
            .collect::<Result<_, _>>()?;
        let conf = dir.path().join("slurm.conf");
        std::fs::write(&conf, slurm_conf(dir.path(), &spec, &ports))?;
        let slurm = Slurm::with_conf(&conf);
        let mut cluster = Self {
            dir,
            daemons: Vec::new(),
            slurm,
            spec,
        };
        let log = |name: &str| -> std::io::Result<Stdio> {
            Ok(std::fs::File::create(cluster_path(&conf, &format!("log/{name}.out")))?.into())
        };
        // `-i`: ignore any saved state; a fresh folder has none, but say so.
        let ctld = Command::new("slurmctld")
            .args(["-D", "-i", "-f"])
            .arg(&conf)
            .env("SLURM_CONF", &conf)
            .stdout(log("slurmctld")?)
            .stderr(log("slurmctld.err")?)
            .spawn()?;
        cluster.daemons.push(ctld);
        for k in 1..=spec.nodes {
            let d = Command::new("slurmd")
                .args(["-D", "-N", &format!("n{k}"), "-f"])
                .arg(&conf)
                .env("SLURM_CONF", &conf)
                .stdout(log(&format!("slurmd-n{k}"))?)
                .stderr(log(&format!("slurmd-n{k}.err"))?)
                .spawn()?;
            cluster.daemons.push(d);
        }
        cluster.wait_idle(Duration::from_secs(30))?;
        Ok(cluster)
    }

    fn wait_idle(&mut self, limit: Duration) -> Result<(), ClusterError> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(nodes) = self.slurm.nodes()
                && nodes.len() == self.spec.nodes as usize
                && nodes.iter().all(|n| n.state == "idle")
            {
                return Ok(());
            }
            for d in &mut self.daemons {
                if let Ok(Some(status)) = d.try_wait() {
                    return Err(ClusterError::Timeout {
                        seconds: 0,
                        log: format!("a daemon exited ({status})\n{}", self.log_tail()),
                    });
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(ClusterError::Timeout {
            seconds: limit.as_secs(),
            log: self.log_tail(),
        })
    }

    /// The last lines of the daemons' logs (for error messages).
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        let log = self.dir.path().join("log");
        let mut names: Vec<_> = std::fs::read_dir(&log)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        names.sort();
        for path in names {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(5)..] {
                let _ = writeln!(out, "{}: {line}", path.display());
            }
        }
        out
    }

    /// A handle to run Slurm's tools against this cluster.
    pub fn slurm(&self) -> &Slurm {
        &self.slurm
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// Where jobs may write their output.
    pub fn out_dir(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn spec(&self) -> ClusterSpec {
        self.spec
    }

    pub fn total_cpus(&self) -> u32 {
        self.spec.nodes * self.spec.cpus_per_node
    }
}

fn cluster_path(conf: &Path, rel: &str) -> PathBuf {
    conf.parent().unwrap_or(Path::new(".")).join(rel)
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        // Our own throwaway cluster: its jobs go with it (`scancel` reaches the sleeps that
        // slurmstepd started, which killing slurmd would orphan).
        let _ = self
            .slurm
            .command("scancel")
            .args(["--user", &whoami()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for d in &mut self.daemons {
            let _ = Command::new("kill")
                .args(["-TERM", &d.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for d in &mut self.daemons {
            while Instant::now() < deadline && matches!(d.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(d.try_wait(), Ok(None)) {
                let _ = d.kill();
            }
            let _ = d.wait();
        }
    }
}

fn whoami() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".into())
}

/// The slurm.conf of a local cluster in `dir` with ports `[slurmctld, slurmd default, node
/// 1, …, node N]`.
pub fn slurm_conf(dir: &Path, spec: &ClusterSpec, ports: &[u16]) -> String {
    let d = dir.display();
    let user = whoami();
    let node_ports: Vec<String> = ports[2..].iter().map(u16::to_string).collect();
    let mut conf = format!(
        "# A throwaway cluster written by lepton-serve (serve/src/slurm/cluster.rs).\n\
         ClusterName=lepton\n\
         SlurmctldHost=localhost(127.0.0.1)\n\
         SlurmctldPort={ctld}\n\
         SlurmdPort={slurmd}\n\
         SlurmUser={user}\n\
         SlurmdUser={user}\n\
         AuthType=auth/none\n\
         CredType=cred/none\n\
         StateSaveLocation={d}/state\n\
         SlurmdSpoolDir={d}/spool/%n\n\
         SlurmctldPidFile={d}/slurmctld.pid\n\
         SlurmdPidFile={d}/slurmd-%n.pid\n\
         SlurmctldLogFile={d}/log/slurmctld.log\n\
         SlurmdLogFile={d}/log/slurmd-%n.log\n\
         SlurmdParameters=config_overrides\n\
         ProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\n\
         SchedulerType={sched}\n\
         SchedulerParameters=bf_interval=1,bf_resolution=1,sched_min_interval=100000\n\
         SelectType=select/cons_tres\n\
         SelectTypeParameters=CR_CPU\n\
         PriorityType={prio}\n",
        ctld = ports[0],
        slurmd = ports[1],
        sched = spec.scheduler.plugin(),
        prio = spec.priority.plugin(),
    );
    if spec.priority == PriorityType::Multifactor {
        conf.push_str(
            "PriorityWeightAge=0\nPriorityWeightFairshare=0\nPriorityWeightJobSize=0\n\
             PriorityWeightPartition=0\nPriorityWeightQOS=0\n",
        );
    }
    let _ = write!(
        conf,
        "AccountingStorageType=accounting_storage/none\n\
         JobAcctGatherType=jobacct_gather/none\n\
         JobCompType=jobcomp/filetxt\n\
         JobCompLoc={d}/jobcomp.txt\n\
         MpiDefault=none\n\
         ReturnToService=2\n\
         InactiveLimit=0\n\
         MinJobAge=3600\n\
         KillWait=1\n\
         Waittime=0\n\
         NodeName=n[1-{n}] NodeHostname=localhost NodeAddr=127.0.0.1 CPUs={c} RealMemory=1000 State=UNKNOWN Port=[{p}]\n\
         PartitionName=main Nodes=n[1-{n}] Default=YES MaxTime=INFINITE State=UP\n",
        n = spec.nodes,
        c = spec.cpus_per_node,
        p = node_ports.join(","),
    );
    conf
}
