//! The workspace's size rules, read from the sources with `syn`: no production `.rs` file
//! over 600 lines, no production function over 100 lines except the declarative tables
//! listed in [`TABLES`]. Production: the agent (`tracer`), the shared types
//! (`tracer-common`), the kernel programs (`tracer-ebpf`) and `xtask`, without their tests
//! (`tests.rs`, `tests/` directories, `#[cfg(test)]` modules, `#[test]` functions).
use std::path::{Path, PathBuf};

use syn::visit::Visit;

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 100;

/// Functions that are declarative tables (one entry per line, no logic), by file and name.
const TABLES: &[(&str, &str, &str)] = &[(
    "tracer/src/metrics/families.rs",
    "new",
    "one registration per metric family: name, help, labels, buckets",
)];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn production_files() -> Vec<PathBuf> {
    let root = workspace();
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = [
        "tracer/src",
        "tracer-common/src",
        "tracer-ebpf/src",
        "xtask/src",
    ]
    .iter()
    .map(|d| root.join(d))
    .collect();
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                if name != "tests" {
                    dirs.push(p);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() > 50, "found only {} files", out.len());
    out
}

fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("test")
            || (a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test"))
    })
}

/// (name, first line, lines) of every function outside tests.
#[derive(Default)]
struct Fns(Vec<(String, usize, usize)>);

impl Fns {
    fn add(&mut self, name: &syn::Ident, span: proc_macro2::Span) {
        let (a, b) = (span.start().line, span.end().line);
        self.0.push((name.to_string(), a, b + 1 - a));
    }
}

impl<'a> Visit<'a> for Fns {
    fn visit_item_mod(&mut self, m: &'a syn::ItemMod) {
        if !is_test(&m.attrs) {
            syn::visit::visit_item_mod(self, m);
        }
    }
    fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
        if !is_test(&f.attrs) {
            self.add(&f.sig.ident, syn::spanned::Spanned::span(f));
            syn::visit::visit_item_fn(self, f);
        }
    }
    fn visit_impl_item_fn(&mut self, f: &'a syn::ImplItemFn) {
        if !is_test(&f.attrs) {
            self.add(&f.sig.ident, syn::spanned::Spanned::span(f));
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
    fn visit_trait_item_fn(&mut self, f: &'a syn::TraitItemFn) {
        if f.default.is_some() && !is_test(&f.attrs) {
            self.add(&f.sig.ident, syn::spanned::Spanned::span(f));
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

#[test]
fn no_production_file_or_function_is_too_long() {
    let root = workspace();
    let mut problems = Vec::new();
    let mut fns_seen = 0;
    for path in production_files() {
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            problems.push(format!("{rel}: {lines} lines (at most {MAX_FILE_LINES})"));
        }
        let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let mut fns = Fns::default();
        fns.visit_file(&file);
        fns_seen += fns.0.len();
        for (name, at, n) in fns.0 {
            let table = TABLES.iter().any(|(f, t, _)| *f == rel && *t == name);
            if n > MAX_FN_LINES && !table {
                problems.push(format!(
                    "{rel}:{at}: fn {name} is {n} lines (at most {MAX_FN_LINES})"
                ));
            }
        }
    }
    assert!(fns_seen > 500, "only {fns_seen} functions read");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// One unit-test layout: a module's tests are its `tests` child, inline or in
/// `<module>/tests.rs` (more files in `<module>/tests/`), never a `#[path]` sibling.
#[test]
fn unit_tests_have_one_layout() {
    let mut odd = Vec::new();
    for path in production_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("#[path") {
            odd.push(path.display().to_string());
        }
    }
    for dir in ["tracer/src", "tracer-common/src"] {
        let mut dirs = vec![workspace().join(dir)];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p.clone());
                }
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                if name.ends_with("_tests.rs") || (name == "mod.rs" && d.ends_with("tests")) {
                    odd.push(p.display().to_string());
                }
            }
        }
    }
    assert!(odd.is_empty(), "tests outside the layout: {odd:?}");
}

#[test]
fn the_length_rule_sees_a_long_function() {
    let body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    let file = syn::parse_file(&format!(
        "fn long() {{\n{body}}}\n#[cfg(test)]\nmod tests {{ fn long_test() {{\n{body}}} }}"
    ))
    .unwrap();
    let mut fns = Fns::default();
    fns.visit_file(&file);
    assert_eq!(fns.0, vec![("long".to_string(), 1, MAX_FN_LINES + 2)]);
}
