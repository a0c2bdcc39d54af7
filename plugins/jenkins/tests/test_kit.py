"""The Jenkins provider passes FlashFusion's plugin kit against the fake Jenkins (which
asks for a CSRF crumb, as a default Jenkins does)."""

from flashfusion.plugins.testing import ProviderKit


class TestJenkinsKit(ProviderKit):
    pass
