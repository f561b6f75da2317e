from donghaeng.services.dashboard.app import main

main()
