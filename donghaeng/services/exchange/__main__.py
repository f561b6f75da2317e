from donghaeng.services.exchange.app import main

main()
