//! `lepton-fuzz [--inputs N] [--seed S] [--start K] [--timeout-s T] [--memory-mib M]`: runs a
//! mutation-fuzzing campaign over lepton's loaders from the repository root (seeds are read
//! from the shipped files and `../shared/data`). Exit codes: 0 no finding, 1 panics found (each
//! printed with its index, target and input), 2 bad arguments, 3 an input ran past the time
//! limit, 4 an input grew the Rust heap past the memory limit. Both limits name the input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The Rust heap, counted, so that each input is bounded in memory as well as in time: an
/// input whose live heap grows more than the limit above where it started ends the campaign
/// (exit 4) naming it, instead of swapping or being killed anonymously. libtorch's own
/// allocations (the checkpoint target) bypass this; `make fuzz` caps them with `ulimit -v`.
struct CountingAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static TRIPPED: AtomicBool = AtomicBool::new(false);
static INPUT: AtomicU64 = AtomicU64::new(0);
static SEED: AtomicU64 = AtomicU64::new(0);

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

impl CountingAllocator {
    fn grow(size: usize) {
        let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(live, Ordering::Relaxed);
        // Once tripped, allocations pass through: the message below allocates.
        if live > LIMIT.load(Ordering::Relaxed) && !TRIPPED.swap(true, Ordering::SeqCst) {
            let input = INPUT.load(Ordering::SeqCst);
            eprintln!(
                "memory: input {input} grew the heap past the limit with an allocation of {size} bytes (replay: --seed {} --start {input} --inputs 1)",
                SEED.load(Ordering::SeqCst)
            );
            std::process::exit(4);
        }
    }
}

// SAFETY: every call is forwarded to the system allocator with the same arguments; the
// counters are only bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::grow(layout.size());
        // SAFETY: the caller upholds `alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::grow(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            Self::grow(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: as in `dealloc`, and the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn arg(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a non-negative integer")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        Ok::<_, String>((
            arg(&args, "--inputs", 100_000)?,
            arg(&args, "--seed", 0)?,
            arg(&args, "--start", 0)?,
            arg(&args, "--timeout-s", 30)?,
            arg(&args, "--memory-mib", 2048)?,
        ))
    })();
    let (inputs, seed, start, timeout_s, memory_mib) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    tch::set_num_threads(1);
    SEED.store(seed, Ordering::SeqCst);
    let memory_limit = usize::try_from(memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    let targets = lepton_fuzz::targets(Path::new("."), Path::new("../shared"));
    if args.iter().any(|a| a == "--print") {
        let (t, text) = lepton_fuzz::input(&targets, seed, start);
        println!("target {}\n{text}", targets[t].name);
        return ExitCode::SUCCESS;
    }
    // A watchdog for hangs: the campaign reports each input it starts; an input that runs
    // past the limit ends the process (exit 3) naming it, so it can be replayed.
    let current = Arc::new(AtomicU64::new(start));
    let beat = Arc::new(AtomicU64::new(0));
    let clock = Instant::now();
    {
        let (current, beat) = (current.clone(), beat.clone());
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let last = beat.load(Ordering::SeqCst);
                if clock.elapsed().as_secs().saturating_sub(last) > timeout_s {
                    eprintln!(
                        "hang: input {} ran more than {timeout_s} s (replay: --seed {seed} --start {} --inputs 1)",
                        current.load(Ordering::SeqCst),
                        current.load(Ordering::SeqCst)
                    );
                    std::process::exit(3);
                }
            }
        });
    }
    let mut findings = Vec::new();
    let mut largest_growth = 0usize;
    // Batches of 1,000 between heartbeats: a beat per input would cost more than an input.
    let mut index = start;
    while index < start + inputs {
        let n = 1_000.min(start + inputs - index);
        for i in index..index + n {
            current.store(i, Ordering::SeqCst);
            beat.store(clock.elapsed().as_secs(), Ordering::SeqCst);
            INPUT.store(i, Ordering::SeqCst);
            let base = LIVE.load(Ordering::SeqCst);
            PEAK.store(base, Ordering::SeqCst);
            LIMIT.store(base.saturating_add(memory_limit), Ordering::SeqCst);
            findings.extend(lepton_fuzz::campaign(&targets, seed, i, 1, |_| {}));
            LIMIT.store(usize::MAX, Ordering::SeqCst);
            largest_growth = largest_growth.max(PEAK.load(Ordering::SeqCst).saturating_sub(base));
        }
        index += n;
        if index.is_multiple_of(50_000) || index == start + inputs {
            eprintln!(
                "{index} inputs, {} findings, {:.0} s",
                findings.len(),
                clock.elapsed().as_secs_f64()
            );
        }
    }
    for f in &findings {
        println!(
            "--- input {} ({}): {}\n{}",
            f.index, f.target, f.message, f.input
        );
    }
    println!(
        "{inputs} inputs (seed {seed}, from {start}): {} panics, 0 hangs, 0 over {memory_mib} MiB \
         (largest heap growth of one input {:.1} MiB), {:.0} s",
        findings.len(),
        largest_growth as f64 / f64::from(1 << 20),
        clock.elapsed().as_secs_f64()
    );
    if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
