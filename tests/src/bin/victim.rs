//! `victim`: a process with a configurable reaction to signals, the subject of the
//! end-to-end tests. Options (repeatable where it makes sense):
//!   --handle SIG:CODE:DELAY_MS  install a handler; on SIG, wait DELAY_MS, then exit(CODE)
//!   --ignore SIG                set SIG to SIG_IGN
//!   --block SIG --unblock-ms N  keep SIG blocked for the first N ms
//!   --exit-after-ms N --code C  exit(C) on its own after N ms
//!   --children N                fork N children that just sleep (they inherit dispositions)
//!   --forward SIG               on the first handled signal, send SIG to every child first
//!   --ready FILE                create FILE once set up
//! Without --exit-after-ms it sleeps (up to 10 minutes) until a signal ends it.
use std::{
    sync::atomic::{AtomicI32, Ordering},
    time::{Duration, Instant},
};

static GOT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: i32) {
    GOT.store(sig, Ordering::SeqCst);
}

fn parse_sig(s: &str) -> i32 {
    match s.trim_start_matches("SIG") {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "TERM" => libc::SIGTERM,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "WINCH" => libc::SIGWINCH,
        n => n
            .parse()
            .unwrap_or_else(|_| panic!("victim: unknown signal {s}")),
    }
}

fn sigset_of(sig: i32) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset on a local sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        set
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut handlers: Vec<(i32, i32, u64)> = Vec::new();
    let mut ignores = Vec::new();
    let mut block: Option<i32> = None;
    let mut unblock_ms = 0u64;
    let mut exit_after: Option<u64> = None;
    let mut code = 0;
    let mut children = 0;
    let mut forward: Option<i32> = None;
    let mut ready: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| panic!("victim: {a} needs a value"))
        };
        match a.as_str() {
            "--handle" => {
                let v = val();
                let parts: Vec<&str> = v.split(':').collect();
                let sig = parse_sig(parts[0]);
                let c = parts.get(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                let d = parts.get(2).and_then(|d| d.parse().ok()).unwrap_or(0);
                handlers.push((sig, c, d));
            }
            "--ignore" => ignores.push(parse_sig(&val())),
            "--block" => block = Some(parse_sig(&val())),
            "--unblock-ms" => unblock_ms = val().parse().expect("--unblock-ms N"),
            "--exit-after-ms" => exit_after = Some(val().parse().expect("--exit-after-ms N")),
            "--code" => code = val().parse().expect("--code C"),
            "--children" => children = val().parse().expect("--children N"),
            "--forward" => forward = Some(parse_sig(&val())),
            "--ready" => ready = Some(val()),
            other => panic!("victim: unknown option {other}"),
        }
    }

    // SAFETY: installing dispositions and masks in this single-threaded process.
    unsafe {
        for &(sig, _, _) in &handlers {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
        for &sig in &ignores {
            libc::signal(sig, libc::SIG_IGN);
        }
        if let Some(sig) = block {
            let set = sigset_of(sig);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
    }

    let mut kids = Vec::new();
    for _ in 0..children {
        // SAFETY: fork in a single-threaded process; the child only sleeps and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // Children: default dispositions for stop signals (like an exec'd workload).
            unsafe {
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                libc::signal(libc::SIGINT, libc::SIG_DFL);
            }
            std::thread::sleep(Duration::from_secs(600));
            std::process::exit(0);
        }
        kids.push(pid);
    }

    if let Some(path) = &ready {
        std::fs::write(path, format!("{}\n", std::process::id())).expect("victim: ready file");
    }

    let start = Instant::now();
    let mut unblocked = block.is_none();
    loop {
        let sig = GOT.load(Ordering::SeqCst);
        if sig != 0 {
            if let Some(&(_, c, delay)) = handlers.iter().find(|h| h.0 == sig) {
                if let Some(f) = forward {
                    for &k in &kids {
                        // SAFETY: kill(2) to our own children.
                        unsafe { libc::kill(k, f) };
                    }
                }
                std::thread::sleep(Duration::from_millis(delay));
                std::process::exit(c);
            }
        }
        if !unblocked && start.elapsed() >= Duration::from_millis(unblock_ms) {
            if let Some(sig) = block {
                let set = sigset_of(sig);
                // SAFETY: unblocking a signal in this process.
                unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
            }
            unblocked = true;
        }
        if let Some(ms) = exit_after {
            if start.elapsed() >= Duration::from_millis(ms) {
                std::process::exit(code);
            }
        }
        if start.elapsed() > Duration::from_secs(600) {
            std::process::exit(99);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
