import sys

from mailcanary.cli import main

sys.exit(main())
