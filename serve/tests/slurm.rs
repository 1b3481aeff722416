//! Real Slurm in the loop: each test starts its own throwaway cluster (a temporary folder, its
//! own free ports, daemons ended by a drop guard even on a panic) and replays a small job list
//! on it with one trace second = one real second.
//!
//! Slurm must be installed (`.ci/run` installs it as root: `apt-get install slurmctld slurmd
//! slurm-client munge`); without it these tests fail saying so. `LEPTON_SKIP_SLURM=1` skips
//! them with a printed note, for machines that cannot run Slurm.

use lepton_serve::jobs::{ScaledJob, TraceJob, scale};
use lepton_serve::learned::LearnedRanker;
use lepton_serve::rank::{QueueState, QueuedJob, Ranker};
use lepton_serve::replay::{self, JobOutcome, ReplayOptions};
use lepton_serve::simulate;
use lepton_serve::slurm::cluster::{ClusterSpec, LocalCluster, PriorityType, SchedulerType};
use lepton_serve::slurm::driver;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// One cluster at a time: the machine is small and timing matters.
static SERIAL: Mutex<()> = Mutex::new(());

/// Jobs starting within this many seconds of each other were started by one scheduling pass
/// (each job's script reads the clock as it starts; a pass launches its jobs within a few
/// hundred milliseconds, and every job here runs at least a second).
const SAME_PASS_S: f64 = 0.6;

/// A throwaway `sched/builtin` cluster of `nodes` × `cpus`, or `None` (with a note) when
/// `LEPTON_SKIP_SLURM=1`.
fn start_builtin(nodes: u32, cpus: u32, priority: PriorityType) -> Option<LocalCluster> {
    if std::env::var("LEPTON_SKIP_SLURM").is_ok_and(|v| v == "1") {
        eprintln!("note: LEPTON_SKIP_SLURM=1: skipping a real-Slurm test");
        return None;
    }
    let spec = ClusterSpec {
        nodes,
        cpus_per_node: cpus,
        scheduler: SchedulerType::Builtin,
        priority,
    };
    match LocalCluster::start(spec) {
        Ok(c) => Some(c),
        Err(e) => panic!("{e}\n(set LEPTON_SKIP_SLURM=1 to skip the real-Slurm tests)"),
    }
}

fn job(id: u64, arrival_s: f64, runtime_s: f64, limit_min: u64, procs: u32) -> TraceJob {
    TraceJob {
        id,
        arrival_s,
        runtime_s,
        // A limit of k minutes at scale 1: scale() adds one second and rounds up.
        estimate_s: limit_min as f64 * 60.0 - 1.0,
        procs,
    }
}

fn run(cluster: &LocalCluster, jobs: &[ScaledJob]) -> Vec<JobOutcome> {
    let options = ReplayOptions {
        time_scale: 1.0,
        partition: None,
        job_out_dir: cluster.out_dir(),
        timeout: Duration::from_secs(60),
    };
    replay::replay(cluster.slurm(), jobs, &options)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tail()))
}

fn slurm_groups(outcomes: &[JobOutcome]) -> Vec<Vec<u64>> {
    let starts: Vec<(u64, f64)> = outcomes.iter().map(|o| (o.trace_id, o.start_s)).collect();
    replay::start_groups(&starts, SAME_PASS_S)
}

fn sim_groups(jobs: &[ScaledJob], cpus: u32, scheduler: &str) -> (Vec<Vec<u64>>, Vec<f64>) {
    let sim = simulate::simulate(jobs, cpus, scheduler).unwrap();
    let starts: Vec<(u64, f64)> = sim.iter().map(|s| (s.trace_id, s.start_s)).collect();
    let groups = replay::start_groups(&starts, 1e-9);
    let times = groups
        .iter()
        .map(|g| sim.iter().find(|s| s.trace_id == g[0]).unwrap().start_s)
        .collect();
    (groups, times)
}

