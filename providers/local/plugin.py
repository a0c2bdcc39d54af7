from flashfusion.plugins import hookimpl
from flashfusion.providers.local.provider import LocalProvider


@hookimpl
def register_providers(register):
    register(LocalProvider)
