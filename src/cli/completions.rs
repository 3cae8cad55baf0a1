//! `completions SHELL` and `man`: the shell completion scripts and the roff man pages,
//! generated from the clap definitions at run time, so that `--help` stays their one
//! source (`clap_complete`, `clap_mangen`).

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::error::{CommandError, EXIT_OK};

/// The binary's name, as shells complete it and man pages are named.
const BIN: &str = "intune-reset";

pub(super) const COMPLETIONS_HELP: &str = "\
Install (then open a new shell):
  bash (mkdir -p ~/.local/share/bash-completion/completions first):
    intune-reset completions bash > ~/.local/share/bash-completion/completions/intune-reset
  zsh (with fpath+=(~/.zfunc) before compinit in ~/.zshrc; mkdir -p ~/.zfunc first):
    intune-reset completions zsh > ~/.zfunc/_intune-reset
  fish:
    intune-reset completions fish > ~/.config/fish/completions/intune-reset.fish
  PowerShell (the script's `using` lines must come first: run it, do not append it):
    Add-Content $PROFILE 'intune-reset completions powershell | Out-String | Invoke-Expression'
  elvish:
    intune-reset completions elvish >> ~/.config/elvish/rc.elv";

pub(super) const MAN_HELP: &str = "\
Install (then `man intune-reset`, `man intune-reset-run`, ...):
  intune-reset man --out ~/.local/share/man/man1";

#[derive(Debug, clap::Args)]
pub(super) struct CompletionsArgs {
    /// The shell whose completion script to print.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Debug, clap::Args)]
pub(super) struct ManArgs {
    /// Write every page into this directory, created if missing: intune-reset.1 and one
    /// per command (intune-reset-run.1, ...) [default: the tool's page on stdout]
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    out: Option<PathBuf>,
}

/// `completions SHELL`: the script on stdout.
pub(super) fn completions(args: &CompletionsArgs) -> u8 {
    super::print_stdout(&script(args.shell))
}

/// `man`: the tool's page on stdout, or every page written into `--out`.
pub(super) fn man(args: &ManArgs) -> Result<u8, CommandError> {
    let pages = pages()?;
    let Some(dir) = &args.out else {
        return Ok(pages
            .first()
            .map_or(EXIT_OK, |(_, roff)| super::print_stdout(roff)));
    };
    let cannot = |path: &Path, source| CommandError::Write {
        what: "man page",
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot(dir, e))?;
    let mut names = Vec::with_capacity(pages.len());
    for (name, roff) in &pages {
        let path = dir.join(name);
        std::fs::write(&path, roff).map_err(|e| cannot(&path, e))?;
        names.push(name.as_str());
    }
    super::output::text(
        "man pages written",
        &format!(
            "wrote {} man pages to {}: {}\n",
            names.len(),
            dir.display(),
            names.join(", ")
        ),
    );
    Ok(EXIT_OK)
}

/// The completion script of `shell`, for every command and flag `--help` shows.
fn script(shell: Shell) -> Vec<u8> {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut out);
    match shell {
        Shell::Bash => bash_states_agreed(&out),
        _ => out,
    }
}

/// clap_complete 4.6.12's bash script spells a command's state two ways when the
/// binary's name has a hyphen: `intune__reset__subcmd__run` where it reads the words,
/// `intune__subcmd__reset__subcmd__run` in the arms that complete, so no command's
/// flags ever complete (clap-rs/clap#6421). The arms take the words' spelling; once
/// clap_complete agrees with itself this finds nothing to change.
fn bash_states_agreed(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace("intune__subcmd__reset__subcmd__", "intune__reset__subcmd__")
        .into_bytes()
}

/// Every man page as (file name, roff): the tool's first, then one per command
/// (`help` has none: `man intune-reset-run` is its page).
fn pages() -> Result<Vec<(String, Vec<u8>)>, CommandError> {
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    // Gives each command its page's name (`intune-reset-run`) and usage line.
    cmd.build();
    let mut pages = Vec::new();
    add_pages(&cmd, &mut pages)?;
    Ok(pages)
}

fn add_pages(cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> Result<(), CommandError> {
    // The text after the options, as `--help` lays it out (clap_mangen would fill its
    // columns into one paragraph).
    let after_help = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(ToString::to_string);
    let bare = cmd
        .clone()
        .after_help(None::<&str>)
        .after_long_help(None::<&str>);
    let man = clap_mangen::Man::new(bare)
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
        .manual("intune-reset manual");
    let name = man.get_filename();
    let mut roff = Vec::new();
    // Into memory: cannot fail short of memory; named as the page it would be.
    man.render(&mut roff)
        .map_err(|source| CommandError::Write {
            what: "man page",
            path: PathBuf::from(&name),
            source,
        })?;
    if let Some(text) = after_help {
        roff = with_section(roff, &text);
    }
    pages.push((name, roff));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        add_pages(sub, pages)?;
    }
    Ok(())
}

/// `page` with `text` as its EXTRA section, unfilled, before VERSION if it has one.
fn with_section(page: Vec<u8>, text: &str) -> Vec<u8> {
    use clap_mangen::roff::{Roff, roman};
    let mut section = Roff::new();
    section.control("SH", ["EXTRA"]).control("nf", []);
    for line in text.lines() {
        section.text([roman(line)]);
    }
    section.control("fi", []);
    // Rendered alone, the section starts with the preamble the page already has.
    let preamble = Roff::new().render();
    let section = section.render();
    let section = section.strip_prefix(&preamble).unwrap_or(&section);
    let mut page = String::from_utf8_lossy(&page).into_owned();
    match page.find(".SH VERSION\n") {
        Some(at) => page.insert_str(at, section),
        None => page.push_str(section),
    }
    page.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_commands_and_flags() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::PowerShell,
            Shell::Elvish,
        ] {
            let text = String::from_utf8(script(shell)).expect("scripts are UTF-8");
            for word in ["run", "status", "audit", "man", "resume", "tenants"] {
                assert!(text.contains(word), "{shell}: no {word}");
            }
        }
    }

    #[test]
    fn one_man_page_for_the_tool_and_one_per_command() {
        let pages = pages().expect("rendered in memory");
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"intune-reset.1"));
        for command in super::super::Cli::command().get_subcommands() {
            let name = format!("intune-reset-{}.1", command.get_name());
            assert!(names.contains(&name.as_str()), "{name} in {names:?}");
        }
        assert!(!names.contains(&"intune-reset-help.1"));
        for (name, roff) in &pages {
            // After roff's apostrophe preamble (`.ie`, `.el`), the title.
            let text = String::from_utf8_lossy(roff);
            let title = text.lines().nth(2).unwrap_or_default();
            assert!(title.starts_with(".TH intune-reset"), "{name}: {title}");
            assert_eq!(text.matches(".ie ").count(), 1, "{name}: one preamble");
        }
    }
}
