import sys

from flashfusion.core.cli import main

sys.exit(main())
