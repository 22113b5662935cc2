"""The benchmark's own arithmetic: reading wrk's report and dividing CPU time among requests."""

from __future__ import annotations

import subprocess
import sys

from bench.run import cpu_per_request, cpu_seconds_by_part, parse_wrk

# wrk 4.1.0's report of a 1 s run against python -m http.server, copied from a real run, with a
# "Non-2xx or 3xx responses" line added (wrk prints it only when some responses were not 2xx/3xx).
WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:18555/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.35ms  557.86us   5.30ms   74.72%
    Req/Sec     1.42k   156.90     1.64k    70.00%
  Latency Distribution
     50%    1.29ms
     75%    1.64ms
     90%    1.97ms
     99%    3.17ms
  1417 requests in 1.00s, 1.43MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   1415.15
Transfer/sec:      1.43MB
"""


def test_parse_wrk_reads_throughput_count_percentiles_and_failures():
    assert parse_wrk(WRK_OUTPUT) == {
        "rps": 1415.15,
        "requests": 1417,
        "p50": 1.29,
        "p99": 3.17,
        "non2xx": 3,
        "socket_errors": "",
    }


def test_cpu_per_request_divides_each_parts_time_and_drops_the_negligible():
    before = {"payments API": 10.0, "PostgreSQL": 5.0, "nginx": 1.0, "Redis": 2.0}
    after = {"payments API": 15.0, "PostgreSQL": 9.0, "nginx": 1.5, "Redis": 2.01}
    line = cpu_per_request(before, after, 10_000, 10.0)
    # 5 s / 10,000 requests = 500 us; Redis's 1 us per request is left out of the list, not the total.
    assert line.startswith("payments API 500, PostgreSQL 400, nginx 50; total 951 us/request, 9.5 CPU-s of ")


def test_cpu_seconds_by_part_counts_a_finished_child_as_the_load_generator():
    before = cpu_seconds_by_part()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    after = cpu_seconds_by_part()
    spent = after["load generator (wrk)"] - before["load generator (wrk)"]
    assert spent > 0.05  # the child's own CPU time, measured by the kernel


def test_a_new_run_keeps_the_history_section(tmp_path):
    from bench.run import write_results

    results = tmp_path / "RESULTS.md"
    results.write_text("# old table\n\n| a | b |\n\n## History\n\n- GET planned per call: 33k tps, prepared: 75k\n")
    write_results(results, [("POST /payments c=64", "2,000 req/s", "p99 60 ms")], 10)
    text = results.read_text()
    assert "old table" not in text and "POST /payments c=64" in text
    assert text.endswith("## History\n\n- GET planned per call: 33k tps, prepared: 75k\n")


def test_a_new_run_keeps_the_million_rows_section_and_scale_replaces_it(tmp_path):
    from bench.run import SCALE_HEADING, replace_section, write_results

    results = tmp_path / "RESULTS.md"
    results.write_text("# old table\n\n## 1 M rows\n\n| GET /payments | 3 ms | 9 ms |\n\n## History\n\n- old\n")
    write_results(results, [("POST /payments c=64", "2,000 req/s", "p99 60 ms")], 10)
    text = results.read_text()
    assert "old table" not in text and "POST /payments c=64" in text
    assert "\n\n## 1 M rows\n\n| GET /payments | 3 ms | 9 ms |\n\n## History\n\n- old\n" in text
    replaced = replace_section(text, SCALE_HEADING, "\n## 1 M rows\n\nnew table\n")
    assert "3 ms" not in replaced and "new table\n\n## History" in replaced
    fresh = replace_section("# t\n\n## History\n\n- old\n", SCALE_HEADING, "\n## 1 M rows\n\nnew\n")
    assert fresh == "# t\n\n## 1 M rows\n\nnew\n\n## History\n\n- old\n"


def test_the_empty_app_ceiling_answers_through_nginx_and_leaves_nothing_running():
    import os

    import requests

    from bench.ceiling import BODY, _cpu_seconds, empty_app_behind_nginx

    with empty_app_behind_nginx() as (url, pids):
        answers = [requests.get(url, timeout=5) for _ in range(20)]
        assert {(a.status_code, a.content) for a in answers} == {(200, BODY)}
        assert _cpu_seconds(pids) > 0  # gunicorn's workers and nginx's are the roots' children
    for pid in pids:
        # Reaped by the context manager: no such process any more.
        assert not os.path.exists(f"/proc/{pid}")
