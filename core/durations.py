def human_duration(seconds: int | None) -> str | None:
    """``150`` -> ``"2m 30s"``: the spec's webhook ``duration``, also shown by the CLI."""
    if seconds is None:
        return None
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
