"""The FlashFusion plugin API version.

A plugin declares the version it is written against with a module-level constant in the
module its entry point names (``FLASHFUSION_PLUGIN_API = "1"``). The host refuses, at
start-up, a plugin that declares a version it does not provide. The version changes only
when a change would break existing plugins; additions keep it.
"""

PLUGIN_API_VERSION = "1"
#: Versions a plugin may declare and still be loaded by this FlashFusion.
SUPPORTED_PLUGIN_APIS = frozenset({"1"})
#: The name of the constant a plugin module declares.
PLUGIN_API_ATTRIBUTE = "FLASHFUSION_PLUGIN_API"
