"""Where the deploy's own files are, wherever pyinfra is started from."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"


def template(name: str) -> str:
    return str(TEMPLATES / name)
