"""Benchmark: a full scan of a large company on the local fakes (run by hand, never as a timed
unit test):

    .venv/bin/python bench/bench_scale.py --scale 100 [--scale 10 ...] [--latency-ms 50]
                                          [--out bench/results/scale.md]

The estate at ``--scale 1`` (full size): GitHub 3000 repositories (300 members, an alert per 20
repositories, a merged pull request per 10), Okta 20,000 users each with one or two factors (plus
the demo's policies), Datadog 5000 monitors. ``--scale N`` divides every count by N. AWS is left
out: ``bench/bench_aws.py`` measures it (moto is the limiting factor, not attest).

1. A server process builds the three worlds programmatically and serves them with the fakes
   (``attest.demo.http.LocalServer``), each answer delayed by ``--latency-ms``. The fakes send
   their rate-limit headers: GitHub's 5000 calls an hour, Okta's 600 calls a minute (the limit
   of ``/api/v1/users*`` on most Workforce Identity orgs), Datadog's 1000 per 10 s.
2. ``attest scan --config CONFIG`` (all three sources, the whole catalog) runs as a subprocess
   under ``/usr/bin/time -v``: wall time and the scan process's peak RSS. Per-source wall time
   comes from the bundle's scan.log, call counts from the fakes' request logs.
3. Figures, machine and versions go to ``--out``; the exit code is 1 if a target is missed
   (targets apply to ``--scale 1`` only; smaller runs are reported without a verdict).

Targets (issue 9, 2-core machine, full size): peak RSS < 300 MB. Wall time is reported; at full
size it is bounded below by Okta's rate limit (20,000 factor reads at ``okta.rate_limit_share``
of 600 a minute), not by attest.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path

import bench_aws   # beside this file: python puts bench/ first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FULL = {"github repositories": 3000, "github members": 300, "okta users": 20000,
        "datadog monitors": 5000}
TARGET_RSS_MB = 300.0
OKTA_RATE_LIMIT = 600          # calls a minute, X-Rate-Limit-Limit
GH_TOKEN = "bench-gh-token"


def sizes(scale: int) -> dict[str, int]:
    return {k: max(1, v // scale) for k, v in FULL.items()}


# --- the worlds (server process) ---------------------------------------------------------------

def github_world(n: dict[str, int], now: datetime):
    from collectors.github.demo.world import (OWNER, Alert, Member, Protection, Pull, Repo,
                                              Review, World)
    repos = []
    for i in range(n["github repositories"]):
        kind = i % 4
        repos.append(Repo(f"service-{i:05d}", private=i % 7 != 0,
                          protection=Protection() if kind in (0, 1) else
                          Protection(allow_force_pushes=True, status_checks=None) if kind == 2 else None,
                          security_updates=i % 5 != 0, secret_scanning=i % 9 != 0,
                          archived=i % 50 == 49))
    members = [Member(f"dev-{i:05d}", two_factor=i % 100 != 0) for i in range(n["github members"])]
    alerts = [Alert(i + 1, repos[i * 20].name, ("low", "medium", "high", "critical")[i % 4],
                    now - timedelta(days=i % 60)) for i in range(len(repos) // 20)]
    day = timedelta(days=1)
    pulls = [Pull(repos[i * 10].name, 100 + i, members[i % len(members)].login, now - (i % 25 + 1) * day,
                  [Review(members[(i + 1) % len(members)].login, now - (i % 25 + 1) * day - timedelta(hours=1))]
                  if i % 8 else []) for i in range(len(repos) // 10)]
    return World(org="bigco", now=now, tokens={GH_TOKEN: OWNER}, members=members, repos=repos,
                 alerts=alerts, pulls=pulls)


def okta_world(n: dict[str, int], now: datetime, rate_limit: int = OKTA_RATE_LIMIT):
    from collectors.okta.demo import OktaWorld, READ_SCOPES, factor, seed_acme, user
    world = OktaWorld(rate_limit=rate_limit)
    seed_acme(world, now)                 # the demo's policies (and its 8 users)
    kinds = ("push", "webauthn", "token:software:totp", "sms", "question")
    for i in range(n["okta users"]):
        facs = [factor(kinds[i % 5])] + ([factor(kinds[(i + 2) % 5])] if i % 3 else [])
        world.add_user(user(f"user{i:05d}@bigco.example", first="User", last=f"N{i}",
                            activated=now - timedelta(days=30 + i % 900),
                            last_login=now - timedelta(days=i % 120)), facs)
    world.tokens["bench-okta-token"] = READ_SCOPES
    return world


def datadog_world(n: dict[str, int], now: datetime):
    from collectors.datadog.demo import DatadogWorld, acme_world, monitor
    base = acme_world(now)
    monitors = [monitor(50000000 + i, f"[prod] service-{i:05d} error rate",
                        query=f"sum(last_5m):sum:trace.http.request.errors{{service:svc-{i}}}.as_count() > 10",
                        message=f"Errors on svc-{i}. @pagerduty-team-{i % 40}" if i % 25 else "Check it.",
                        tags=[f"team:t{i % 40}", "env:prod"],
                        silenced={"*": None} if i % 200 == 7 else None)
                for i in range(n["datadog monitors"])]
    return DatadogWorld(api_key="bench-dd-api", app_key="bench-dd-app", monitors=monitors,
                        downtimes=base.downtimes, indexes=base.indexes)


def serve(scale: int, latency: float, okta_rate_limit: int) -> None:
    """Server mode: build and serve the worlds; print the URLs as one JSON line; when stdin
    closes, print the request counts of each fake as one JSON line and exit."""
    from attest.demo.http import LocalServer
    from collectors.datadog.demo import FakeDatadog
    from collectors.github.demo import FakeGithub
    from collectors.okta.demo import FakeOkta
    now = datetime.now(timezone.utc)
    n = sizes(scale)
    t0 = time.perf_counter()
    servers = {"github": LocalServer(FakeGithub(github_world(n, now)), latency=latency),
               "okta": LocalServer(FakeOkta(okta_world(n, now, okta_rate_limit)), latency=latency),
               "datadog": LocalServer(FakeDatadog(datadog_world(n, now)), latency=latency)}
    urls = {name: s.start() for name, s in servers.items()}
    print(json.dumps({"urls": urls, "sizes": n, "seed_s": round(time.perf_counter() - t0, 1)}),
          flush=True)
    sys.stdin.read()
    counts = {}
    for name, s in servers.items():
        statuses: dict[str, int] = {}
        for e in list(s.log.entries):
            statuses[str(e["status"])] = statuses.get(str(e["status"]), 0) + 1
        counts[name] = {"calls": len(s.log.entries), "statuses": statuses}
        s.stop()
    print(json.dumps(counts), flush=True)


# --- the measurement ---------------------------------------------------------------------------

def timed_scan(config: Path, env: dict[str, str]) -> dict[str, float]:
    """One ``attest scan`` under /usr/bin/time -v (see bench_aws.timed_scan), as named figures."""
    wall, rss_mb, cpu, code = bench_aws.timed_scan(config, env)
    return {"wall (s)": wall, "peak RSS (MB)": rss_mb, "CPU user+sys (s)": cpu, "exit code": code}


def scan_summary(out_dir: Path) -> dict:
    bundle = sorted(p for p in out_dir.iterdir() if p.is_dir() and not p.name.startswith("."))[-1]
    results = json.loads((bundle / "results.json").read_text())
    log_text = (bundle / "scan.log").read_text()
    per_source = {m.group(1): {"records": int(m.group(2)), "unknown": int(m.group(3)),
                               "wall (s)": float(m.group(4))}
                  for m in re.finditer(r"(\w+): (\d+) evidence records \((\d+) could not be read\) "
                                       r"in ([\d.]+) s", log_text)}
    waits = dict(re.findall(r"(\w+): waited (\d+)s in total", log_text))
    statuses: dict[str, int] = {}
    for control in results["controls"]:
        statuses[control["status"]] = statuses.get(control["status"], 0) + 1
    evidence = list((bundle / "evidence").rglob("*.json"))
    return {"per_source": per_source, "waits": waits, "statuses": statuses,
            "controls": len(results["controls"]), "incomplete": results["scan"].get("incomplete", []),
            "evidence files": len(evidence),
            "evidence MB": sum(p.stat().st_size for p in evidence) / 1e6}


def run_one(scale: int, latency_ms: float, share: float | None, okta_rate_limit: int) -> dict:
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(scale),
                               "--latency-ms", str(latency_ms),
                               "--okta-rate-limit", str(okta_rate_limit)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        started = json.loads(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            out_dir = Path(tmp) / "evidence"
            config = Path(tmp) / "config.yaml"
            okta_extra = f"  rate_limit_share: {share}\n" if share is not None else ""
            config.write_text(
                f"output_dir: {out_dir}\n"
                f"github:\n  org: bigco\n  base_url: {started['urls']['github']}\n"
                f"  token: ${{ATTEST_BENCH_GH_TOKEN}}\n"
                f"okta:\n  org_url: {started['urls']['okta']}\n  token: ${{ATTEST_BENCH_OKTA_TOKEN}}\n"
                f"{okta_extra}"
                f"datadog:\n  host: {started['urls']['datadog']}\n  api_key: ${{ATTEST_BENCH_DD_API}}\n"
                f"  app_key: ${{ATTEST_BENCH_DD_APP}}\n", encoding="utf-8")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ATTEST_"))}
            env.update(ATTEST_BENCH_GH_TOKEN=GH_TOKEN, ATTEST_BENCH_OKTA_TOKEN="bench-okta-token",
                       ATTEST_BENCH_DD_API="bench-dd-api", ATTEST_BENCH_DD_APP="bench-dd-app")
            load_before = os.getloadavg()[0]
            figures = timed_scan(config, env)
            figures["load before / after"] = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
            summary = scan_summary(out_dir)
    finally:
        server.stdin.close()
        counts = json.loads(server.stdout.readline() or "{}")
        server.wait(timeout=60)
    return {"scale": scale, "okta rate limit": okta_rate_limit, "sizes": started["sizes"], "seed_s": started["seed_s"],
            "figures": figures, "summary": summary, "calls": counts}


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    names = ("attest", "okta", "datadog-api-client", "requests", "werkzeug", "pydantic")
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"cpu": f"{cpu}, nproc {os.cpu_count()}", "memory": f"{mem} MiB",
            "os": platform.platform(), "python": platform.python_version(), **versions}


def write_report(path: Path, runs: list[dict], argv: list[str], latency_ms: float,
                 share: float | None) -> None:
    lines = [
        "# Scale benchmark: a large company on the local fakes",
        "",
        f"Written by `bench/bench_scale.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "Commands: " + "; ".join(sorted({f"`.venv/bin/python bench/bench_scale.py {r['command']}`"
                                          for r in runs})),
        "",
        f"`attest scan --config CONFIG` (GitHub, Okta and Datadog; the whole catalog of the three) "
        f"as a subprocess under `/usr/bin/time -v` against the fakes in a separate process, every "
        f"answer delayed by {latency_ms:g} ms. Rate-limit headers as the fakes send them: GitHub "
        f"5000 calls/hour, Okta {OKTA_RATE_LIMIT} calls/minute unless the table says otherwise, Datadog 1000 calls/10 s. "
        f"okta.rate_limit_share: {share if share is not None else 'default (0.5)'}. "
        "AWS is not part of this run (see `bench/results/aws.md`).",
        "",
        "Full size (`--scale 1`): " + ", ".join(f"{k} {v:,}" for k, v in FULL.items())
        + "; `--scale N` divides each count by N.",
        "",
        "| scale | GitHub repos | Okta users | Datadog monitors | Okta limit (calls/min) | wall (s) "
        "| peak RSS (MB) | CPU (s) | calls GitHub / Okta / Datadog |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        s, f, c = r["sizes"], r["figures"], r["calls"]
        lines.append(f"| 1/{r['scale']} | {s['github repositories']:,} | {s['okta users']:,} | "
                     f"{s['datadog monitors']:,} | {r['okta rate limit']} | {f['wall (s)']:.1f} | {f['peak RSS (MB)']:.0f} | "
                     f"{f['CPU user+sys (s)']:.1f} | "
                     + " / ".join(str(c.get(k, {}).get("calls", "?")) for k in ("github", "okta", "datadog"))
                     + " |")
    lines += ["", "## Per source", ""]
    for r in runs:
        lines.append(f"### 1/{r['scale']}")
        lines.append("")
        lines.append("| source | wall (s) | evidence records | could not be read | calls (HTTP statuses) "
                     "| waited on rate limits (s, summed over concurrent reads) |")
        lines.append("|---|---|---|---|---|---|")
        for name in ("github", "okta", "datadog"):
            p = r["summary"]["per_source"].get(name, {})
            c = r["calls"].get(name, {})
            lines.append(f"| {name} | {p.get('wall (s)', '?')} | {p.get('records', '?')} | "
                         f"{p.get('unknown', '?')} | {c.get('calls', '?')} ({c.get('statuses', {})}) | "
                         f"{r['summary']['waits'].get(name, 0)} |")
        sm = r["summary"]
        lines += ["", f"- controls: {sm['controls']} {sm['statuses']}; exit code "
                  f"{r['figures']['exit code']}",
                  f"- evidence: {sm['evidence files']} files, {sm['evidence MB']:.1f} MB",
                  f"- evidence not read: {', '.join(sm['incomplete']) or 'none'}",
                  f"- load average (1 min) before / after: {r['figures']['load before / after']}",
                  f"- building the worlds took {r['seed_s']} s (not measured)", ""]
    lines += ["## Machine and versions", "", *[f"- {k}: {v}" for k, v in machine().items()], ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, action="append",
                    help="divide the estate by N (repeatable; default: 100 then 10)")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--okta-rate-limit", type=int, default=OKTA_RATE_LIMIT,
                    help="the Okta fake's X-Rate-Limit-Limit (calls a minute; default: Okta's 600). "
                         "A larger value models an org with a raised limit (DynamicScale, or a "
                         "rate-limit increase Okta granted)")
    ap.add_argument("--okta-share", type=float, default=None,
                    help="okta.rate_limit_share for the scan (default: the config default)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.md")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    ap.add_argument("--merge", type=Path, nargs="*", default=None,
                    help="write --out from the --json files of earlier runs (no scan)")
    ap.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve, args.latency_ms / 1000, args.okta_rate_limit)
        return 0
    runs = []
    if args.merge:
        runs = [r for p in args.merge for r in json.loads(p.read_text())]
        write_report(args.out, runs, sys.argv[1:], args.latency_ms, args.okta_share)
        print(f"results: {args.out}")
        return 0
    for scale in args.scale or [100, 10]:
        r = run_one(scale, args.latency_ms, args.okta_share, args.okta_rate_limit)
        r["command"] = " ".join(sys.argv[1:])
        runs.append(r)
        f = r["figures"]
        print(f"1/{scale}: wall {f['wall (s)']:.1f} s, peak RSS {f['peak RSS (MB)']:.0f} MB, "
              f"per source {json.dumps(r['summary']['per_source'])}, calls "
              f"{ {k: v['calls'] for k, v in r['calls'].items()} }", flush=True)
        write_report(args.out, runs, sys.argv[1:], args.latency_ms, args.okta_share)
        if args.json:
            args.json.write_text(json.dumps(runs, indent=1))
    missed = [r for r in runs if r["scale"] == 1 and r["figures"]["peak RSS (MB)"] > TARGET_RSS_MB]
    for r in runs:
        if r["scale"] == 1:
            print(f"{'MISS' if r in missed else 'ok  '} peak RSS {r['figures']['peak RSS (MB)']:.0f} MB"
                  f"   target <= {TARGET_RSS_MB:g}")
    print(f"results: {args.out}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
