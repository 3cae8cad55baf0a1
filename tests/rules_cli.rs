//! `intune-reset rules`: what people and machines read.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::common::intune_reset;

#[test]
fn rules_table_snapshot() {
    let out = intune_reset().arg("rules").output().unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!("rules_table", String::from_utf8(out.stdout).unwrap());
}

#[test]
fn rules_json_lists_every_rule_with_a_source() {
    let out = intune_reset()
        .args(["rules", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rules: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let every: usize = intune_reset::rules::ALL_RULES.iter().map(|t| t.len()).sum();
    assert_eq!(rules.len(), every);
    let tables: std::collections::BTreeSet<&str> =
        rules.iter().map(|r| r["for"].as_str().unwrap()).collect();
    assert_eq!(
        tables.into_iter().collect::<Vec<_>>(),
        ["passcode", "remote-lock", "rotate-bitlocker-keys"]
    );
    for rule in &rules {
        assert!(rule["link"].as_str().unwrap().starts_with("https://"));
        assert!(rule["source"].is_string());
        assert!(rule["verdict"].is_string());
    }
    let aosp = rules
        .iter()
        .find(|r| r["platform"] == "android_aosp")
        .unwrap();
    assert_eq!(aosp["source"], "later_docs");
    assert_eq!(aosp["verdict"], "eligible");
}

/// Issue 9: every object of `rules --format json` carried `platform`, `versions` and
/// `action` twice. `serde_json::Value` keeps one of two equal keys without a word, so
/// the output is read with [`Strict`], which refuses a repeated key at any depth.
#[test]
fn regression_9_rules_json_has_each_key_once() {
    assert!(
        serde_json::from_str::<Strict>(r#"{"a": 1, "a": 2}"#).is_err(),
        "the checker itself must refuse a repeated key"
    );
    let out = intune_reset()
        .args(["rules", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rules: Vec<Strict> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("rules --format json repeats a key: {e}"));
    let expected = [
        "action",
        "detail",
        "for",
        "link",
        "platform",
        "reason",
        "recognised_by",
        "source",
        "verdict",
        "versions",
    ];
    for rule in &rules {
        let Strict::Object(fields) = rule else {
            panic!("each rule is an object");
        };
        assert_eq!(
            fields.keys().map(String::as_str).collect::<Vec<_>>(),
            expected
        );
    }
}

/// A JSON value whose objects, at any depth, refuse a key they already hold.
enum Strict {
    Scalar,
    /// Its items are checked as they are read; the test needs only the objects.
    Array,
    Object(BTreeMap<String, Strict>),
}

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value without repeated object keys")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict::Scalar)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict::Scalar)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict::Scalar)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict::Scalar)
    }

    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict::Scalar)
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict::Scalar)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(Strict::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut fields = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let value = map.next_value()?;
            fields.insert(key, value);
        }
        Ok(Strict::Object(fields))
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let out = intune_reset().arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!("help", text);
}

#[test]
fn regression_21_wipe_retire_and_delete_are_refused_saying_why_and_other_words_list_the_actions() {
    for (word, says) in [
        ("wipe", "'wipe' is not offered: wipe destroys"),
        ("retire", "'retire' is not offered: retire destroys"),
        ("delete", "'delete' is not offered: delete destroys"),
        (
            "lost-mode",
            "'lost-mode' is not an action this tool offers: remove-passcode, reset-passcode, reset-pin, auto, remote-lock, rotate-bitlocker-keys or revoke-sessions",
        ),
    ] {
        for command in ["run", "plan"] {
            let out = intune_reset()
                .args([command, "job.csv", "--action", word])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {word}: {stderr}");
            assert!(stderr.contains(says), "{command} {word}: {stderr}");
        }
    }
}
