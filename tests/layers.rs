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

/// What only `cli` may touch: ending the process, its arguments and environment, its
/// signals. (Reading its own id, for a lock holder, and the temporary folder are not
/// the process's control.)
const PROCESS: [&str; 9] = [
    "process::exit",
    "process::abort",
    "env::var(",
    "env::var_os(",
    "env::vars(",
    "env::args",
    "env::set_var",
    "env::remove_var",
    "tokio::signal",
];

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
            for name in crate_modules(&text) {
                if name != module {
                    edges.entry(module.clone()).or_default().insert(name);
                }
            }
        }
    }
    edges
}

/// The source without its comments (`//` to the end of a line, `/* ... */`); string
/// contents stay (a path in a string is not an import, but none of ours spell one).
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Every top-level module a source names through `crate::`: a path
/// (`crate::run::Engine`), and each item of a group (`use crate::{run, report::Summary}`),
/// groups spanning lines and nested groups included.
fn crate_modules(text: &str) -> BTreeSet<String> {
    let code = without_comments(text);
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let after = code[i + 7..].trim_start();
        match after.strip_prefix('{') {
            Some(group) => {
                // The group's top-level items, up to its closing brace.
                let mut depth = 0usize;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            names.extend(first_segment(&item));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    if depth == 0 {
                        item.push(c);
                    }
                }
                names.extend(first_segment(&item));
            }
            None => names.extend(first_segment(after)),
        }
    }
    names
}

/// `run` of `run::Engine`, of `run`, of ` run as r`; `None` for `self` or nothing.
fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && name != "self").then_some(name)
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

/// The import reader sees paths, groups over several lines, nested groups, and
/// nothing in comments.
#[test]
fn imports_are_read_from_paths_and_groups_never_from_comments() {
    let text = "use crate::{\n    run::{Engine, Prior},\n    report,\n    planner as p,\n};\n\
                let x = crate::graph::sign_in(); // crate::audit in a comment\n\
                /* crate::status */ use crate::{self as me};\n";
    let names: Vec<String> = crate_modules(text).into_iter().collect();
    assert_eq!(names, ["graph", "planner", "report", "run"]);
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
                let text =
                    without_comments(&std::fs::read_to_string(&path).expect("a source file"));
                let file = path.strip_prefix(&src).expect("under src");
                for needle in PROCESS {
                    // The simulator's own command still handles its signals (issue 23
                    // moves it to cli with its runtime).
                    if needle == "tokio::signal" && file == Path::new("sim/command.rs") {
                        continue;
                    }
                    if text.contains(needle) {
                        offenders.push(format!("{} uses {needle}", path.display()));
                    }
                }
                // `use std::{env, process}` and then `env::var(...)`: the paths above
                // catch the use; an import of `std::env` or `std::process` items by
                // name (`use std::env::var;`) is caught here.
                for import in ["std::env::", "std::process::"] {
                    for (i, _) in text.match_indices(import) {
                        let line_start = text[..i].rfind('\n').map_or(0, |n| n + 1);
                        if text[line_start..i].trim_start().starts_with("use ") {
                            offenders.push(format!("{} imports from {import}", path.display()));
                        }
                    }
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