/// The first start of each group, in the order of `groups`.
fn group_times(groups: &[Vec<u64>], outcomes: &[JobOutcome]) -> Vec<f64> {
    groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|id| outcomes.iter().find(|o| o.trace_id == *id).unwrap().start_s)
                .fold(f64::INFINITY, f64::min)
        })
        .collect()
}

/// Asserts that Slurm started the jobs other than the blocker (trace job 1) in `ranking`'s
/// order: sorted by start group, then by rank within a group (jobs one scheduling pass
/// launched together), they are the ranking. Returns the start groups.
fn assert_started_in_ranked_order(outcomes: &[JobOutcome], ranking: &[u64]) -> Vec<Vec<u64>> {
    let rank_of = |id: u64| ranking.iter().position(|&r| r == id).unwrap();
    let groups = slurm_groups(outcomes);
    let group_of = |id: u64| groups.iter().position(|g| g.contains(&id)).unwrap();
    let mut started: Vec<&JobOutcome> = outcomes.iter().filter(|o| o.trace_id != 1).collect();
    started.sort_by_key(|o| (group_of(o.trace_id), rank_of(o.trace_id)));
    let order: Vec<u64> = started.iter().map(|o| o.trace_id).collect();
    assert_eq!(order, ranking, "Slurm's start order: {outcomes:#?}");
    groups
}

/// The `lepton-serve slurm` loop as a child process, ended on drop.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Slurm's sched/builtin against lepton's `fcfs+strict` on the same job list: the same jobs
/// start together, in the same order, and each step between start groups takes the
/// simulator's time plus Slurm's own delay (job end noticed, scheduling pass, launch).
#[test]
fn fcfs_start_order_matches_the_simulator() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cluster) = start_builtin(2, 2, PriorityType::Basic) else {
        return;
    };
    // 4 CPUs. Job 3 fits at once but must not overtake job 2 (strict order); job 4 needs the
    // whole cluster and holds back 5 and 6.
    let trace = [
        job(1, 0.0, 2.0, 1, 3),
        job(2, 0.2, 2.0, 1, 2),
        job(3, 0.4, 1.0, 1, 1),
        job(4, 0.6, 1.0, 1, 4),
        job(5, 0.8, 2.0, 1, 1),
        job(6, 1.0, 1.0, 1, 2),
    ];
    let jobs = scale(&trace, 1.0, Some(4)).unwrap();
    let outcomes = run(&cluster, &jobs);
    let (expected, sim_times) = sim_groups(&jobs, 4, "fcfs+strict");
    assert_eq!(
        expected,
        vec![vec![1], vec![2, 3], vec![4], vec![5, 6]],
        "the simulator's own schedule, by hand"
    );
    assert_eq!(sim_times, vec![0.0, 2.0, 4.0, 5.0]);
    let groups = slurm_groups(&outcomes);
    assert_eq!(groups, expected, "Slurm's start groups: {outcomes:#?}");
    // Slurm's start order by its own StartTime seconds agrees with the groups.
    for w in outcomes.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert!(a.slurm_start_epoch <= b.slurm_start_epoch, "{a:?} {b:?}");
    }
    // lepton-serve refuses this pair: sched/builtin with priority/basic ignores priorities.
    let out = Command::new(env!("CARGO_BIN_EXE_lepton-serve"))
        .args(["slurm", "--policy", "sjf", "--once"])
        .env("SLURM_CONF", cluster.conf())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("ignores priorities set by scontrol"),
        "{stderr}"
    );
    let slurm_times = group_times(&groups, &outcomes);
    eprintln!("start groups: simulator at {sim_times:?} s, Slurm at {slurm_times:.2?} s");
    for g in 1..groups.len() {
        let delay = (slurm_times[g] - slurm_times[g - 1]) - (sim_times[g] - sim_times[g - 1]);
        assert!(
            (-0.3..=3.5).contains(&delay),
            "step {g}: Slurm took {delay:.2} s more than the simulator: {slurm_times:?}"
        );
    }
}

