from donghaeng.services.home.app import main

main()
