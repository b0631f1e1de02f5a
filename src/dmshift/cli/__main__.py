"""``python -m dmshift.cli``: the ``dmshift`` command without the installed script."""

import sys

from . import main

sys.exit(main())
