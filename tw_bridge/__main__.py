"""``python -m tw_bridge`` is ``tw-edr``."""

import sys

from ._cli import main

sys.exit(main())
