"""Ollama model tags: `phi3` and `phi3:latest` name the same model."""


def normalize_tag(tag: str) -> str:
    name = tag.strip()
    # A tag is the part after the last ':' unless that ':' belongs to a registry host:port.
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def missing_tags(wanted: list[str], held: list[str]) -> list[str]:
    """The wanted tags that the backend does not hold, in the order asked."""
    have = {normalize_tag(t) for t in held}
    return [t for t in wanted if normalize_tag(t) not in have]
