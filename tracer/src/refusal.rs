//! Why a kernel program was not loaded or attached ([`Refusal`]): a verifier refusal (with the
//! instruction it stopped at and its last lines), a missing privilege, a program not tried,
//! or another error. A verifier refusal is never taken for a missing privilege, whatever its
//! errno: the verifier answers EACCES for an invalid access.

/// Why a program was not loaded or attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not tried, and why.
    Skipped(String),
    /// A missing privilege: EPERM/EACCES with no verifier log.
    Permission(String),
    /// The verifier refused the program: the instruction it stopped at and its last lines.
    Verifier {
        errno: String,
        insn: Option<String>,
        last_lines: Vec<String>,
    },
    /// Anything else, with its whole error chain.
    Other(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Skipped(why) => f.write_str(why),
            Self::Permission(what) => write!(f, "permission denied ({what})"),
            Self::Verifier {
                errno,
                insn,
                last_lines,
            } => {
                write!(f, "refused by the kernel's verifier ({errno})")?;
                if let Some(insn) = insn {
                    write!(f, " at `{insn}`")?;
                }
                write!(f, "; its last lines: {}", last_lines.join(" / "))
            }
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// Lines of a verifier log that say why: the last few, without the statistics it appends.
const VERIFIER_TAIL: usize = 4;

impl Refusal {
    /// Classifies a load or attach error: a verifier log makes it a verifier refusal whatever
    /// the errno (the verifier answers EACCES for an invalid access); EPERM/EACCES without
    /// one is a missing privilege.
    pub fn classify(err: &aya::programs::ProgramError) -> Self {
        if let aya::programs::ProgramError::LoadError {
            io_error,
            verifier_log,
        } = err
        {
            let log = verifier_log.to_string();
            if !log.trim().is_empty() {
                return Self::from_verifier_log(&io_error.to_string(), &log);
            }
        }
        if is_eperm(err) {
            return Self::Permission(chain(err));
        }
        Self::Other(chain(err))
    }

    /// A verifier refusal from its log: the last instruction it printed (`N: (op) ...`) and
    /// its last lines, statistics left out.
    pub fn from_verifier_log(errno: &str, log: &str) -> Self {
        let lines: Vec<&str> = log
            .lines()
            .map(str::trim)
            .filter(|l| {
                !l.is_empty()
                    && !l.starts_with("processed ")
                    && !l.starts_with("verification time")
                    && !l.starts_with("stack depth")
                    && !l.starts_with("mark_precise")
            })
            .collect();
        let is_insn = |l: &str| {
            let (num, rest) = l.split_once(':').unwrap_or(("", ""));
            !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) && rest.starts_with(" (")
        };
        let insn = lines
            .iter()
            .rev()
            .find(|l| is_insn(l))
            .map(|l| l.to_string());
        let last_lines = lines[lines.len().saturating_sub(VERIFIER_TAIL)..]
            .iter()
            .map(|l| l.to_string())
            .collect();
        Self::Verifier {
            errno: errno.to_string(),
            insn,
            last_lines,
        }
    }
}

/// Whether an error (or one of its sources) is EPERM/EACCES: a missing privilege, unless a
/// verifier log says otherwise ([`Refusal::classify`]).
pub(crate) fn is_eperm(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
                return true;
            }
        }
        if e.to_string().contains("Operation not permitted") {
            return true;
        }
        cur = e.source();
    }
    false
}

/// An error and its sources, one line.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        s.push_str(": ");
        s.push_str(&e.to_string());
        src = e.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_refusal_names_the_instruction_and_its_reason() {
        // The log of 6.12's refusal of the siginfo load (abridged), statistics included.
        let log = "func 'signal_generate' arg1 has btf_id 446 type STRUCT 'kernel_siginfo'\n\
                   marking pointer arg1 as scalar as it may encode error\n\
                   0: R1=ctx() R10=fp0\n\
                   99: (bf) r1 = r8\n\
                   100: (61) r1 = *(u32 *)(r8 +8)\n\
                   R8 invalid mem access 'scalar'\n\
                   processed 97 insns (limit 1000000) max_states_per_insn 0\n";
        let r = Refusal::from_verifier_log("Permission denied (os error 13)", log);
        let Refusal::Verifier {
            insn, last_lines, ..
        } = &r
        else {
            panic!("{r:?}");
        };
        assert_eq!(insn.as_deref(), Some("100: (61) r1 = *(u32 *)(r8 +8)"));
        assert_eq!(last_lines.last().unwrap(), "R8 invalid mem access 'scalar'");
        let text = r.to_string();
        assert!(text.contains("verifier"), "{text}");
        assert!(!text.contains("processed"), "{text}");
        assert!(!text.starts_with("permission denied"), "{text}");
        // With no instruction in the log, the last lines still say why.
        let r = Refusal::from_verifier_log("Invalid argument (os error 22)", "unknown func 42\n");
        assert!(r.to_string().contains("unknown func 42"), "{r}");
    }
}
