def human_duration(seconds: int | None) -> str | None:
    """``150`` -> ``"2m 30s"``: the spec's webhook ``duration``, also shown by the client.

    It lives in the client package because the client is also shipped alone (clients/python)
    and may import nothing outside its own package; the server imports it from here."""
    if seconds is None:
        return None
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
