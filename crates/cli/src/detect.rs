//! Where a node learns its fault domain: `--domain JSON` or `--fault-domain-detect PATH`.

use std::path::Path;
use std::process::Command;

use domain::FaultDomain;
use domain::fault_domain::DETECT_OUTPUT_EXAMPLE;

/// Reads the fault domain from the flag that was given.
pub fn fault_domain(domain: Option<&str>, script: Option<&Path>) -> Result<FaultDomain, String> {
    match (domain, script) {
        (Some(json), None) => FaultDomain::parse(json).map_err(|e| format!("--domain: {e}")),
        (None, Some(path)) => run_detect_script(path),
        (Some(_), Some(_)) => Err("give either --domain or --fault-domain-detect, not both".into()),
        (None, None) => Err(format!(
            "no fault domain: give --fault-domain-detect PATH (a script that prints {DETECT_OUTPUT_EXAMPLE}) or --domain JSON"
        )),
    }
}

/// Runs a detect script once and parses what it prints.
pub fn run_detect_script(path: &Path) -> Result<FaultDomain, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("fault domain detect script {shown} cannot be read: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!(
                "fault domain detect script {shown} is not an executable file; make it executable (chmod +x {shown})"
            ));
        }
    }
    let output = Command::new(path)
        .output()
        .map_err(|e| format!("fault domain detect script {shown} could not be run: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "fault domain detect script {shown} failed ({}); its stderr:\n{}",
            output.status,
            stderr.trim_end()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    FaultDomain::parse(stdout.trim()).map_err(|e| {
        format!("fault domain detect script {shown} printed something drover cannot use: {e}")
    })
}
