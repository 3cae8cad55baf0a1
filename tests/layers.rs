//! The house (issue 9): commands over a shared core. Read from the sources: every
//! `crate::<module>` a top-level module of `src/` names is an edge; the graph has no
//! cycle, no core module names a command, and no command names another command.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The commands: each takes its config and the outside world as arguments.
const COMMANDS: [&str; 7] = [
    "plan",
    "run",
    "status",
    "audit",
    "evidence",
    "rules_command",
    "sim",
];
/// On top: the only module that knows clap, exit codes, signals, the process.
const TOP: &str = "cli";

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = crate::common::repo().join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let module = top_module(&src, &path);
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a source file");
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                for (i, _) in code.match_indices("crate::") {
                    let name: String = code[i + 7..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        edges.entry(module.clone()).or_default().insert(name);
                    }
                }
            }
        }
    }
    edges
}

fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

#[test]
fn the_module_graph_has_no_cycle() {
    let edges = edges();
    // Depth-first search; a node met again on the current path closes a cycle.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(n) {
            return;
        }
        if let Some(at) = path.iter().position(|p| p == n) {
            panic!("a cycle: {} -> {n}", path[at..].join(" -> "));
        }
        path.push(n.to_owned());
        for t in edges.get(n).into_iter().flatten() {
            visit(t, edges, path, done);
        }
        path.pop();
        done.insert(n.to_owned());
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        visit(n, &edges, &mut Vec::new(), &mut done);
    }
    assert!(
        done.contains("run") && done.contains("planner"),
        "{edges:?}"
    );
}

#[test]
fn no_core_module_imports_a_command_and_no_command_imports_another() {
    for (module, targets) in edges() {
        if module == TOP {
            continue;
        }
        for t in &targets {
            assert_ne!(t, TOP, "{module} imports cli: only cli knows the process");
            if COMMANDS.contains(&t.as_str()) {
                panic!("{module} imports the command {t}");
            }
        }
    }
}

#[test]
fn only_cli_ends_the_process_or_reads_the_environment() {
    let src = crate::common::repo().join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if top_module(&src, &path) != TOP && path.extension().is_some_and(|e| e == "rs")
            {
                let text = std::fs::read_to_string(&path).expect("a source file");
                for needle in ["process::exit", "std::env::var("] {
                    if text.contains(needle) {
                        offenders.push(format!("{} uses {needle}", path.display()));
                    }
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
