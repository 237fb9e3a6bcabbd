from fgo_cli.main import main

raise SystemExit(main())
