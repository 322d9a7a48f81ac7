import sys

from lossmon.eval import main

sys.exit(main())
