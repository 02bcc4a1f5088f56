//! `pause`: the sandbox (pause) program of the Kubernetes tests' pod images. As PID 1 of a pod
//! sandbox it waits for signals, reaps every child it inherits, and exits 0 on SIGTERM or
//! SIGINT, like the real pause container.
fn main() {
    // SAFETY: plain libc signal-mask and wait calls on this process's own state.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGCHLD] {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        loop {
            let mut sig = 0;
            if libc::sigwait(&set, &mut sig) != 0 {
                continue;
            }
            if sig == libc::SIGCHLD {
                while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
                continue;
            }
            std::process::exit(0);
        }
    }
}
