//! `intune-reset rules`: what people and machines read.

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
    assert_eq!(rules.len(), intune_reset::rules::RULES.len());
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

#[test]
fn help_documents_the_exit_codes() {
    let out = intune_reset().arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!("help", text);
}
