import sys

from firmware_bridges.cli import main

sys.exit(main())
