"""Runner + journal: constraints are never violated, failures recorded, SIGKILL-safe resume."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgenas.errors import EdgenasError
from edgenas.search.constraints import Constraints, check_satisfiable
from edgenas.search.executors import make_executor
from edgenas.search.journal import Journal
from edgenas.search.runner import Runner
from edgenas.search.strategies.base import Objective, make_strategy
from toy_search import SlowLoggingEvaluator, ToySpace, evaluate, score

ACC = [Objective("accuracy", "max")]


def runner(tmp_path, budget=10, strategy="random", seed=0, **kw) -> Runner:
    space = ToySpace()
    kw.setdefault("evaluator", evaluate)
    return Runner(
        space=space, strategy=make_strategy(strategy, space, ACC, seed=seed),
        journal=Journal.open(tmp_path / "run.db"), budget=budget, **kw,
    )


def test_every_evaluated_arch_meets_the_constraints(tmp_path):
    space = ToySpace()
    limit = 3_000  # peak SRAM bytes: excludes the wide archs
    costs = {a.id: space.cost(a) for a in space.enumerate()}
    assert 0 < sum(c.peak_sram_bytes["mcunet"] <= limit for c in costs.values()) < len(costs)
    r = runner(tmp_path, budget=8, constraints=Constraints(max_peak_sram_bytes=limit))
    state = r.run()
    done = r.journal.trials("done")
    assert state.done == len(done) == 8
    for t in done:
        assert costs[t.arch.id].peak_sram_bytes["mcunet"] <= limit
        assert t.cost["peak_sram_bytes"] == costs[t.arch.id].peak_sram_bytes["mcunet"]
    for t in r.journal.trials("infeasible"):
        assert costs[t.arch.id].peak_sram_bytes["mcunet"] > limit
        assert "peak_sram_bytes" in t.error


def test_best_so_far_is_the_best_evaluated(tmp_path):
    r = runner(tmp_path, budget=12)
    state = r.run()
    best = max(r.journal.trials("done"), key=lambda t: t.metrics["accuracy"])
    assert state.best.metrics["accuracy"] == best.metrics["accuracy"] == score(best.arch)


def test_failing_evaluation_is_recorded_and_search_goes_on(tmp_path):
    ev = SlowLoggingEvaluator(str(tmp_path / "log"), delay=0, fail_depth=2)
    r = runner(tmp_path, budget=12, evaluator=ev)
    state = r.run()
    failed = r.journal.trials("failed")
    assert failed and all(t.arch["depth"] == 2 for t in failed)
    assert all("RuntimeError: loss is NaN" in t.error for t in failed)
    assert state.done + state.failed == 12


def test_impossible_constraints_are_detected_by_sampling():
    with pytest.raises(EdgenasError, match=r"no arch of space toy among 50 sampled meets peak_sram_bytes"):
        check_satisfiable(ToySpace(), Constraints(max_peak_sram_bytes=10), 10, samples=50)
    assert check_satisfiable(ToySpace(), Constraints(max_macs=10**9), 10) == 1.0


def test_journal_from_another_search_is_refused_and_left_intact(tmp_path):
    j = Journal.open(tmp_path / "run.db")
    j.bind({"space": "toy", "seed": 0}, must_match=("space",))
    j.record_ask(ToySpace().sample(__import__("numpy").random.default_rng(0)), "x", None)
    with pytest.raises(EdgenasError, match="belongs to another search"):
        j.bind({"space": "mcunet", "seed": 0}, must_match=("space",))
    assert j.meta()["space"] == "toy" and len(j.trials()) == 1


def test_corrupt_journal_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(EdgenasError, match="not an edgenas journal"):
        Journal.open(bad)
    assert bad.read_bytes() == b"this is not sqlite" * 100


def test_resume_after_clean_stop_continues_to_the_new_budget(tmp_path):
    first = runner(tmp_path, budget=6, seed=3)
    first.run()
    before = [(t.id, t.arch.id, t.metrics) for t in first.journal.trials("done")]
    second = runner(tmp_path, budget=10, seed=3)
    state = second.run()
    after = second.journal.trials("done")
    assert state.resumed == 6 and state.done == 10
    assert [(t.id, t.arch.id, t.metrics) for t in after[:6]] == before


def test_process_pool_runs_trials_in_parallel_workers(tmp_path):
    log = tmp_path / "log"
    r = runner(tmp_path, budget=6, evaluator=SlowLoggingEvaluator(str(log), delay=0.3),
               executor=make_executor("local", workers=2))
    r.run()
    pids = {line.split()[1] for line in log.read_text().splitlines()}
    assert len(pids) == 2
    assert {t.worker.split(":")[1] for t in r.journal.trials("done")} <= pids


SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from toy_search import SlowLoggingEvaluator, ToySpace
    from edgenas.search.journal import Journal
    from edgenas.search.runner import Runner
    from edgenas.search.strategies.base import Objective, make_strategy
    space = ToySpace()
    Runner(space=space, strategy=make_strategy("re", space, [Objective("accuracy")], seed=7,
                                               population=4, sample=2),
           evaluator=SlowLoggingEvaluator({log!r}, delay=0.12),
           journal=Journal.open({db!r}), budget=16).run()
    """
)


