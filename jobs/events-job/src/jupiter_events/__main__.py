from jupiter_events.job import main

raise SystemExit(main())
