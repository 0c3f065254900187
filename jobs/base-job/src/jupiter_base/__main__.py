from jupiter_base.job import main

raise SystemExit(main())
