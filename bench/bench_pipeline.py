"""Benchmarks for attest's speed and memory targets (run by hand or in a scheduled job, never as
timed unit tests):

    .venv/bin/python bench/bench_pipeline.py [--nights 30] [--repos 1000]

1. A month of nightly scans of the demo company (all four sources + manual evidence): time per
   scan, then `verify` over the folder and the auditor export of the month.
2. A large GitHub organization (``--repos``) read through the local fake: time and request count
   (the branch-protection/ruleset reads must stay at a handful of GraphQL calls).
Peak memory is the process's max RSS. Each target below is checked; the exit code is 1 if one is
missed. The targets are for the 2-core machines this project runs on.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {
    "median scan (s)": 10.0,
    "verify, whole folder (s)": 10.0,
    "export of the period (s)": 60.0,
    "large org collection (s)": 60.0,
    # one GraphQL page per 100 repositories, plus org rulesets and the merged-PR search
    "large org GraphQL/ruleset calls": None,
    "peak RSS (MiB)": 1024.0,
}


def nightly(nights: int, out: Path) -> dict[str, float]:
    from attest.config import load_config
    from attest.demo import start_demo
    from collectors.manual.demo import seed_manual
    from attest.manifest import verify
    from attest.scan import run_scan
    from reports.export import export_period

    start = datetime(2026, 10, 1, 2, 0, tzinfo=timezone.utc)
    demo = start_demo(start)
    try:
        seed_manual(out, start)
        config = load_config(None, overrides=demo.config)
        times = []
        for night in range(nights):
            t0 = time.perf_counter()
            run_scan(config, out_dir=out, now=start + timedelta(days=night), demo=True)
            times.append(time.perf_counter() - t0)
    finally:
        demo.stop()
    t0 = time.perf_counter()
    bundles, problems = verify(out)
    verify_s = time.perf_counter() - t0
    assert not problems and len(bundles) == nights, problems
    t0 = time.perf_counter()
    zip_path = export_period(out, start.date(), (start + timedelta(days=nights - 1)).date(),
                             out.parent / "export.zip")
    export_s = time.perf_counter() - t0
    print(f"nightly: {nights} scans, median {statistics.median(times):.2f} s, max {max(times):.2f} s; "
          f"verify {verify_s:.2f} s; export {export_s:.2f} s ({zip_path.stat().st_size / 1e6:.1f} MB)")
    return {"median scan (s)": statistics.median(times), "verify, whole folder (s)": verify_s,
            "export of the period (s)": export_s}


def large_org(repos: int) -> dict[str, float]:
    from collectors.github.demo import OWNER, World, serve
    from collectors.github.demo.world import Member, Protection, Repo
    from collectors.base import CollectContext
    from collectors.github.collector import GithubCollector

    now = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
    world = World(org="bigco", now=now, tokens={"bench-token": OWNER},
                  members=[Member(f"dev{i}") for i in range(300)],
                  repos=[Repo(f"service-{i:04d}", protection=Protection() if i % 2 else None)
                         for i in range(repos)])
    server = serve(world)
    import os
    os.environ["ATTEST_BENCH_GH_TOKEN"] = "bench-token"
    try:
        from attest.config import load_config
        cfg = load_config(None, overrides={"github": {"org": "bigco", "base_url": server.url,
                                                      "token": "${ATTEST_BENCH_GH_TOKEN}"}})
        t0 = time.perf_counter()
        records = list(GithubCollector(cfg.model.github).collect(CollectContext(now=now)))
        elapsed = time.perf_counter() - t0
    finally:
        server.stop()
    assert all(r.state.known for r in records), [(r.name, r.detail) for r in records if not r.state.known]
    graphql = server.log.count(lambda e: e["path"].endswith("/graphql"))
    rulesets = server.log.count(lambda e: "rulesets" in e["path"])
    total = server.log.count()
    print(f"large org: {repos} repos collected in {elapsed:.2f} s; {total} requests "
          f"({graphql} GraphQL, {rulesets} REST rulesets)")
    return {"large org collection (s)": elapsed, "large org GraphQL/ruleset calls": graphql + rulesets}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=30)
    ap.add_argument("--repos", type=int, default=1000)
    args = ap.parse_args()
    measured: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        measured.update(nightly(args.nights, Path(tmp) / "out"))
    measured.update(large_org(args.repos))
    TARGETS["large org GraphQL/ruleset calls"] = -(-args.repos // 100) + 2
    measured["peak RSS (MiB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    missed = 0
    for name, target in TARGETS.items():
        ok = measured[name] <= target
        missed += not ok
        print(f"{'ok  ' if ok else 'MISS'} {name:34} {measured[name]:10.2f}   target <= {target}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
