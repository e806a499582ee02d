from berth_operator.main import main

raise SystemExit(main())