/// `lepton-serve slurm --policy sjf` drives sched/builtin: the jobs queued behind a blocker
/// start in SJF order of their time limits, in the start groups lepton's `sjf+strict` gives.
#[test]
fn lepton_serve_sets_the_start_order() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cluster) = start_builtin(1, 4, PriorityType::Multifactor) else {
        return;
    };
    // A held job: the loop must leave it held (a priority would release it).
    let held = sbatch(&cluster, &["--hold", "--ntasks=1", "--time=1"]);
    let serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_lepton-serve"))
            .args(["slurm", "--policy", "sjf", "--interval", "0.2"])
            .env("SLURM_CONF", cluster.conf())
            .stdout(Stdio::null())
            .spawn()
            .expect("lepton-serve runs"),
    );
    // Job 1 holds all 4 CPUs for 4 s; jobs 2–7 queue behind it in submission order, which
    // is not the SJF order of their limits (minutes): 5 (1), 3 (2), 6 (3), 7 (4), 2 (5), 4 (6).
    let trace = [
        job(1, 0.0, 4.0, 1, 4),
        job(2, 0.3, 1.0, 5, 2),
        job(3, 0.3, 2.0, 2, 3),
        job(4, 0.3, 1.0, 6, 1),
        job(5, 0.3, 1.0, 1, 4),
        job(6, 0.3, 4.0, 3, 2),
        job(7, 0.3, 1.0, 4, 1),
    ];
    let jobs = scale(&trace, 1.0, Some(4)).unwrap();
    let outcomes = run(&cluster, &jobs);

    // The policy's ranking of the queued jobs, as lepton-serve computes it.
    let queued: Vec<QueuedJob> = jobs[1..]
        .iter()
        .map(|j| QueuedJob {
            id: j.job.id,
            arrival_s: j.job.arrival_s,
            estimate_s: j.limit_min as f64 * 60.0,
            procs: j.job.procs,
        })
        .collect();
    let queue = QueueState {
        now_s: 1.0,
        waiting: queued,
        running: Vec::new(),
    };
    let ranking = Ranker::by_name("sjf").unwrap().rank(&queue).unwrap();
    assert_eq!(ranking, vec![5, 3, 6, 7, 2, 4]);

    let groups = assert_started_in_ranked_order(&outcomes, &ranking);

    // Strictly in order, with the start groups lepton's simulator gives for sjf+strict:
    // 5 alone (4 CPUs), 3 alone (6 does not fit beside it), 6 and 7, then 2 when 7 ends,
    // then 4 when 2 ends (6 runs on; every step is at least a second apart).
    let expected = vec![vec![1], vec![5], vec![3], vec![6, 7], vec![2], vec![4]];
    assert_eq!(sim_groups(&jobs, 4, "sjf+strict").0, expected);
    assert_eq!(groups, expected, "Slurm's start groups: {outcomes:#?}");

    let still_held = job_state(&cluster, held);
    assert_eq!(
        (
            still_held.state.as_str(),
            still_held.priority,
            still_held.reason.as_str()
        ),
        ("PENDING", 0, "JobHeldUser")
    );

    // Dry run: prints the changes, makes none.
    drop(serve);
    let later = |limit: &str| sbatch(&cluster, &["--begin=now+3600", "--ntasks=1", limit]);
    let (long, short) = (later("--time=5"), later("--time=1"));
    let before = (
        job_state(&cluster, long).priority,
        job_state(&cluster, short).priority,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lepton-serve"))
        .args(["slurm", "--policy", "sjf", "--dry-run", "--once"])
        .env("SLURM_CONF", cluster.conf())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "dry run: would set JobId={short} Priority=4294967000 (rank 1 of 2,"
        )) && stdout.contains(&format!(
            "dry run: would set JobId={long} Priority=4294966999 (rank 2 of 2,"
        )),
        "{stdout}"
    );
    let after = (
        job_state(&cluster, long).priority,
        job_state(&cluster, short).priority,
    );
    assert_eq!(before, after);
}

