//! `tern cluster status` as text: one line per node (partitions held and led, bytes, moves in
//! flight), one per group with its leader's figures, and the progress of the replica moves;
//! `--watch` redraws it on a terminal with a progress bar, or prints one plain line per
//! interval otherwise (logs, scripts).

use crate::admin::client::AdminClient;
use crate::progress::size;
use anyhow::Result;
use hyper::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

const BAR: usize = 30;

/// Polls the status every `interval` and shows it until interrupted, or, with `until_done`,
/// until no replica move is left.
pub async fn watch(api: &AdminClient, interval: Duration, until_done: bool) -> Result<()> {
    let terminal = std::io::stdout().is_terminal();
    loop {
        let status: Value = api.call(Method::GET, "/v1/cluster/status", None).await?;
        let rebalance = &status["rebalance"];
        let mut out = std::io::stdout().lock();
        if terminal {
            // Home, clear, then the whole status with the bar under it.
            write!(
                out,
                "\x1b[H\x1b[2J{}\n{}\n",
                render(&status),
                bar(rebalance)
            )?;
        } else {
            writeln!(out, "{} {}", clock(), progress_line(rebalance))?;
        }
        out.flush()?;
        if until_done && rebalance["active"] != Value::Bool(true) {
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}

/// The status as text.
pub fn render(status: &Value) -> String {
    let empty = Vec::new();
    let members = status["members"].as_array().unwrap_or(&empty);
    let shares: BTreeMap<u64, &Value> = status["nodes"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter_map(|n| Some((n["id"].as_u64()?, n)))
        .collect();
    let mut out = format!(
        "node {} answering; {} partitions; ready: {}\n\n\
         NODE  ADDRESS                 REACHABLE  PARTITIONS  LEADS  BYTES       MOVES IN/OUT\n",
        status["node"], status["partitions"], status["ready"]
    );
    for m in members {
        let share = m["id"].as_u64().and_then(|id| shares.get(&id));
        let field = |key: &str| share.and_then(|s| s[key].as_u64()).unwrap_or(0);
        out.push_str(&format!(
            "{:<5} {:<23} {:<10} {:<11} {:<6} {:<11} {}/{}\n",
            m["id"].to_string(),
            m["addr"].as_str().unwrap_or(""),
            if m["reachable"].as_bool() == Some(true) {
                "yes"
            } else {
                "NO"
            },
            field("partitions"),
            field("leads"),
            size(field("bytes")),
            field("moves_in"),
            field("moves_out"),
        ));
    }
    out.push_str("\nGROUP  LEADER  VOTERS      LEARNERS    COMMIT      LAG\n");
    for (g, v) in leader_views(members) {
        out.push_str(&group_line(g, v));
    }
    out.push('\n');
    out.push_str(&progress_line(&status["rebalance"]));
    out.push('\n');
    out
}

/// For each group, the view of the member that says it leads it with the highest term (or any
/// member's view when none does).
fn leader_views(members: &[Value]) -> BTreeMap<u64, &Value> {
    let mut best: BTreeMap<u64, ((bool, u64), &Value)> = BTreeMap::new();
    for m in members {
        for view in m["groups"].as_array().into_iter().flatten() {
            let Some(g) = view["group"].as_u64() else {
                continue;
            };
            let rank = (
                view["leader"].is_u64() && view["leader"] == m["id"],
                view["term"].as_u64().unwrap_or(0),
            );
            if best.get(&g).is_none_or(|(r, _)| rank > *r) {
                best.insert(g, (rank, view));
            }
        }
    }
    best.into_iter().map(|(g, (_, v))| (g, v)).collect()
}

fn group_line(g: u64, v: &Value) -> String {
    let list = |key: &str| {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let last = v["last_log_index"].as_u64().unwrap_or(0);
    let lag = v["matched"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(id, idx)| format!("{id}:{}", last.saturating_sub(idx.as_u64().unwrap_or(0))))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let leader = v["leader"]
        .as_u64()
        .map_or("-".to_string(), |l| l.to_string());
    format!(
        "{:<6} {:<7} {:<11} {:<11} {:<11} {}\n",
        g,
        leader,
        list("voters"),
        list("learners"),
        v["applied"].to_string(),
        lag
    )
}

/// One line about the moves: "rebalance: 12/40 partition replicas moved, ...".
pub fn progress_line(r: &Value) -> String {
    if r["active"] != Value::Bool(true) {
        return "rebalance: none, every partition is where the placement wants it".into();
    }
    let n = |key: &str| r[key].as_u64().unwrap_or(0);
    let eta = r["eta_secs"]
        .as_u64()
        .map_or_else(|| "-".to_string(), duration);
    format!(
        "rebalance: {}/{} partition replicas moved, {} in flight, {} of {}, {}/s, ETA {eta}",
        n("moves_done"),
        n("moves_total"),
        n("moves_in_flight"),
        size(n("bytes_done")),
        size(n("bytes_total")),
        size(n("bytes_per_sec")),
    )
}

/// The progress line behind a bar of moved replicas.
fn bar(r: &Value) -> String {
    let done = r["moves_done"].as_u64().unwrap_or(0);
    let total = r["moves_total"].as_u64().unwrap_or(0);
    let filled = (done * BAR as u64)
        .checked_div(total)
        .map_or(0, |f| f.min(BAR as u64) as usize);
    format!(
        "[{}{}] {}",
        "#".repeat(filled),
        "-".repeat(BAR - filled),
        progress_line(r)
    )
}

/// 75 → "1m15s", 3700 → "1h01m40s".
fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60),
    }
}

/// The time of day (UTC) for plain progress lines.
fn clock() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}",
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_reads_as_a_sentence_and_a_bar() {
        let r = json!({
            "active": true, "moves_total": 40, "moves_done": 10, "moves_in_flight": 2,
            "bytes_total": 4u64 << 30, "bytes_done": 1u64 << 30, "bytes_per_sec": 35u64 << 20,
            "elapsed_secs": 30, "eta_secs": 80
        });
        assert_eq!(
            progress_line(&r),
            "rebalance: 10/40 partition replicas moved, 2 in flight, 1.0 GiB of 4.0 GiB, \
             35.0 MiB/s, ETA 1m20s"
        );
        assert!(bar(&r).starts_with("[#######-----------------------] rebalance: 10/40"));
        assert!(progress_line(&json!({"active": false})).starts_with("rebalance: none"));
    }

    #[test]
    fn nodes_show_their_share_and_groups_their_leaders_view() {
        let status = json!({
            "node": 1, "partitions": 2, "ready": true,
            "nodes": [{"id": 1, "partitions": 2, "leads": 2, "bytes": 2048,
                       "moves_in": 0, "moves_out": 1}],
            "rebalance": {"active": false},
            "members": [{"id": 1, "addr": "127.0.0.1:7000", "reachable": true, "groups": [
                {"group": 1, "leader": 1, "term": 3, "voters": [1], "learners": [2],
                 "applied": 9, "last_log_index": 9, "matched": {"1": 9, "2": 4}}
            ]}]
        });
        let text = render(&status);
        assert!(
            text.contains(
                "1     127.0.0.1:7000          yes        2           2      2.0 KiB     0/1"
            ),
            "{text}"
        );
        assert!(
            text.contains("1      1       1           2           9           1:0 2:5"),
            "{text}"
        );
    }
}
