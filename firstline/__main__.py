from firstline.cli import main

raise SystemExit(main())
