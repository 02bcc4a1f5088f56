//! The engine's file layout: no import cycle among the production files of `engine/`, read
//! from the paths they name (`use super::…`, `super::x::Y`, `crate::engine::…`).
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (below `engine`) → file, for every production file of `engine/`.
fn modules(root: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![(root.to_path_buf(), Vec::<String>::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                if name != "tests" {
                    let mut p = prefix.clone();
                    p.push(name);
                    dirs.push((path, p));
                }
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut p = prefix.clone();
                if stem != "mod" {
                    p.push(stem.to_string());
                }
                out.insert(p, path);
            }
        }
    }
    out
}

/// The code of a file without comments and without its inline test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a file names from `start` on: `super::a::b` gives `[super, a, b]`, a group
/// `super::{a::x, b}` gives one path per member (first segment only, enough for files).
fn paths_from(code: &str, start: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices(start) {
        if at > 0 {
            let before = code[..at].chars().next_back().unwrap();
            if before.is_alphanumeric() || before == '_' {
                continue;
            }
        }
        let rest = &code[at..];
        let mut segs = Vec::new();
        let mut i = 0;
        let bytes = rest.as_bytes();
        loop {
            let ident: String = rest[i..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if ident.is_empty() {
                break;
            }
            i += ident.len();
            segs.push(ident);
            if rest[i..].starts_with("::{") {
                // A group: one path per top-level member.
                let body = &rest[i + 3..];
                let mut depth = 0;
                let mut member = String::new();
                for c in body.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            push_member(&mut out, &segs, &member);
                            member.clear();
                            continue;
                        }
                        _ => {}
                    }
                    member.push(c);
                }
                push_member(&mut out, &segs, &member);
                segs.clear();
                break;
            }
            if rest[i..].starts_with("::") && i + 2 < bytes.len() {
                i += 2;
            } else {
                break;
            }
        }
        if !segs.is_empty() {
            out.push(segs);
        }
    }
    out
}

fn push_member(out: &mut Vec<Vec<String>>, prefix: &[String], member: &str) {
    let first: String = member
        .trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if !first.is_empty() && first != "self" {
        let mut p = prefix.to_vec();
        p.extend(member.trim().split("::").map(|s| {
            s.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        }));
        out.push(p);
    } else if first == "self" {
        out.push(prefix.to_vec());
    }
}

/// The file a path names, from the module `at`.
fn resolve(
    path: &[String],
    at: &[String],
    files: &BTreeMap<Vec<String>, PathBuf>,
) -> Option<Vec<String>> {
    let mut base: Vec<String> = at.to_vec();
    let mut rest = path;
    if rest.first().map(String::as_str) == Some("crate") {
        // crate::engine::…
        if rest.get(1).map(String::as_str) != Some("engine") {
            return None;
        }
        base.clear();
        rest = &rest[2..];
    } else {
        // `super` is the parent of the file's module (x.rs is module x; r/mod.rs is r).
        while rest.first().map(String::as_str) == Some("super") {
            base.pop()?;
            rest = &rest[1..];
        }
    }
    let mut best = None;
    let mut m = base.clone();
    if files.contains_key(&m) {
        best = Some(m.clone());
    }
    for seg in rest {
        m.push(seg.clone());
        if files.contains_key(&m) {
            best = Some(m.clone());
        }
    }
    best
}

#[test]
fn no_import_cycle_among_the_engine_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let files = modules(&root);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, path) in &files {
        let code = code(path);
        let mut deps = BTreeSet::new();
        for p in paths_from(&code, "super::")
            .into_iter()
            .chain(paths_from(&code, "crate::engine::"))
        {
            if let Some(target) = resolve(&p, module, &files) {
                if &target != module {
                    deps.insert(target);
                }
            }
        }
        edges.insert(module.clone(), deps);
    }
    // The engine's files do import each other (the check reads something).
    assert!(
        edges.values().map(BTreeSet::len).sum::<usize>() > 10,
        "{edges:?}"
    );
    // Depth-first search for a back edge.
    fn visit(
        m: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(i) = stack.iter().position(|s| s == m) {
            let cycle: Vec<String> = stack[i..]
                .iter()
                .chain(std::iter::once(m))
                .map(|s| s.join("::"))
                .collect();
            panic!("import cycle in engine/: {}", cycle.join(" -> "));
        }
        stack.push(m.clone());
        for d in edges.get(m).into_iter().flatten() {
            visit(d, edges, stack, done);
        }
        stack.pop();
        done.insert(m.clone());
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        visit(m, &edges, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let files: BTreeMap<Vec<String>, PathBuf> = [
        (vec![], PathBuf::from("mod.rs")),
        (vec!["a".to_string()], PathBuf::from("a.rs")),
        (vec!["r".to_string()], PathBuf::from("r/mod.rs")),
        (
            vec!["r".to_string(), "x".to_string()],
            PathBuf::from("r/x.rs"),
        ),
    ]
    .into_iter()
    .collect();
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let code = "use super::{a::{self, B}, r::x::Y};\nfn f() { super::Config::new() }";
    let paths = paths_from(code, "super::");
    let targets: Vec<_> = paths
        .iter()
        .filter_map(|p| resolve(p, &v(&["r", "x"]), &files))
        .collect();
    // From r/x.rs, `super` is r: `super::a` is no file (r::a), `super::r::x` neither,
    // `super::Config` is r/mod.rs.
    assert_eq!(targets, vec![v(&["r"]), v(&["r"]), v(&["r"])]);
    let targets: Vec<_> = paths
        .iter()
        .filter_map(|p| resolve(p, &v(&["a"]), &files))
        .collect();
    // From a.rs, `super` is the engine: a.rs itself, r/x.rs, mod.rs.
    assert_eq!(targets, vec![v(&["a"]), v(&["r", "x"]), v(&[])]);
    let crate_paths = paths_from("use crate::engine::r::x::Y;", "crate::engine::");
    assert_eq!(
        resolve(&crate_paths[0], &v(&["a"]), &files),
        Some(v(&["r", "x"]))
    );
}
