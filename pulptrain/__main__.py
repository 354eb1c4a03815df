import sys

from pulptrain.cli import main

sys.exit(main())