/// A shipped checkpoint drives sched/builtin: one `lepton-serve slurm --checkpoint` pass
/// while jobs 2–7 queue behind a blocker sets their priorities in the policy's ranking, which
/// is the ranking lepton-serve's `LearnedRanker` gives for that queue, and Slurm starts the
/// jobs in that order.
#[test]
fn a_shipped_checkpoint_sets_the_start_order() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cluster) = start_builtin(1, 4, PriorityType::Multifactor) else {
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let checkpoint = root.join("checkpoints/lublin_1_ppo/seed1");
    let scenario = root.join("serve/tests/data/lublin-1-on-4-cpus.toml");
    // Job 1 holds all 4 CPUs for 5 s (it is a running job in the policy's state); 2–7 queue
    // behind it with different sizes and limits (minutes).
    let trace = [
        job(1, 0.0, 5.0, 1, 4),
        job(2, 0.3, 1.0, 5, 2),
        job(3, 0.3, 2.0, 2, 3),
        job(4, 0.3, 1.0, 6, 1),
        job(5, 0.3, 1.0, 1, 4),
        job(6, 0.3, 2.0, 3, 2),
        job(7, 0.3, 1.0, 4, 1),
    ];
    let jobs = scale(&trace, 1.0, Some(4)).unwrap();
    let (outcomes, ranking) = std::thread::scope(|scope| {
        let replay = scope.spawn(|| run(&cluster, &jobs));
        // The pass must see the blocker running and 2–7 queued: wait for that moment rather
        // than a fixed time, which a loaded machine overran (the blocker not yet started).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let now = cluster.slurm().jobs(false).unwrap();
            let running = now.iter().filter(|j| j.state == "RUNNING").count();
            let pending = now.iter().filter(|j| j.is_pending()).count();
            if (running, pending) == (1, 6) || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = Command::new(env!("CARGO_BIN_EXE_lepton-serve"))
            .args(["slurm", "--once", "--checkpoint"])
            .arg(&checkpoint)
            .arg("--scenario")
            .arg(&scenario)
            .env("SLURM_CONF", cluster.conf())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("ranked 6 pending jobs"), "{stdout}");
        // What the pass set: the pending jobs by priority, and what the ranker gives now.
        let now = cluster.slurm().jobs(false).unwrap();
        let mut pending: Vec<_> = now.iter().filter(|j| j.is_pending()).collect();
        pending.sort_by_key(|j| std::cmp::Reverse(j.priority));
        let by_priority: Vec<u64> = pending.iter().map(|j| j.job_id).collect();
        let queue = driver::observe(&now, None, now_epoch());
        assert_eq!(queue.running.len(), 1, "the blocker runs: {queue:?}");
        let mut ranker = LearnedRanker::load(&checkpoint, &scenario, 1.0).unwrap();
        assert_eq!(ranker.rank(&queue).unwrap(), by_priority);
        (replay.join().unwrap(), by_priority)
    });
    let trace_id = |slurm_id: u64| {
        outcomes
            .iter()
            .find(|o| o.slurm_id == slurm_id)
            .unwrap()
            .trace_id
    };
    let ranking: Vec<u64> = ranking.into_iter().map(trace_id).collect();
    eprintln!("the policy's ranking of jobs 2-7: {ranking:?}");

    assert_started_in_ranked_order(&outcomes, &ranking);
}

fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn sbatch(cluster: &LocalCluster, args: &[&str]) -> u64 {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.push("--output=/dev/null".into());
    all.push("--wrap=sleep 1".into());
    cluster.slurm().sbatch(&all).unwrap()
}

fn job_state(cluster: &LocalCluster, id: u64) -> lepton_serve::slurm::cli::SlurmJob {
    cluster
        .slurm()
        .jobs(true)
        .unwrap()
        .into_iter()
        .find(|j| j.job_id == id)
        .unwrap()
}
