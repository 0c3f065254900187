from jupiter_movements.job import main

raise SystemExit(main())
