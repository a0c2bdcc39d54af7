"""FlashFusion provider plugin for Jenkins: ``provider = "jenkins"``."""

#: The FlashFusion plugin API version this package is written against.
FLASHFUSION_PLUGIN_API = "1"
