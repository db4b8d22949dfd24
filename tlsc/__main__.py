from .quick import tlsc_main

tlsc_main()
