//! What the readers tell the user about a file (an assumed encoding, a missing header,
//! skipped title rows), said once per process: `run` reads its job more than once (to
//! count it, to seed a rehearsal's tenant, to send), and the same sentence three times
//! would read as three problems.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

fn said() -> &'static Mutex<HashSet<String>> {
    static SAID: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    SAID.get_or_init(|| Mutex::new(HashSet::new()))
}

/// `true` the first time `message` is offered.
fn first_time(message: &str) -> bool {
    let mut said = said()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    said.insert(message.to_owned())
}

pub fn warn(message: String) {
    if first_time(&message) {
        tracing::warn!("{message}");
    }
}

pub fn info(message: String) {
    if first_time(&message) {
        tracing::info!("{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_said_once() {
        let message = "notice test: said once".to_string();
        assert!(first_time(&message));
        assert!(!first_time(&message));
        assert!(first_time("notice test: another"));
    }
}
