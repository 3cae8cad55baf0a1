//! The one sink for what the process writes to stderr besides its log events: the
//! summaries, the next steps, the errors, the sign-in instructions and the question.
//!
//! With `--log-format json` every line on stderr is one JSON object, so a log shipper
//! can take the whole stream: these lines take the shape of tracing-subscriber's JSON
//! events (`{"timestamp":..,"level":..,"fields":{"message":..,...}}`), with the
//! summary as a structured object and each next step's commands in a field.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use serde_json::{Map, Value, json};

/// `--log-format json` was asked for (set once, before anything is written).
static JSON: AtomicBool = AtomicBool::new(false);

pub(super) fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
    if on {
        // A panic's message would otherwise be the one plain line of a JSON log.
        std::panic::set_hook(Box::new(|info| {
            let place = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let what = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            error(&format!("the program stopped unexpectedly: {what}{place}"));
        }));
    }
}

pub(super) fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Whether the raw arguments ask for JSON logs: read before clap parses them, so that
/// a usage error is itself a JSON line.
pub(super) fn asks_for_json(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    let mut asked = false;
    let mut value_next = false;
    for arg in args {
        let arg = arg.to_string_lossy();
        if value_next {
            asked = arg == "json";
            value_next = false;
        } else if arg == "--log-format" {
            value_next = true;
        } else if let Some(value) = arg.strip_prefix("--log-format=") {
            asked = value == "json";
        } else if arg == "--" {
            break;
        }
    }
    asked
}

/// One JSON line in tracing-subscriber's shape; `fields` holds `message` first.
fn line(level: &str, message: &str, fields: Map<String, Value>) -> String {
    let mut all = Map::new();
    all.insert("message".into(), Value::String(message.to_owned()));
    all.extend(fields);
    let event = json!({
        "timestamp": humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
        "level": level,
        "fields": all,
    });
    format!("{event}\n")
}

/// One write per line: whole lines, never interleaved with a log event's.
fn write(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// An error that ends the command: `intune-reset: ...`, or one ERROR object.
pub(super) fn error(message: &str) {
    if json() {
        write(&line("ERROR", message, Map::new()));
    } else {
        write(&format!("intune-reset: {message}\n"));
    }
}

/// A line someone must read whatever the log level (the sign-in's instruction).
pub(super) fn say(text: &str) {
    if json() {
        write(&line("WARN", text, Map::new()));
    } else {
        write(&format!("{text}\n"));
    }
}

/// A question on the terminal: its lines, then the question without a newline (as
/// JSON, every line of it one object, the question too).
pub(super) fn ask(text: &str) {
    if !json() {
        write(text);
        return;
    }
    let mut out = String::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        out.push_str(&line("INFO", l.trim_end(), Map::new()));
    }
    write(&out);
}

/// A command's summary: its text, or one INFO object with the summary's fields under
/// `summary`, followed by one object per next step.
pub(super) fn summary(command: &str, text: &str, value: &impl serde::Serialize, next: &str) {
    if !json() {
        write(text);
        return;
    }
    let mut fields = Map::new();
    fields.insert("command".into(), Value::String(command.to_owned()));
    fields.insert(
        "summary".into(),
        serde_json::to_value(value).unwrap_or(Value::Null),
    );
    let mut out = line("INFO", "summary", fields);
    for step in next_steps(next) {
        let mut fields = Map::new();
        fields.insert("step".into(), Value::String(step.text));
        fields.insert("commands".into(), json!(step.commands));
        out.push_str(&line("INFO", "next step", fields));
    }
    write(&out);
}

/// Plain text (the simulator's summary): as it is, or one INFO object holding it.
pub(super) fn text(message: &str, text: &str) {
    if json() {
        let mut fields = Map::new();
        fields.insert("text".into(), Value::String(text.to_owned()));
        write(&line("INFO", message, fields));
    } else {
        write(text);
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Step {
    text: String,
    commands: Vec<String>,
}

/// The next steps' text taken apart: each `  - ` item is a step; its lines indented by
/// six spaces that begin with `intune-reset ` are the commands, the rest its words.
fn next_steps(text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for l in text.lines() {
        if let Some(first) = l.strip_prefix("  - ") {
            steps.push(Step {
                text: first.trim().to_owned(),
                commands: Vec::new(),
            });
            continue;
        }
        let Some(step) = steps.last_mut() else {
            continue;
        };
        let trimmed = l.trim();
        if trimmed.starts_with("intune-reset ") {
            step.commands.push(trimmed.to_owned());
        } else if !trimmed.is_empty() {
            step.text.push(' ');
            step.text.push_str(trimmed);
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_next_step_keeps_its_words_and_its_commands_apart() {
        let text = "next steps:\n  - 2 resets are queued. Follow them with\n      intune-reset status r.csv --wait 30m\n  - 1 device was not reset: finish it with\n      intune-reset run a.csv --resume --report r.csv (and the same flags)\n    or read the report as a job:\n      intune-reset plan r.csv\n";
        assert_eq!(
            next_steps(text),
            vec![
                Step {
                    text: "2 resets are queued. Follow them with".into(),
                    commands: vec!["intune-reset status r.csv --wait 30m".into()],
                },
                Step {
                    text: "1 device was not reset: finish it with or read the report as a job:"
                        .into(),
                    commands: vec![
                        "intune-reset run a.csv --resume --report r.csv (and the same flags)"
                            .into(),
                        "intune-reset plan r.csv".into()
                    ],
                },
            ]
        );
        assert!(next_steps("").is_empty());
    }

    #[test]
    fn json_logs_are_asked_for_in_either_spelling() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert!(asks_for_json(args(&["x", "run", "--log-format", "json"])));
        assert!(asks_for_json(args(&["x", "--log-format=json", "plan"])));
        assert!(!asks_for_json(args(&["x", "--log-format", "text"])));
        assert!(!asks_for_json(args(&[
            "x",
            "run",
            "--",
            "--log-format=json"
        ])));
    }

    #[test]
    fn a_line_has_the_shape_of_a_log_event() {
        let l = line("ERROR", "no", Map::new());
        assert!(l.ends_with('\n') && !l.trim_end().contains('\n'));
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["fields"]["message"], "no");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
