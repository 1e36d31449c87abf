#!/usr/bin/env python3
"""Renders the side-by-side table of docs/BENCHMARKS.md from one lifecycle_bench JSON report.

    python3 bench/benchmarks_table.py /tmp/berth-bench.json [other-column-name]

Each row: the figure, the other endpoint's value, berth's, berth / other, issue #16's goal and
whether berth meets it. Latencies are medians (p99 where the goal is a p99); memory in MiB.
"""
import json
import sys


def mib(kb):
    return kb / 1024.0


def main():
    report = json.load(open(sys.argv[1]))
    other_name = sys.argv[2] if len(sys.argv) > 2 else next(k for k in report if k != "berth")
    b, o = report["berth"], report.get(other_name, {})

    def get(fig, key, stat):
        v = fig.get(key)
        if v is None:
            return None
        if isinstance(v, dict):
            if v.get("n", 0) == 0:
                return "fails" if v.get("errors") else None
            return v.get(stat)
        return v

    rows = []

    def row(label, key, goal, unit="ms", stat="median_ms", check=None):
        bv, ov = get(b, key, stat), get(o, key, stat)

        def fmt(v):
            if v is None:
                return "—"
            if isinstance(v, str):
                return v
            if unit == "MiB":
                return "%.1f MiB" % mib(v)
            if unit == "ms":
                return "%.2f ms" % v
            if unit == "x":
                return "%.2f" % v
            return str(v)

        ratio = "—"
        if isinstance(bv, (int, float)) and isinstance(ov, (int, float)) and ov:
            ratio = "%.2f" % (bv / ov)
        met = "—"
        if check is not None and isinstance(bv, (int, float)):
            met = "yes" if check(bv, ov) else "**no**"
        rows.append("| %s | %s | %s | %s | %s | %s |" % (label, fmt(ov), fmt(bv), ratio, goal, met))

    def ratio_at_most(limit):
        return lambda bv, ov: isinstance(ov, (int, float)) and ov > 0 and bv / ov <= limit

    def at_most(limit):
        return lambda bv, ov: bv <= limit

    row("daemon RSS, fresh, idle", "daemon_idle_fresh_rss_kb", "≤ 15 MiB", "MiB",
        check=lambda bv, ov: mib(bv) <= 15)
    row("daemon PSS, fresh, idle", "daemon_idle_fresh_pss_kb", "", "MiB")
    row("daemon USS (private), fresh, idle", "daemon_idle_fresh_uss_kb", "", "MiB")
    row("daemon RSS with 10 pods", "daemon_with_10_pods_rss_kb", "≤ 20 MiB", "MiB",
        check=lambda bv, ov: mib(bv) <= 20)
    row("daemon USS with 10 pods", "daemon_with_10_pods_uss_kb", "", "MiB")
    row("daemon RSS after removing the 10 pods", "daemon_after_removing_10_pods_rss_kb",
        "near idle", "MiB",
        check=lambda bv, ov: bv <= 1.1 * b["daemon_idle_fresh_rss_kb"])
    row("daemon RSS, 100 pods × 10 containers", "daemon_with_1000_containers_rss_kb", "≤ 40 MiB",
        "MiB", check=lambda bv, ov: mib(bv) <= 40)
    row("daemon USS, 100 pods × 10 containers", "daemon_with_1000_containers_uss_kb", "", "MiB")
    row("daemon RSS after removing the 1,000 containers",
        "daemon_after_removing_1000_containers_rss_kb", "", "MiB")
    row("daemon RSS before %s create/remove cycles" % b.get("cycles_per_endpoint", "the"),
        "cycles_start_rss_kb", "", "MiB")
    row("daemon RSS, peak during the cycles", "cycles_peak_rss_kb", "", "MiB")
    row("daemon RSS 10 s after the cycles", "cycles_end_after_10s_rss_kb", "", "MiB")
    row("end ÷ start of the cycles (RSS)", "cycles_end_after_10s_over_start_rss",
        "≤ 1.10", "x", check=at_most(1.10))
    row("monitor PSS per container (conmon / shim), 1,000 containers",
        "daemon_with_1000_containers_monitor_pss_kb_per_container", "≤ 0.5 MiB", "MiB",
        check=lambda bv, ov: mib(bv) <= 0.5)
    row("monitor RSS per monitor process", "daemon_with_1000_containers_monitor_rss_kb_per_process",
        "", "MiB")
    row("RunPodSandbox", "RunPodSandbox", "≤ 0.5×", check=ratio_at_most(0.5))
    row("CreateContainer + StartContainer", "CreateContainer+StartContainer", "≤ 0.7×",
        check=ratio_at_most(0.7))
    # berth runs conmon and `runc create` in CreateContainer; containerd starts its shim and
    # runc in StartContainer, so only the sum compares like with like.
    row("CreateContainer alone", "CreateContainer", "")
    row("berth's create + start ÷ bare runc create + start, same bundle",
        "ratio_container_start_over_runc_median", "≤ 1.1", "x", check=at_most(1.1))
    row("StopContainer + RemoveContainer", "StopContainer+RemoveContainer", "≤ 0.5×",
        check=ratio_at_most(0.5))
    row("StopPodSandbox + RemovePodSandbox", "StopPodSandbox+RemovePodSandbox", "≤ 0.5×",
        check=ratio_at_most(0.5))
    row("ListContainers, 1,000 containers, p99 (typed C++ client)", "ListContainers_1000",
        "p99 ≤ 2 ms", stat="p99_ms", check=at_most(2))
    row("ListContainers, 1,000 containers, answer bytes only, p99",
        "ListContainers_1000_answer_bytes_only", "", stat="p99_ms")
    row("ListContainerStats, 1,000 running containers", "ListContainerStats_1000", "≤ 30 ms",
        check=at_most(30))
    row("ListPodSandboxStats, 100 pods", "ListPodSandboxStats_100_pods", "≤ 15 ms",
        check=at_most(15))
    row("100 pods with a container each, started concurrently (wall)",
        "concurrent_100_pods_with_a_container_wall_ms", "≤ 0.5×, no errors",
        check=lambda bv, ov: ratio_at_most(0.5)(bv, ov) and b.get("concurrent_100_errors", 1) == 0)
    row("image pull + unpack, 4 layers, loopback registry", "image_pull_unpack_4_layers", "")
    row("one create/remove cycle (pod, container, start, stop, remove), 4 loops per endpoint",
        "cycle_pod_container_create_remove", "")
    for name, fig in ((other_name, o), ("berth", b)):
        cyc = fig.get("cycle_pod_container_create_remove") or {}
        if cyc.get("errors"):
            rows.append("| %s's failed cycles | %d of %d: %s | | | | |" % (
                name, cyc["errors"], cyc["errors"] + cyc.get("n", 0), cyc.get("first_error", "")))
    print("| figure | %s | berth | berth ÷ %s | goal (#16) | met |" % (other_name, other_name))
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
