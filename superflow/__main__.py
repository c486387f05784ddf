import sys

from superflow.cli import main

sys.exit(main())
