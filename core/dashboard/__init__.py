"""The dashboard: server-rendered pages (Jinja2) for people, served by the gateway's Falcon
app behind the session login. ``add_routes(app, gateway)`` is all the composition root calls."""

from flashfusion.core.dashboard.routes import add_routes

__all__ = ["add_routes"]
