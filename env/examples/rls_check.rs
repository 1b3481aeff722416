// scratch: RLScheduler windows as list workloads (not committed)
use lepton_env::scenario::Scenario;
use lepton_env::schedulers::{by_name, run_episode};
use std::path::Path;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&args[1]).unwrap();
    let jobs: Vec<Vec<f64>> = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
        .collect();
    let offs = [
        1981usize, 2756, 4299, 8850, 3316, 2714, 5228, 7762, 4022, 7085,
    ];
    for name in args[2].split(',') {
        let mut sum = 0.0;
        let t0 = std::time::Instant::now();
        for &o in &offs {
            let tasks: Vec<String> = jobs[o..o + 1024].iter().map(|f| {
                let p = f[4].max(f[7]);
                format!("{{ id = {}, arrival_s = {:?}, duration_s = {:?}, demand = [{}], estimate_s = {:?} }}", f[0], f[1], f[3], p, f[3])
            }).collect();
            let toml = format!(
                "name = \"w\"\nresources = [\"nodes\"]\n[[server_types]]\nname = \"m\"\ncount = 1\ncapacity = [256]\n[queue]\nnum_slots = 128\nbacklog_cap = 1024\n[actions]\nmode = \"slot\"\n[workload]\nkind = \"list\"\ntasks = [{}]\n",
                tasks.join(", ")
            );
            let mut env = Scenario::from_toml_str(&toml, Path::new("w.toml"))
                .unwrap()
                .build();
            let mut s = by_name(name).unwrap();
            let m = run_episode(s.as_mut(), &mut env, 0).unwrap();
            assert_eq!(m.num_finished, 1024);
            sum += m.mean_bounded_slowdown;
        }
        println!("{name}: {:.2}  ({:?})", sum / 10.0, t0.elapsed());
    }
}
