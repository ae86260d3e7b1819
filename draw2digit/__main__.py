import sys

from draw2digit.cli import main

sys.exit(main())