@pytest.mark.slow
def test_sigkill_at_any_point_loses_nothing_and_evaluates_nothing_twice(tmp_path):
    db, log = tmp_path / "run.db", tmp_path / "evals.log"
    code = SCRIPT.format(tests=str(Path(__file__).parent), log=str(log), db=str(db))
    script = tmp_path / "run.py"
    script.write_text(code)
    proc = subprocess.Popen([sys.executable, str(script)])
    deadline = time.time() + 60
    done_before: list = []
    while time.time() < deadline:
        time.sleep(0.1)
        if db.exists():
            try:
                with sqlite3.connect(db) as c:
                    n = c.execute("SELECT COUNT(*) FROM trials WHERE status='done'").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if n >= 5:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    j = Journal.open(db)
    done_before = [(t.id, t.arch.id, t.metrics) for t in j.trials("done")]
    j.close()
    assert 5 <= len(done_before) < 16
    evaluated_before = log.read_text().splitlines()

    subprocess.run([sys.executable, str(script)], check=True, timeout=120)

    j = Journal.open(db)
    done_after = j.trials("done")
    assert len(done_after) == 16
    assert [(t.id, t.arch.id, t.metrics) for t in done_after[: len(done_before)]] == done_before
    evaluated_after = log.read_text().splitlines()[len(evaluated_before):]
    finished_ids = {arch_id for _, arch_id, _ in done_before}
    # no trial completed before the kill was evaluated again after it
    again = [line for line in evaluated_after if line.split()[0] in finished_ids]
    assert again == []


@pytest.mark.slow
def test_ray_executor_runs_the_search_on_a_local_cluster(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    # Ray workers must import the toy space from tests/ like any user's own module
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        log = tmp_path / "log"
        r = runner(tmp_path, budget=6, evaluator=SlowLoggingEvaluator(str(log), delay=0.05),
                   executor=make_executor("ray", workers=2))
        state = r.run()
        assert state.done == 6
        done = r.journal.trials("done")
        assert all(t.metrics["accuracy"] == score(t.arch) for t in done)
        ray_pids = {line.split()[1] for line in log.read_text().splitlines()}
        assert str(__import__("os").getpid()) not in ray_pids  # evaluated in Ray workers
    finally:
        ray.shutdown()


def synthetic_latency_table():
    """A table with no exact entries: every layer falls back to ms = MACs / 1e5 (fitted exactly)."""
    from edgenas.hardware.lut import LatencyTable, TableEntry, TableFile

    entries = [TableEntry(key=f"k{i}", family="conv", macs=m, bytes=b, ms=m / 1e5)
               for i, (m, b) in enumerate([(10**5, 10), (4 * 10**5, 500), (9 * 10**5, 90), (2 * 10**6, 7)])]
    return LatencyTable(TableFile(backend="torch", threads=1, runs=1, entries=entries))


def test_latency_constraint_uses_the_table_prediction(tmp_path):
    from edgenas.hardware.lut import predict_latency_ms

    space, table = ToySpace(), synthetic_latency_table()
    predicted = {a.id: predict_latency_ms(space.cost(a).graph, table) for a in space.enumerate()}
    bound = float(sorted(predicted.values())[len(predicted) // 2])
    r = runner(tmp_path, budget=8, constraints=Constraints(max_latency_ms=bound, latency_table=table))
    r.run()
    assert all(predicted[t.arch.id] <= bound for t in r.journal.trials("done"))
    rejected = r.journal.trials("infeasible")
    assert rejected and all(predicted[t.arch.id] > bound and "latency_ms" in t.error for t in rejected)
    with pytest.raises(EdgenasError, match="needs --latency-table"):
        Constraints(max_latency_ms=5.0)


def test_grid_search_stops_when_the_space_is_covered(tmp_path):
    r = runner(tmp_path, budget=100, strategy="grid")
    state = r.run()
    done = r.journal.trials("done")
    assert state.done == len(done) == ToySpace().size() == 24
    assert len({t.arch.id for t in done}) == 24
    assert state.best.metrics["accuracy"] == max(score(a) for a in ToySpace().enumerate())
