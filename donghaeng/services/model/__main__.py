from donghaeng.services.model.app import main

main()
