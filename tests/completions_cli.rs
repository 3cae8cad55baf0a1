//! `completions SHELL` and `man`: generated from the clap definitions, by the binary.

use crate::common::intune_reset;

const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "powershell", "elvish"];

/// Every command `--help` lists, bar `help`.
const COMMANDS: [&str; 9] = [
    "plan",
    "run",
    "status",
    "audit",
    "evidence",
    "rules",
    "simulate",
    "completions",
    "man",
];

fn script(shell: &str) -> String {
    let out = intune_reset()
        .args(["completions", shell])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{shell}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "{shell}: nothing but the script");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_of_every_shell_name_the_commands_and_flags() {
    for shell in SHELLS {
        let text = script(shell);
        for command in COMMANDS {
            assert!(text.contains(command), "{shell}: no {command}");
        }
        for flag in ["resume", "tenants", "tenant", "simulate", "log-format"] {
            // fish spells a long flag `-l resume`.
            let spelled = match shell {
                "fish" => format!("-l {flag} "),
                _ => format!("--{flag}"),
            };
            assert!(text.contains(&spelled), "{shell}: no {spelled}");
        }
    }
}

#[test]
fn completions_for_powershell_register_an_argument_completer() {
    let text = script("powershell");
    assert!(
        text.contains("Register-ArgumentCompleter -Native -CommandName 'intune-reset'"),
        "{text}"
    );
    // `using` lines first: the script is run (Invoke-Expression), never appended.
    assert!(text.trim_start().starts_with("using namespace"), "{text}");
}

#[test]
fn completions_for_bash_pass_bash_n() {
    let text = script("bash");
    assert!(text.contains("complete -F _intune__reset"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intune-reset.bash");
    std::fs::write(&path, &text).unwrap();
    match std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("no bash here: the script's syntax is not checked");
        }
        Err(e) => panic!("bash -n: {e}"),
    }
}

/// What bash offers for `words` (the last one being completed), as a user's <TAB>
/// would; `None` without bash.
fn bash_offers(script: &std::path::Path, words: &[&str]) -> Option<Vec<String>> {
    let line = words.join(" ");
    let program = format!(
        "source '{}'\n\
         COMP_WORDS=({line})\n\
         COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
         _intune__reset intune-reset \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(program)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn completions_for_bash_complete_commands_flags_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intune-reset.bash");
    std::fs::write(&path, script("bash")).unwrap();
    let Some(offered) = bash_offers(&path, &["intune-reset", "co"]) else {
        eprintln!("no bash here: completions are not exercised");
        return;
    };
    assert_eq!(offered, ["completions"]);
    // A command's own flags (clap_complete 4.6.12 lost them for hyphenated names).
    let offered = bash_offers(&path, &["intune-reset", "run", "--resu"]).unwrap();
    assert_eq!(offered, ["--resume"]);
    let offered = bash_offers(&path, &["intune-reset", "run", "--tenan"]).unwrap();
    assert_eq!(offered, ["--tenants", "--tenant"]);
    let offered = bash_offers(&path, &["intune-reset", "completions", "p"]).unwrap();
    assert_eq!(offered, ["powershell"]);
}

#[test]
fn completions_of_an_unknown_shell_are_bad_usage() {
    let out = intune_reset()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("possible values: bash"), "{stderr}");
}

#[test]
fn completions_man_writes_one_page_for_the_tool_and_one_per_command() {
    let dir = tempfile::tempdir().unwrap();
    // Created if missing, as ~/.local/share/man/man1 may be.
    let out_dir = dir.path().join("man").join("man1");
    let out = intune_reset()
        .args(["man", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = COMMANDS
        .iter()
        .map(|c| format!("intune-reset-{c}.1"))
        .chain(["intune-reset.1".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    for name in &names {
        let page = std::fs::read_to_string(out_dir.join(name)).unwrap();
        let title = name.trim_end_matches(".1");
        let th = first_request(&page).unwrap_or_default();
        assert!(th.starts_with(&format!(".TH {title} 1 ")), "{name}: {th}");
    }
    let run = std::fs::read_to_string(out_dir.join("intune-reset-run.1")).unwrap();
    for flag in [r"\-\-resume", r"\-\-tenants", r"\-\-simulate"] {
        assert!(run.contains(flag), "intune-reset-run.1: no {flag}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wrote 10 man pages"), "{stderr}");
}

#[test]
fn completions_man_without_out_prints_the_tools_page() {
    let out = intune_reset().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    let th = first_request(&page).unwrap_or_default();
    assert!(th.starts_with(".TH intune-reset 1 "), "{th}");
    // Each command's page is named, and the exit codes keep --help's layout.
    assert!(page.contains(r"intune\-reset\-run(1)"), "{page}");
    assert!(page.contains(".SH EXTRA\n.nf\nExit codes:\n"), "{page}");
}

/// A page's first request after roff's apostrophe preamble (`.ie`/`.el` defining the
/// string `Aq`): its `.TH` title line.
fn first_request(page: &str) -> Option<&str> {
    page.lines()
        .find(|l| !(l.starts_with(".ie ") || l.starts_with(".el ")))
}
