import sys

from local_node.node import main

sys.exit(main())
