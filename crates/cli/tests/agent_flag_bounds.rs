//! `drover agent` refuses resource, attribute and fault-domain flags outside their bounds
//! (issue 9: `ports:[0-70000]` was accepted), exiting 2 with a message that names the flag,
//! the value and the allowed range, before it talks to any master.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{DROVER, TempDir, free_port, run_to_exit};

const DOMAIN: &str = r#"{"fault_domain":{"region":{"name":"local"},"zone":{"name":"local-a"}}}"#;

#[test]
fn out_of_range_agent_flags_exit_2_naming_the_flag_value_and_range() {
    let dir = TempDir::new("agent-flag-bounds");
    let long_zone = format!(
        r#"{{"fault_domain":{{"region":{{"name":"local"}},"zone":{{"name":"{}"}}}}}}"#,
        "z".repeat(200)
    );
    let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        (
            "ports above 65535",
            vec!["--resources".into(), "ports:[0-70000]".into()],
            vec![
                "--resources",
                "port 70000",
                "`[0-70000]`",
                "ports are 0 to 65535",
            ],
        ),
        (
            "cpus not a number",
            vec!["--resources".into(), "cpus:NaN".into()],
            vec![
                "--resources",
                "`cpus`",
                "from 0 to 1000000000000",
                "got `NaN`",
            ],
        ),
        (
            "mem negative",
            vec!["--resources".into(), "mem:-1".into()],
            vec![
                "--resources",
                "`mem`",
                "from 0 to 1000000000000",
                "got `-1`",
            ],
        ),
        (
            "resource twice",
            vec!["--resources".into(), "cpus:1;cpus:2".into()],
            vec!["--resources", "`cpus` is given twice"],
        ),
        (
            "attribute twice",
            vec!["--attributes".into(), "rack:r1;rack:r2".into()],
            vec!["--attributes", "`rack` is given twice"],
        ),
        (
            "attribute name too long",
            vec!["--attributes".into(), format!("{}:x", "n".repeat(129))],
            vec!["--attributes", "must be 1 to 128 bytes"],
        ),
        (
            "zone name too long",
            vec!["--domain".into(), long_zone],
            vec![
                "--domain",
                "fault_domain.zone.name",
                "longer than 128 bytes",
            ],
        ),
    ];
    for (case, flags, words) in cases {
        let mut cmd = Command::new(DROVER);
        cmd.arg("agent")
            .arg("--insecure")
            // Nothing listens there: the agent must stop before it talks to any master.
            .args(["--masters", &format!("127.0.0.1:{}", free_port())])
            .arg("--work-dir")
            .arg(dir.path().join(format!("work-{}", case.replace(' ', "-"))))
            .args(["--advertise-ip", "127.0.1.1", "--hostname", "bounds"]);
        if !flags.iter().any(|f| f == "--domain") {
            cmd.args(["--domain", DOMAIN]);
        }
        cmd.args(&flags);
        let (status, out, err) = run_to_exit(cmd, Duration::from_secs(60));
        let shown = format!("case {case}: exit {status}\n--- stdout\n{out}\n--- stderr\n{err}");
        assert_eq!(status.code(), Some(2), "{shown}");
        for word in words {
            assert!(err.contains(word), "missing `{word}`; {shown}");
        }
    }
}
