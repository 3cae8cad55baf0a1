//! Opening the system browser for `--auth browser`. The URL carries no secret (the
//! PKCE verifier stays in memory; only its hash travels), so it may sit in the
//! opener's arguments. The URL is always printed as well, for when nothing opens.

use std::process::{Command, Stdio};

/// Starts the platform's URL opener; true when it started.
pub fn open(url: &str) -> bool {
    let mut command = opener(url);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match command.spawn() {
        Ok(mut child) => {
            // Reaped in the background: the opener exits as soon as it has handed the
            // URL over.
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}

/// `rundll32 url.dll,FileProtocolHandler` rather than `cmd /c start`: cmd would read the
/// URL's `&` as a command separator.
#[cfg(windows)]
fn opener(url: &str) -> Command {
    let mut c = Command::new("rundll32");
    c.arg("url.dll,FileProtocolHandler").arg(url);
    c
}

#[cfg(target_os = "macos")]
fn opener(url: &str) -> Command {
    let mut c = Command::new("open");
    c.arg(url);
    c
}

#[cfg(all(unix, not(target_os = "macos")))]
fn opener(url: &str) -> Command {
    let mut c = Command::new("xdg-open");
    c.arg(url);
    c
}
