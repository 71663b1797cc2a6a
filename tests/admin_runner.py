"""Runs `nlr-admin` in this process, as the operator would run it, but without a process each.

One test (test_admin_dev_setup) still runs the real console script in a subprocess, so the
entry point itself is covered; everything else goes through `main()` here, which is the same
code with the same argument parsing, environment and exit statuses.
"""

from __future__ import annotations

import io
import json
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any

from nlr_server.ops.admin import main


@dataclass(frozen=True)
class AdminResult:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Admin:
    """`nlr-admin` against one database and keyring, named in ``env``."""

    env: dict[str, str]

    def __call__(self, *args: str, expect: int = 0, stdin: str = "") -> AdminResult:
        out, err = io.StringIO(), io.StringIO()
        saved_environ, saved_stdin = dict(os.environ), sys.stdin
        os.environ.clear()
        os.environ.update(self.env)
        sys.stdin = io.StringIO(stdin)
        code = 0
        try:
            with redirect_stdout(out), redirect_stderr(err):
                try:
                    main(list(args))
                except SystemExit as exit_:
                    code = (
                        exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
                    )
        finally:
            os.environ.clear()
            os.environ.update(saved_environ)
            sys.stdin = saved_stdin
        result = AdminResult(code, out.getvalue(), err.getvalue())
        assert result.returncode == expect, (result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def error(self, *args: str, expect: int, stdin: str = "") -> str:
        """The one-line message of a command that fails with exit status ``expect``."""
        stderr = self(*args, expect=expect, stdin=stdin).stderr
        assert stderr.startswith("nlr-admin: ") and stderr.count("\n") == 1, stderr
        return stderr


def admin_environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLR_")}
    env.update(settings)
    return env
