"""`make run` refuses to start a stack whose connection budget PostgreSQL cannot hold, and says why."""

from __future__ import annotations

import pytest

from tools import stack as stack_tool


def test_the_default_budget_is_thirty_split_over_every_pool(tmp_path):
    env = stack_tool.stack_env({"RUN_DIR": str(tmp_path)})
    budget = stack_tool.connection_budget(env)
    assert set(budget) == set(stack_tool.CONNECTION_BUDGET)
    assert sum(budget.values()) == 30
    assert budget["payments"] == 2 * int(env["PAYMENTS_DB_POOL_MAX"])


def test_a_budget_that_does_not_fit_is_refused_with_what_to_do(database_url, tmp_path):
    env = stack_tool.stack_env({"RUN_DIR": str(tmp_path), "DATABASE_URL": database_url, "PAYMENTS_DB_POOL_MAX": "500"})
    with pytest.raises(SystemExit) as refused:
        stack_tool.check_connection_budget(env)
    message = str(refused.value)
    assert "may hold up to 1020 PostgreSQL connections" in message and "payments 1000" in message
    assert "max_connections" in message and "*_DB_POOL_MAX" in message


def test_a_budget_that_fits_is_announced(database_url, tmp_path, capsys):
    env = stack_tool.stack_env({"RUN_DIR": str(tmp_path), "DATABASE_URL": database_url})
    assert stack_tool.check_connection_budget(env) == 30
    assert "this stack holds at most 30" in capsys.readouterr().out
