"""``interchange outbox init`` against a database that refuses or does not answer: one line on
stderr naming the database (password redacted), exit 2 for a mistake, 3 when nothing answered;
never a traceback."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url


def _init(url: str, where: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "interchange", "outbox", "init", "--url", url]
    command += ["--table", f"outbox_{uuid.uuid4().hex[:10]}"]
    # in a directory of its own: no interchange.toml found there
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=where)


def test_a_wrong_password_is_one_line_and_exit_2(postgres_url, tmp_path):
    wrong = make_url(postgres_url).set(password=f"wrong-{uuid.uuid4().hex[:6]}")
    result = _init(wrong.render_as_string(hide_password=False), tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("interchange: error: outbox init at postgresql")
    assert "password authentication failed" in lines[0]
    assert "wrong-" not in lines[0], "the password is redacted"


def test_a_database_that_does_not_answer_is_one_line_and_exit_3(tmp_path):
    result = _init("postgresql://someone:secret@127.0.0.1:1/app", tmp_path)  # nothing listens there
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 3, result.stderr
    assert len(lines) == 1, result.stderr
    assert "127.0.0.1" in lines[0]
    assert "secret" not in lines[0], "the password is redacted"
