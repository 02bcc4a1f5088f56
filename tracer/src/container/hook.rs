//! A container's declared preStop hook ([`DeclaredHook`]): what the pod spec says kubelet runs
//! before it stops the container, from kubelet's `io.kubernetes.container.preStopHandler`
//! annotation (the JSON of the container's `lifecycle.preStop`), as the node's CRI returns it.
//!
//! Only what explains a stop is kept: an exec hook's command *name* (its arguments may hold
//! secrets), an httpGet hook's path and port, a sleep hook's seconds.
use serde::{Deserialize, Serialize};

/// The preStop hook a container declares, in the container's JSON as `prestop_hook`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeclaredHook {
    /// The runtime answered and the container declares no preStop hook.
    None,
    /// `exec`: kubelet runs the command in the container (a runtime exec sigtrace sees).
    Exec { command: String },
    /// `httpGet`: kubelet makes the request itself; its duration is not visible to the kernel.
    HttpGet { path: String, port: String },
    /// `sleep`: kubelet sleeps this long itself, then stops the container with the rest of
    /// the grace.
    Sleep { seconds: u32 },
    /// `tcpSocket` (deprecated, kubelet does nothing) or a kind this version does not know.
    Other { name: String },
}

impl DeclaredHook {
    /// Parses the annotation's JSON; `None` when it is not a JSON object.
    pub fn parse(json: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let obj = v.as_object()?;
        if let Some(exec) = obj.get("exec") {
            let first = exec["command"].as_array()?.first()?.as_str()?;
            let name = first.rsplit('/').next().unwrap_or(first);
            return Some(Self::Exec {
                command: name.to_owned(),
            });
        }
        if let Some(http) = obj.get("httpGet") {
            let port = match &http["port"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            return Some(Self::HttpGet {
                path: http["path"].as_str().unwrap_or("/").to_owned(),
                port,
            });
        }
        if let Some(sleep) = obj.get("sleep") {
            let seconds = sleep["seconds"].as_u64()?;
            return Some(Self::Sleep {
                seconds: u32::try_from(seconds).unwrap_or(u32::MAX),
            });
        }
        let name = obj.keys().next()?.clone();
        Some(Self::Other { name })
    }

    /// True when `comm` (a task's 15-character command name) is this exec hook's command.
    pub fn is_exec_of(&self, comm: &str) -> bool {
        match self {
            Self::Exec { command } => {
                let want = command.get(..15).unwrap_or(command);
                !comm.is_empty() && comm == want
            }
            _ => false,
        }
    }

    /// How a person reads it: "exec sh", "httpGet /shutdown on port 8080", "sleep 5 s".
    pub fn describe(&self) -> String {
        match self {
            Self::None => "none".to_owned(),
            Self::Exec { command } => format!("exec {command}"),
            Self::HttpGet { path, port } => format!("httpGet {path} on port {port}"),
            Self::Sleep { seconds } => format!("sleep {seconds} s"),
            Self::Other { name } => name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeclaredHook;

    #[test]
    fn kubelet_annotations_parse() {
        assert_eq!(
            DeclaredHook::parse(r#"{"exec":{"command":["/bin/sh","-c","sleep 30 && secret"]}}"#),
            Some(DeclaredHook::Exec {
                command: "sh".into()
            })
        );
        assert_eq!(
            DeclaredHook::parse(r#"{"httpGet":{"path":"/quit","port":8080,"scheme":"HTTP"}}"#),
            Some(DeclaredHook::HttpGet {
                path: "/quit".into(),
                port: "8080".into()
            })
        );
        assert_eq!(
            DeclaredHook::parse(r#"{"httpGet":{"port":"http"}}"#),
            Some(DeclaredHook::HttpGet {
                path: "/".into(),
                port: "http".into()
            })
        );
        assert_eq!(
            DeclaredHook::parse(r#"{"sleep":{"seconds":5}}"#),
            Some(DeclaredHook::Sleep { seconds: 5 })
        );
        assert_eq!(
            DeclaredHook::parse(r#"{"tcpSocket":{"port":80}}"#),
            Some(DeclaredHook::Other {
                name: "tcpSocket".into()
            })
        );
        for bad in [
            "",
            "[]",
            "{",
            r#"{"exec":{}}"#,
            r#"{"sleep":{"seconds":-1}}"#,
        ] {
            assert_eq!(DeclaredHook::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn exec_hooks_match_their_command_name_only() {
        let hook = DeclaredHook::Exec {
            command: "graceful-shutdown-helper".into(),
        };
        assert!(hook.is_exec_of("graceful-shutdo"));
        assert!(!hook.is_exec_of("sleep"));
        assert!(!hook.is_exec_of(""));
        assert!(!DeclaredHook::Sleep { seconds: 3 }.is_exec_of("sleep"));
    }

    #[test]
    fn json_names_the_kind() {
        let v = serde_json::to_value(DeclaredHook::Sleep { seconds: 7 }).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "sleep", "seconds": 7}));
        let v = serde_json::to_value(DeclaredHook::None).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "none"}));
    }
}
