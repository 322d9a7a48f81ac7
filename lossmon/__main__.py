from lossmon.cli import main

raise SystemExit(main())
