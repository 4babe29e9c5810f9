"""One error type for problems a user can fix, so the CLI prints one clear line plus the fix, not a traceback."""

from __future__ import annotations

import re

_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<at>@)", re.I)
_PASSWORD_IN_DSN = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)


def mask_url(text: str) -> str:
    """Replace every password in URLs or libpq key=value strings inside ``text`` with ``***``."""
    text = _PASSWORD_IN_URL.sub(lambda m: f"{m['head']}***{m['at']}", text)
    return _PASSWORD_IN_DSN.sub(lambda m: f"{m['head']}***", text)


class JxError(Exception):
    """A failure the user can act on: ``message`` says what is wrong, ``fix`` the command that fixes it."""

    def __init__(self, message: str, fix: str | None = None):
        self.message = mask_url(message)
        self.fix = fix
        super().__init__(self.message if not fix else f"{self.message} -- fix: {fix}")

    def render(self) -> str:
        line = f"jx-pipeline: error: {self.message}"
        return line if not self.fix else f"{line}\n  fix: {self.fix}"
