//! `drover plan`: where would an app's instances go on this inventory, and why not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use client::{Plan, PlannedInstance};
use comfy_table::{Table, presets::NOTHING};
use domain::inventory::Inventory;
use domain::{AppDefinition, PlacementResult, Snapshot, place};

/// Arguments of `drover plan`.
#[derive(Args)]
#[command(after_help = "\
The inventory is JSON:
  {\"local_region\": \"local\",
   \"agents\": [{\"id\": \"a1\", \"hostname\": \"a1.example\", \"ip\": \"10.0.0.1\",
               \"domain\": {\"fault_domain\": {\"region\": {\"name\": \"local\"}, \"zone\": {\"name\": \"local-a\"}}},
               \"resources\": {\"cpus\": 4, \"mem\": 8192, \"disk\": 0, \"ports\": \"[31000-32000]\"},
               \"attributes\": {\"rack\": \"r1\"}}],
   \"instances\": [{\"app_id\": \"/web\", \"agent_id\": \"a1\"}]}
`resources` are what each agent has free; `instances` are running instances that count for
the app's constraints. Without --local-region or \"local_region\", the first agent's region
is the local one.

Exit codes: 0 the plan was made (even if some instances cannot be placed);
2 the app or the inventory is invalid or unreadable.

Examples:
  drover plan --nodes examples/nodes/seed-3-regions.json examples/apps/balanced-zones.json
  drover plan --nodes examples/nodes/seed-3-regions.json --local-region aws-us-east2 examples/apps/hostname-unique.json
  drover plan --nodes examples/nodes/seed-3-regions.json --json examples/apps/remote-region.json")]
pub struct PlanArgs {
    /// Node inventory (JSON): agents with fault domains, free resources and attributes.
    #[arg(long, value_name = "NODES.json")]
    nodes: PathBuf,
    /// The masters' region; apps without an @region constraint go only there.
    #[arg(long, value_name = "REGION")]
    local_region: Option<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
    /// Marathon app definition (JSON).
    #[arg(value_name = "APP.json")]
    app: PathBuf,
}

/// Where the local region came from, said in the output.
enum RegionSource {
    Flag,
    File,
    FirstAgent,
}

fn read(path: &Path, what: &str) -> Result<String, ExitCode> {
    crate::input::read_text(path, what, crate::input::MAX_OTHER_FILE).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// Runs `drover plan`.
pub fn run(args: &PlanArgs) -> ExitCode {
    match plan(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

fn plan(args: &PlanArgs) -> Result<(), ExitCode> {
    let inventory_text = read(&args.nodes, "inventory")?;
    let inventory = Inventory::parse(&inventory_text).map_err(|e| {
        eprintln!("error: inventory {} is not valid {e}", args.nodes.display());
        eprintln!("       see `drover plan --help` for the inventory format");
        ExitCode::from(2)
    })?;
    let app_text = read(&args.app, "app definition")?;
    let app = AppDefinition::from_json_str(&app_text).map_err(|errors| {
        eprintln!(
            "error: {} is not a valid app definition:",
            args.app.display()
        );
        let body = serde_json::to_string_pretty(&errors.to_json()).unwrap_or_default();
        println!("{body}");
        ExitCode::from(2)
    })?;

    let (local_region, source) = match (&args.local_region, &inventory.local_region) {
        (Some(r), _) => (r.clone(), RegionSource::Flag),
        (None, Some(r)) => (r.clone(), RegionSource::File),
        (None, None) => match inventory.agents.first().and_then(|a| a.region()) {
            Some(r) => (r.to_string(), RegionSource::FirstAgent),
            None => (String::new(), RegionSource::FirstAgent),
        },
    };
    let existing = inventory.existing(&app.id);
    let missing = app.instances.saturating_sub(existing.len() as u32);
    let result = place(
        &app,
        missing,
        &Snapshot {
            local_region: &local_region,
            agents: &inventory.agents,
            existing: &existing,
        },
    );
    if args.json {
        print_json(&inventory, &local_region, &result);
    } else {
        print_human(
            &app,
            &inventory,
            &local_region,
            &source,
            existing.len(),
            &result,
        );
    }
    Ok(())
}

fn print_json(inventory: &Inventory, local_region: &str, result: &PlacementResult) {
    let placements = result
        .placements
        .iter()
        .map(|p| {
            let a = &inventory.agents[p.agent_index];
            PlannedInstance {
                agent_id: a.id.to_string(),
                hostname: a.hostname.clone(),
                region: a.region().unwrap_or(local_region).to_string(),
                zone: a.zone().map(str::to_string),
                ports: p.ports.clone(),
            }
        })
        .collect();
    // `/v1/plan`'s answer without `running`: an inventory has no running count to report.
    let out = Plan {
        local_region: local_region.to_string(),
        running: None,
        placements,
        unplaced: result.unplaced,
        reasons: result.reasons.clone(),
    };
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}

fn print_human(
    app: &AppDefinition,
    inventory: &Inventory,
    local_region: &str,
    source: &RegionSource,
    running: usize,
    result: &PlacementResult,
) {
    let said = match source {
        RegionSource::Flag => "from --local-region",
        RegionSource::File => "from the inventory's local_region",
        RegionSource::FirstAgent => {
            "the first agent's region; pass --local-region to choose another"
        }
    };
    println!("Local region: {local_region} ({said})");
    let target = app.region().unwrap_or(local_region);
    let wanted = result.placements.len() as u32 + result.unplaced;
    println!(
        "App {}: {} instances wanted, {} already running, {} to place in region {}",
        app.id, app.instances, running, wanted, target
    );
    if inventory.agents.is_empty() {
        println!("The inventory has no agents.");
    }

    // Instances per (region, zone, host), in a stable order.
    let mut rows: BTreeMap<(String, String, String), (usize, Vec<u64>)> = BTreeMap::new();
    for p in &result.placements {
        let a = &inventory.agents[p.agent_index];
        let key = (
            a.region().unwrap_or(local_region).to_string(),
            a.zone().unwrap_or("N/A").to_string(),
            a.hostname.clone(),
        );
        let row = rows.entry(key).or_default();
        row.0 += 1;
        row.1.extend(&p.ports);
    }
    if !rows.is_empty() {
        println!();
        let mut table = Table::new();
        table.load_preset(NOTHING);
        table.set_header(["REGION", "ZONE", "HOST", "INSTANCES", "PORTS"]);
        for ((region, zone, host), (n, ports)) in &rows {
            let ports = if ports.is_empty() {
                "-".to_string()
            } else {
                ports
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            table.add_row([region.as_str(), zone, host, &n.to_string(), &ports]);
        }
        println!("{table}");
        let mut per_zone: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for ((region, zone, _), (n, _)) in &rows {
            *per_zone.entry((region, zone)).or_default() += n;
        }
        let spread: Vec<String> = per_zone
            .iter()
            .map(|((r, z), n)| {
                if *r == local_region {
                    format!("{z}: {n}")
                } else {
                    format!("{z} ({r}): {n}")
                }
            })
            .collect();
        println!("\nBy zone: {}", spread.join(", "));
    }
    println!(
        "\n{} of {} instances placed.",
        result.placements.len(),
        wanted
    );
    if result.unplaced > 0 {
        println!(
            "{} instance{} cannot be placed. Agents ruled out, by reason:",
            result.unplaced,
            if result.unplaced == 1 { "" } else { "s" }
        );
        let mut reasons: Vec<(&String, &u32)> = result.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (reason, n) in reasons {
            println!(
                "  {n:>6} agent{}  {reason}",
                if *n == 1 { " " } else { "s" }
            );
        }
    }
}
