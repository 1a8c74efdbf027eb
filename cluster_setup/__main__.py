import sys

from cluster_setup.cli import main

sys.exit(main())
