import secrets

from flashfusion.core.access.keyformat import ALPHABET


def new_id(prefix: str, length: int = 16) -> str:
    """``prefix_`` + random base62: unguessable, URL-safe, sortable by nothing."""
    return f"{prefix}_" + "".join(secrets.choice(ALPHABET) for _ in range(length))
